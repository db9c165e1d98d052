"""``pargs predict`` when the predictions directory or the disk is not what it should be: a file inside that is a
link (refused before anything changes, its target untouched), a damaged line in the middle of a file (named, nothing
removed), a disk that fills up mid-run (one line, the lines before kept complete, the same command resumes).
Runs are in-process (``pargs.cli.main``), as in ``tests/test_predict_reruns.py``, whose finished run they reuse."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch

from tests import test_predict_reruns as reruns
from tests.conftest import make_rm
from tests.test_predict_reruns import METHODS, _by_method, _config, _lines, _predict

first, run = reruns.first, reruns.run  # the fixtures: a finished run, and a copy of it for each test

TORN = b'{"id": "torn", "method": "pa'
LINKED = (
    "{link} is a symbolic link (to {target}); pargs predict writes only regular files in its directory, never "
    "through a link: replace it by a copy of what it points to (cp --remove-destination TARGET {link}), or write to "
    "another directory (pargs predict --predictions DIR)"
)


@pytest.mark.parametrize(
    "entry, dangling",
    [
        ("predictions-rank0.jsonl", False),
        ("predictions-rank1.jsonl", True),
        ("manifest.json", False),
        ("predict.lock", False),
    ],
)
def test_a_file_that_is_a_link_is_refused_and_what_it_points_to_is_untouched(run, capsys, tmp_path, entry, dangling):
    """Before: resume cut the "torn" last line of the file a prediction link pointed to (57 -> 17 bytes), created
    the target of a dangling link, wrote its pid into the lock's target, or replaced the manifest link."""
    base, cfg = run
    preds = base / "preds"
    target = tmp_path / "elsewhere" / entry
    target.parent.mkdir()
    if not dangling:
        target.write_bytes((preds / entry).read_bytes() + (TORN if entry.startswith("predictions") else b""))
        (preds / entry).unlink()
    original = target.read_bytes() if target.exists() else None
    (preds / entry).symlink_to(target)
    listing = sorted(p.name for p in preds.iterdir())
    code, err = _predict(capsys, "-c", str(cfg))
    assert code == 1, err[-3000:]
    assert err.strip().splitlines()[-1] == "pargs: error: " + LINKED.format(link=preds / entry, target=target)
    assert "Loading weights" not in err  # refused before any model loads
    assert (target.read_bytes() if target.exists() else None) == original
    assert (preds / entry).is_symlink() and sorted(p.name for p in preds.iterdir()) == listing


def test_a_predictions_directory_that_is_a_link_is_followed(run, capsys, tmp_path):
    base, cfg = run
    moved = tmp_path / "other-disk" / "preds"
    moved.parent.mkdir()
    shutil.move(base / "preds", moved)
    (base / "preds").symlink_to(moved, target_is_directory=True)
    before = _lines(moved)
    code, err = _predict(capsys, "-c", str(cfg))
    assert code == 0, err[-3000:]
    assert _lines(moved) == before  # resumed: every line was there


def test_a_damaged_line_in_the_middle_is_named_and_nothing_is_removed(run, capsys):
    """Before: a JSONDecodeError traceback naming neither the file nor the line."""
    base, cfg = run
    path = base / "preds" / "predictions-rank0.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2][:40] + b"\n"  # a line cut short, with lines after it
    path.write_bytes(b"".join(lines))
    before = path.read_bytes()
    code, err = _predict(capsys, "-c", str(cfg))
    assert code == 1
    assert err.strip().splitlines()[-1] == (
        f"pargs: error: {path}, line 3: is not valid JSON: it ends (column 41) before its value does, a torn line "
        "such as an interrupted write leaves; complete it or delete it. It is in the middle of the file: pargs removes "
        "nothing there (it cuts off only the torn last line an interrupted run leaves); run again once the line is "
        "repaired or deleted (a deleted prediction is decoded again), or write to another directory"
    )
    assert "Traceback" not in err and path.read_bytes() == before


