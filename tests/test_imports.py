"""The package's imports: no circle, layers import downwards only, and ``--help`` answers without torch.

The graph is read from the source with ``ast`` (module-level, function-level and ``TYPE_CHECKING``
imports alike), so a circle hidden inside a function shows here before it bites at run time.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: the layers of pargs, lowest first (README's layering rule); a module imports from its own layer or lower ones
LAYERS = (
    (
        "core",
        (
            "pargs.errors",
            "pargs.atomic_files",
            "pargs.records",
            "pargs.file_names",
            "pargs.losses",
            "pargs.prefixes",
            "pargs.advantages",
            "pargs.models",
        ),
    ),
    ("plain torch", ("pargs.decoding", "pargs.metrics", "pargs.adapters", "pargs.tasks")),
    ("Lightning glue", ("pargs.lit", "pargs.datamodules")),
    (
        "commands",
        (
            "pargs.cli",
            "pargs.commands",
            "pargs.quickstart",
            "pargs.study",
            "pargs.sweep",
            "pargs.report",
            "pargs.judging",
            "pargs.__main__",
        ),
    ),
)
LIGHTNING = ("lightning", "pytorch_lightning", "lightning_fabric")
#: the layer from which on a module may import Lightning
LIGHTNING_FROM = 2


def module_files(src: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``package`` under ``src``."""
    files = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    return files


def imported_names(name: str, path: Path) -> list[str]:
    """Every dotted name ``module`` imports, anywhere in the file; ``from a import b`` gives ``a`` and ``a.b``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: climb from the importing module's package
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            found.append(base)
            found += [f"{base}.{alias.name}" for alias in node.names]
    return found


def import_graph(src: Path, package: str) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, including the packages Python initialises on the way
    (``import a.b.c`` runs ``a.b``'s ``__init__``), except the importer's own enclosing packages."""
    files = module_files(src, package)
    graph = {}
    for name, path in files.items():
        own = {".".join(name.split(".")[:i]) for i in range(1, len(name.split(".")) + 1)}
        targets = set()
        for imported in imported_names(name, path):
            parts = imported.split(".")
            targets |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & files.keys()
        graph[name] = targets - own
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle per back edge of a depth-first walk, each as ``[a, b, ..., a]``; empty when there is none."""
    found, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def layer_of(module: str) -> int | None:
    """Index in :data:`LAYERS` of the longest prefix naming ``module``'s layer (None: in no layer)."""
    if module == "pargs":  # the package's __init__: its version, nothing else
        return 0
    best = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[1]):
                best = (index, len(prefix))
    return None if best is None else best[0]


def test_the_import_graph_has_no_circle():
    graph = import_graph(ROOT, "pargs")
    assert "pargs.commands.lightning_runner" in graph["pargs.cli"]  # the graph sees the package's imports
    assert "pargs.metrics" in graph["pargs.sweep"]  # ... function-level ones too, and the packages on the way
    found = cycles(graph)
    assert not found, "import circles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_the_cycle_finder_finds_a_circle_inside_functions(tmp_path):
    """The check above can fail: two modules that import each other only inside functions form a circle."""
    pkg = tmp_path / "toy"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from toy.sub.leaf import VALUE\n")
    (pkg / "sub" / "leaf.py").write_text("VALUE = 1\n\ndef late():\n    from toy import cli\n")
    (pkg / "cli.py").write_text("def main():\n    from .sub import leaf\n")
    graph = import_graph(tmp_path, "toy")
    assert graph == {
        "toy": set(),
        "toy.sub": {"toy.sub.leaf"},
        "toy.sub.leaf": {"toy.cli"},
        "toy.cli": {"toy.sub", "toy.sub.leaf"},
    }
    assert cycles(graph) == [["toy.cli", "toy.sub", "toy.sub.leaf", "toy.cli"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_layers_import_downwards_and_only_the_upper_two_import_lightning():
    files = module_files(ROOT, "pargs")
    unplaced = [m for m in files if layer_of(m) is None]
    assert not unplaced, f"modules in no layer (add them to LAYERS in {Path(__file__).name}): {unplaced}"
    wrong = []
    for name, path in files.items():
        layer = layer_of(name)
        for imported in imported_names(name, path):
            top = imported.split(".")[0]
            if top in LIGHTNING and layer < LIGHTNING_FROM:
                wrong.append(f"{name} ({LAYERS[layer][0]}) imports {imported}")
            elif imported in files and layer_of(imported) > layer:
                wrong.append(f"{name} ({LAYERS[layer][0]}) imports {imported} ({LAYERS[layer_of(imported)][0]})")
    assert not wrong, "imports pointing upwards:\n" + "\n".join(sorted(set(wrong)))
    assert layer_of("pargs.metrics.judge") == 1 and layer_of("pargs.commands.report") == 3 == layer_of("pargs.report")
    assert layer_of("pargs.new_module") is None


HELP_SCRIPT = textwrap.dedent("""
    import contextlib, io, sys
    from pargs.cli import COMMANDS, main

    for command in ["", *COMMANDS]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            main([command, "--help"] if command else ["--help"])
        assert "usage:" in out.getvalue(), (command, out.getvalue())
        heavy = sorted(m for m in ("torch", "lightning", "transformers", "datasets") if m in sys.modules)
        print(command or "(none)", *heavy)
""")


def _python(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_every_commands_help_answers_without_torch():
    done = _python("-c", HELP_SCRIPT)
    assert done.returncode == 0, done.stderr
    from pargs.cli import COMMANDS

    assert done.stdout.split("\n") == ["(none)", *COMMANDS, ""]  # no command's line names a heavy module


@pytest.mark.parametrize("command", ["report"])
def test_python_m_pargs_help_imports_no_torch(command):
    """As a user runs it: ``python -X importtime`` lists every module imported, torch must not be one."""
    done = _python("-X", "importtime", "-m", "pargs", command, "--help")
    assert done.returncode == 0 and done.stdout.startswith(f"usage: pargs {command}"), done.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "pargs.cli" in imported  # the listing is read right (importlib.import_module's imports are not in it)
    assert not {m for m in imported if m.split(".")[0] == "torch"}
