"""The report against values computed here with numpy / scipy / the reference libraries."""

import csv
import json

import numpy as np
import pytest
from PIL import Image
from rouge_score import rouge_scorer
from scipy.stats import wilcoxon

from pargs.records import RecordError
from pargs.report import build_report, format_markdown

REWARDS = {  # method -> prompt -> rewards of its samples
    "top-k": {f"p{i}": [i * 0.1, i * 0.2 - 1] for i in range(6)},
    "pargs": {f"p{i}": [i * 0.3 + 0.2, 0.5 - i * 0.05] for i in range(6)},
    "args": {f"p{i}": [(-1) ** i * 0.4 + i * 0.1] for i in range(6)},
}


def _lines():
    lines = []
    for method, prompts in REWARDS.items():
        for pid, rewards in prompts.items():
            for s, r in enumerate(rewards):
                lines.append({"id": pid, "method": method, "sample": s, "prompt": f"prompt {pid}",
                              "response": f"the {method} answer {s} to {pid} number {len(pid) + s}",
                              "reference": [f"the answer to {pid}"], "tokens": 10 + s, "stop": "eos",
                              "reward": r, "decode_seconds": 0.01 * (3 if method == "pargs" else 1) * (10 + s),
                              "seed": 0, "policy": "reference", "scorer": None})
    return lines


@pytest.fixture
def preds(tmp_path):
    path = tmp_path / "predictions" / "predictions-rank0.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps(x) + "\n" for x in _lines()))
    return path.parent


def test_every_column_against_an_independent_computation(preds, tmp_path):
    report = build_report([preds], tmp_path / "report", baseline="pargs", tensorboard_dir=tmp_path / "tb")
    rows = {r.method: r for r in report.rows}
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    base = {pid: np.mean(v) for pid, v in REWARDS["pargs"].items()}
    for method, prompts in REWARDS.items():
        row = rows[method]
        per_prompt = np.array([np.mean(v) for v in prompts.values()])
        assert row.reward == pytest.approx(per_prompt.mean())
        assert row.reward_se == pytest.approx(per_prompt.std(ddof=1) / np.sqrt(6))
        assert (row.prompts, row.samples) == (6, len(next(iter(prompts.values()))))
        if method == "pargs":
            assert row.p_value is None
        else:
            diffs = [base[pid] - np.mean(v) for pid, v in prompts.items()]
            assert row.p_value == pytest.approx(wilcoxon(diffs, alternative="greater").pvalue)
        lines = [x for x in _lines() if x["method"] == method]
        rl = [np.mean([scorer.score(x["reference"][0], x["response"])["rougeL"].fmeasure
                       for x in lines if x["id"] == pid]) for pid in prompts]
        assert row.rouge_l == pytest.approx(np.mean(rl))
        assert row.tokens == pytest.approx(np.mean([x["tokens"] for x in lines]))
        assert row.ms_per_token == pytest.approx(1000 * sum(x["decode_seconds"] for x in lines)
                                                 / sum(x["tokens"] for x in lines))
        if row.samples >= 2:
            div = [scorer.score(*[x["response"] for x in lines if x["id"] == pid])["rougeL"].fmeasure
                   for pid in prompts]
            assert row.diversity == pytest.approx(np.mean(div))
        else:
            assert row.diversity is None
    assert rows["pargs"].overhead == pytest.approx(3.0) and rows["top-k"].overhead == pytest.approx(1.0)

    table = (tmp_path / "report" / "results.md").read_text()
    assert table.startswith("| method |") and "H1: reward(pargs) > reward(method)" in table
    assert format_markdown(report) + "\n" == table
    with open(tmp_path / "report" / "results.csv") as fh:
        assert [r["method"] for r in csv.DictReader(fh)] == ["top-k", "pargs", "args"]
    for name in ("time_per_token.png", "reward_vs_diversity.png"):
        with Image.open(tmp_path / "report" / name) as img:
            assert img.format == "PNG" and img.size[0] > 100
    assert list((tmp_path / "tb").rglob("events.out.tfevents.*"))


