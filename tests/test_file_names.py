"""User-chosen names (methods, policies, scorers) become one path component that stays where it is joined
(pargs/file_names.py), and ``pargs report`` writes nothing outside its directories whatever a method is called."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pargs.file_names import file_name


@pytest.mark.parametrize("name", ["top-k", "pargs@b1.5-k10", "best-of-10", "pargs-g", "cd_fudge", "a=b+c"])
def test_a_name_that_is_already_a_component_is_kept(name):
    assert file_name(name) == name


@pytest.mark.parametrize(
    "name", ["/tmp/evil", "../up", "..", ".", "", "a/b", "a\\b", ".hidden", "x" * 300, "nul\0byte", "C:\\x", "é"]
)
def test_any_other_name_stays_inside_the_directory_it_is_joined_to(tmp_path, name):
    safe = file_name(name)
    joined = (tmp_path / safe).resolve()
    assert joined.parent == tmp_path.resolve() and joined.name == safe
    assert safe not in ("", ".", "..") and not safe.startswith(".") and len(safe) <= 109
    assert "/" not in safe and "\\" not in safe and "\0" not in safe


def test_names_that_differ_keep_different_components():
    names = ["a/b", "a_b", "a\\b", "a b", "/a/b", "a/b/"]
    assert len({file_name(n) for n in names}) == len(names)


def test_a_method_named_by_an_absolute_path_writes_nothing_there(tmp_path):
    """Before: ``pargs report`` created TensorBoard files at the path a line's ``method`` named
    (``add_hparams(run_name=method)``)."""
    from tests.subprocesses import run_pargs
    from tests.test_report import _lines

    target = tmp_path / "elsewhere" / "victim"
    lines = [dict(x, method=str(target)) if x["method"] == "args" else x for x in _lines()]
    path = tmp_path / "run" / "predictions" / "predictions-rank0.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    done = run_pargs("report", str(tmp_path / "run"), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (tmp_path / "elsewhere").exists()
    runs = sorted(p.name for p in (tmp_path / "run" / "tensorboard" / "report").iterdir() if p.is_dir())
    assert runs == sorted(["pargs", "top-k", file_name(str(target))])
    assert str(target) in (tmp_path / "run" / "report" / "results.md").read_text()  # the table keeps the name
    assert all(Path(p).resolve().is_relative_to(tmp_path / "run") for p in (tmp_path / "run").rglob("*"))
