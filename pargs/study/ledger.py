"""What produced each completed step of a study, and the rule that decides whether a step runs again.

Each completed step of a seed leaves a record ``<seed dir>/steps/<step>.json``::

    {"step", "seed", "config", "inputs", "fingerprint", "environment", "seconds", "load_average", "cpu_count",
     "finished"}

``config`` is everything the step was run with (the LightningCLI config it ran, or the parameters of a
step run in Python), with the seed directory written as ``{seed_dir}`` so a moved study still matches;
``inputs`` maps each step it reads to that step's fingerprint; ``fingerprint`` hashes both.
``environment`` (:func:`environment`) is what ran it: the pargs version, the git commit of the checkout pargs
was imported from (None when it is not a git checkout, e.g. an installed package) and whether tracked files
had uncommitted changes, the torch and transformers versions, the device and torch's thread count (the same
config gives other numbers with another thread count: float sums in another order). The rule
(:meth:`Ledger.status`):

- a record whose config and inputs equal what would run now, made in this environment: the step is
  **done** and is skipped;
- a record whose config or inputs differ: the step is **refused** (:class:`StudyConflict`), naming the
  seed, the step and each differing field with its recorded and current value, and how to proceed. A step
  that read a re-run step differs in its inputs, so a change reaches everything after it;
- a record made in another environment (or before pargs recorded environments): **refused** the same
  way, since a resumed study would mix code or library versions; with ``mix=True`` (``pargs study
  --reuse``) it counts as done, and the report lists every environment and the steps run in it;
- no record: the step **runs** from its start (what an interrupted attempt left is removed first).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import time
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from pargs.errors import ConfigError

SEED_DIR = "{seed_dir}"  #: how a record writes the seed directory's path


class StudyConflict(ConfigError):
    """A completed step's record differs from what would run now."""


def normalise(value, seed_dir: Path):
    """``value`` as plain JSON data, the seed directory's path replaced by ``{seed_dir}`` in every string."""
    root = str(seed_dir)
    if isinstance(value, Mapping):
        return {str(k): normalise(v, seed_dir) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalise(v, seed_dir) for v in value]
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, str):
        return value.replace(root, SEED_DIR)
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