def test_duplicates_keep_the_last_line(preds, tmp_path):
    extra = dict(_lines()[0], reward=100.0)
    with open(preds / "predictions-rank0.jsonl", "a") as fh:
        fh.write(json.dumps(extra) + "\n")
    report = build_report([preds], tmp_path / "r", figures=False)
    assert report.n_duplicates == 1
    top_k = next(r for r in report.rows if r.method == "top-k")
    # p0's sample 0 becomes 100: p0's mean is (100 - 1) / 2, the others' (0.3 i - 1) / 2 for i = 1..5
    assert top_k.reward == pytest.approx((49.5 + sum((0.3 * i - 1) / 2 for i in range(1, 6))) / 6)


def test_malformed_line_names_file_line_and_field(preds, tmp_path):
    bad = dict(_lines()[0], tokens="ten")
    path = preds / "predictions-rank1.jsonl"
    path.write_text(json.dumps(_lines()[1]) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(RecordError) as err:
        build_report([preds], tmp_path / "r")
    assert (err.value.path, err.value.line, err.value.field) == (str(path), 2, "tokens")


def test_flops_columns(tmp_path):
    lines = _lines()
    for x in lines:  # top-k 2e6 FLOPs per token, pargs 3x that; args lines predate the field
        if x["method"] != "args":
            x["flops"] = x["tokens"] * 2e6 * (3 if x["method"] == "pargs" else 1)
    path = tmp_path / "predictions" / "predictions-rank0.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    report = build_report([path.parent], tmp_path / "report", figures=False)
    rows = {r.method: r for r in report.rows}
    assert rows["top-k"].gflops_per_token == pytest.approx(0.002) and rows["pargs"].flops_overhead == pytest.approx(3)
    assert rows["args"].gflops_per_token is None and rows["args"].flops_overhead is None
    table = format_markdown(report)
    assert "| 0.006 | 3.00 |" in table.splitlines()[3] and table.splitlines()[4].endswith("| - | - |")


def test_methods_on_different_prompt_sets_are_flagged(tmp_path):
    """A 2-prompt row next to 6-prompt rows: the CLI warns once naming each method's prompt count, and the
    Markdown says so under the table (means are over different prompts; p pairs only shared ones)."""
    from tests.subprocesses import run_pargs

    lines = [x for x in _lines() if x["method"] != "args" or x["id"] in ("p0", "p1")]
    lines += [dict(x, method="greedy", id=f"q{x['id']}") for x in _lines() if x["method"] == "args"]  # disjoint
    path = tmp_path / "run" / "predictions" / "predictions-rank0.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    done = run_pargs("report", str(tmp_path / "run"), timeout=300)
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "different prompt sets" in line]
    assert warnings == ["[pargs] methods cover different prompt sets (args: 2, greedy: 6, pargs / top-k: 6 "
                        "prompts; 0 common to all): each mean is over the method's own prompts, and p pairs a "
                        "method with pargs on their shared prompts only; decode the same prompt file with every "
                        "method to compare them"], done.stderr
    markdown = (tmp_path / "run" / "report" / "results.md").read_text()
    assert "**Note:** methods cover different prompt sets (args: 2, greedy: 6, pargs / top-k: 6 prompts;" in markdown
    rows = {r["method"]: r for r in csv.DictReader(open(tmp_path / "run" / "report" / "results.csv"))}
    assert rows["args"]["prompts"] == "2" and rows["greedy"]["p_value"] == ""  # greedy shares no prompt with pargs
    # p of args: pargs and args paired on p0 and p1 only (hand check against scipy on those two)
    pargs = {p: np.mean(v) for p, v in REWARDS["pargs"].items()}
    diffs = [pargs[p] - np.mean(REWARDS["args"][p]) for p in ("p0", "p1")]
    assert float(rows["args"]["p_value"]) == pytest.approx(wilcoxon(diffs, alternative="greater").pvalue)


def test_same_prompt_sets_give_no_note(preds, tmp_path):
    report = build_report([preds], tmp_path / "report", figures=False)
    assert report.coverage is None and "Note" not in format_markdown(report)