def test_a_full_disk_is_one_line_keeps_complete_lines_and_resumes(first, tmp_path, model_dirs, capsys):
    """Before: three chained ``OSError: [Errno 28]`` tracebacks and a torn line in the file."""
    base = tmp_path / "run"
    base.mkdir()
    shutil.copytree(first / "rm", base / "rm")
    shutil.copy(first / "prompts.jsonl", base / "prompts.jsonl")
    full = [{"class_path": "tests.helpers.DiskFullAt", "init_args": {"batch": 1}}]
    cfg = _config(base, model_dirs["reference"], callbacks=full)
    path = base / "preds" / "predictions-rank0.jsonl"
    code, err = _predict(capsys, "-c", str(cfg))
    assert code == 1
    assert err.strip().splitlines()[-1] == (
        f"pargs: error: cannot write to {path}: No space left on device; the lines written before are complete and "
        "kept (this batch's lines were not written); free space or fix the cause, then run the same command again: "
        "it resumes after them"
    )
    assert "Traceback" not in err
    kept = path.read_text()
    assert kept.endswith("\n") and len(kept.splitlines()) == 6  # batch 0: 3 prompts x 2 methods, each line whole
    assert all(json.loads(line)["id"] for line in kept.splitlines())
    code, err = _predict(capsys, "-c", str(_config(base, model_dirs["reference"])))  # space again
    assert code == 0, err[-3000:]
    assert path.read_text().startswith(kept)
    assert _by_method(base / "preds") == _by_method(first / "preds")  # what an uninterrupted run wrote


def _nan_rm(path, tokenizer, word: str | None = None):
    """A reward model whose reward is NaN: everywhere, or (``word``) for any text that holds ``word``."""
    model = make_rm(tokenizer)
    with torch.no_grad():
        if word is None:
            model.score.weight.fill_(float("nan"))
        else:
            model.transformer.wte.weight[tokenizer.convert_tokens_to_ids(word)] = float("nan")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


NOT_FINITE = (
    "pargs: error: method {method!r}: {who} ({model}) returned a non-finite reward (NaN or inf) for prompt id {ids}; "
    "nothing of this batch is written (the lines of earlier batches are kept): check that reward model (its "
    "weights, its dtype: float16 overflows), then run the same command again to resume"
)


@pytest.mark.parametrize(
    "method, path",
    [
        ({"name": "pargs", "kind": "guided", "k": 4, "scorer": "rm"}, "eager"),
        ({"name": "pargs", "kind": "guided", "k": 4, "scorer": "rm"}, "static"),  # the fixed-shape step
        ({"name": "bon", "kind": "best_of_n", "n": 2, "top_k": 10, "scorer": "rm"}, "eager"),
    ],
)
def test_a_scorer_that_returns_nan_stops_the_run_naming_method_scorer_and_prompts(
    tmp_path, synthetic_dir, model_dirs, tokenizer, capsys, method, path
):
    """Before: the PARGS rows decoded from NaN scores without a word, and exit 0."""
    shutil.copy(synthetic_dir / "prompts_test.jsonl", tmp_path / "prompts.jsonl")
    nan = _nan_rm(tmp_path / "rm", tokenizer)
    cfg = _config(tmp_path, model_dirs["reference"], methods=[METHODS[0], method], decode_path=path)
    code, err = _predict(capsys, "-c", str(cfg))
    assert code == 1, err[-3000:]
    ids = "'test-0000', 'test-0001', 'test-0002'"  # the first batch: every row meets a NaN
    assert err.strip().splitlines()[-1] == NOT_FINITE.format(
        method=method["name"], who="scorer 'rm'", model=nan, ids=ids
    )
    assert "Traceback" not in err and _lines(tmp_path / "preds") == []  # not even the batch's top-k lines


def test_an_evaluation_reward_that_returns_nan_stops_the_run_and_keeps_earlier_batches(
    first, tmp_path, model_dirs, tokenizer, capsys
):
    """Before: every line held ``"reward": NaN`` (not JSON), and exit 0. Here the reward is NaN only for texts
    holding a word of the second batch's prompt test-0003: the first batch is written, the second is not."""
    word = "showers"
    old = [json.loads(line) for line in _lines(first / "preds")]
    batch0 = {"test-0000", "test-0001", "test-0002"}
    assert all(word not in r["prompt"] + r["response"] for r in old if r["id"] in batch0)
    assert [r["id"] for r in old if r["method"] == "top-k" and word in r["prompt"] + r["response"]] == ["test-0003"]
    nan = _nan_rm(tmp_path / "eval-rm", tokenizer, word)
    base = tmp_path / "run"
    shutil.copytree(first, base, ignore=shutil.ignore_patterns("preds"))
    cfg = _config(base, model_dirs["reference"], eval_reward={"model": {"path": str(nan)}})
    code, err = _predict(capsys, "-c", str(cfg))
    assert code == 1, err[-3000:]
    assert err.strip().splitlines()[-1] == NOT_FINITE.format(
        method="top-k", who="eval_reward", model=nan, ids="'test-0003'"
    )
    written = [json.loads(line) for line in _lines(base / "preds")]
    assert sorted((r["id"], r["method"]) for r in written) == sorted(
        (r["id"], r["method"]) for r in old if r["id"] in batch0
    )
    assert all(math.isfinite(r["reward"]) for r in written)