def fingerprint(config: Mapping, inputs: Mapping[str, str]) -> str:
    """A short hash of a step's (normalised) config and its inputs' fingerprints."""
    text = json.dumps({"config": config, "inputs": dict(inputs)}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def differences(recorded, current, prefix: str = "") -> list[str]:
    """Every field where two configs differ, as ``"dotted.key: recorded -> current"`` (list items by index)."""
    if isinstance(recorded, Mapping) and isinstance(current, Mapping):
        out = []
        for key in sorted(set(recorded) | set(current), key=str):
            where = f"{prefix}.{key}" if prefix else str(key)
            if key not in recorded:
                out.append(f"{where}: (absent) -> {json.dumps(current[key])}")
            elif key not in current:
                out.append(f"{where}: {json.dumps(recorded[key])} -> (absent)")
            else:
                out += differences(recorded[key], current[key], where)
        return out
    if isinstance(recorded, list) and isinstance(current, list) and len(recorded) == len(current):
        out = []
        for i, (r, c) in enumerate(zip(recorded, current)):
            out += differences(r, c, f"{prefix}.{i}" if prefix else str(i))
        return out
    if recorded != current:
        return [f"{prefix or '(value)'}: {json.dumps(recorded)} -> {json.dumps(current)}"]
    return []


def git_commit(root: Path) -> tuple[str | None, bool | None]:
    """``(commit, uncommitted changes)`` of the git checkout whose top level is ``root``; ``(None, None)`` when
    ``root`` is not the top of a checkout (an installed package inside some other repository counts as none) or
    git cannot say."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
        if done.returncode:
            raise OSError(done.stderr.strip())
        return done.stdout.strip()

    try:
        if Path(git("rev-parse", "--show-toplevel")).resolve() != Path(root).resolve():
            return None, None
        return git("rev-parse", "HEAD"), bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None, None


def _device() -> str:
    """What ``accelerator: auto`` (the study's configs) picks: a CUDA device's name, ``mps`` or ``cpu``."""
    import torch

    if torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)}"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


@lru_cache(maxsize=1)
def environment() -> dict:
    """What runs the steps of this process (module docstring): versions, commit, device, threads."""
    import torch
    import transformers

    import pargs

    commit, changes = git_commit(Path(pargs.__file__).resolve().parent.parent)
    return {
        "pargs": pargs.__version__,
        "commit": commit,
        "uncommitted_changes": changes,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": _device(),
        "threads": torch.get_num_threads(),
    }


def _shown(diffs: list[str]) -> str:
    return "\n  ".join(diffs[:12]) + (f"\n  ... and {len(diffs) - 12} more" if len(diffs) > 12 else "")


class Ledger:
    """The step records of one seed's directory."""

    def __init__(self, seed_dir: Path, seed: int) -> None:
        self.seed_dir, self.seed = Path(seed_dir), seed
        self.folder = self.seed_dir / "steps"

    def path(self, step: str) -> Path:
        return self.folder / f"{step}.json"

    def record(self, step: str) -> dict | None:
        path = self.path(step)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path}: not a step record ({err}); delete it to run the step {step!r} again") from None

    def fingerprint_of(self, step: str) -> str | None:
        rec = self.record(step)
        return None if rec is None else rec["fingerprint"]

    def status(
        self,
        step: str,
        config: Mapping,
        inputs: Mapping[str, str],
        env: Mapping | None = None,
        mix: bool = False,
    ) -> str:
        """``"done"`` (a matching record) or ``"run"`` (none); a record with another config or inputs, or made in
        another environment than ``env`` (default :func:`environment`) unless ``mix``, raises
        :class:`StudyConflict`."""
        rec = self.record(step)
        if rec is None:
            return "run"
        config = normalise(config, self.seed_dir)
        diffs = differences(rec["config"], config)
        diffs += [f"inputs.{d}" for d in differences(rec["inputs"], dict(inputs))]
        if diffs:
            raise StudyConflict(
                f"seed {self.seed}, step {step!r} was completed with another config than the one that would run "
                f"now ({self.path(step)}). Differing fields (recorded -> now):\n  {_shown(diffs)}\n"
                f"To proceed: keep the recorded result by running the study as it was configured, or run "
                f"`pargs study ... --redo {step}` to discard that step (and every step after it that reads "
                f"it) in every seed and run it again, or give another --out for a separate study."
            )
        env = environment() if env is None else env
        diffs = [f"environment.{d}" for d in differences(rec.get("environment") or {}, dict(env))]
        if not diffs or mix:
            return "done"
        before = "; it was recorded before pargs recorded environments" if not rec.get("environment") else ""
        raise StudyConflict(
            f"seed {self.seed}, step {step!r} was completed in another environment than this run's "
            f"({self.path(step)}{before}). Differing fields (recorded -> now):\n  {_shown(diffs)}\n"
            f"A study does not mix code or library versions, devices or thread counts unless asked. To proceed: "
            f"run with --reuse to keep the recorded steps (the report lists every environment and the steps run "
            f"in it; --reuse trains nothing), or `pargs study ... --redo {step}` to run that step (and every "
            f"step after it that reads it) again here, or give another --out for a separate study."
        )

    def write(
        self,
        step: str,
        config: Mapping,
        inputs: Mapping[str, str],
        seconds: float,
        load_before: float | None = None,
        env: Mapping | None = None,
    ) -> dict:
        """Record a completed step (written last, atomically: a record exists only for a finished step), made in
        ``env`` (default :func:`environment`)."""
        config = normalise(config, self.seed_dir)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        rec = {
            "step": step,
            "seed": self.seed,
            "config": config,
            "inputs": dict(inputs),
            "fingerprint": fingerprint(config, inputs),
            "environment": dict(environment() if env is None else env),
            "seconds": round(seconds, 2),
            "load_average": {"before": load_before, "after": load},
            "cpu_count": os.cpu_count(),
            "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.path(step).with_suffix(".json.tmp")
        tmp.write_text(json.dumps(rec, indent=1) + "\n")
        os.replace(tmp, self.path(step))
        return rec

    def remove(self, step: str) -> bool:
        path = self.path(step)
        if path.is_file():
            path.unlink()
            return True
        return False

    def completed(self) -> list[str]:
        return sorted(p.stem for p in self.folder.glob("*.json")) if self.folder.is_dir() else []
