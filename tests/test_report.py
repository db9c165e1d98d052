"""The report against values computed here with numpy / scipy / the reference libraries."""

import csv
import json

import numpy as np
import pytest
import sacrebleu
from matplotlib.container import ErrorbarContainer
from PIL import Image
from rouge_score import rouge_scorer
from scipy.stats import wilcoxon

from pargs.records import RecordError
from pargs.report import build_report, format_markdown, report_figures

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
                lines.append(
                    {
                        "id": pid,
                        "method": method,
                        "sample": s,
                        "prompt": f"prompt {pid}",
                        "response": f"the {method} answer {s} to {pid} number {len(pid) + s}",
                        "reference": [f"the answer to {pid}"],
                        "tokens": 10 + s,
                        "stop": "eos",
                        "reward": r,
                        "decode_seconds": 0.01 * (3 if method == "pargs" else 1) * (10 + s),
                        "seed": 0,
                        "policy": "reference",
                        "scorer": None,
                    }
                )
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
        rl = [
            np.mean(
                [scorer.score(x["reference"][0], x["response"])["rougeL"].fmeasure for x in lines if x["id"] == pid]
            )
            for pid in prompts
        ]
        assert row.rouge_l == pytest.approx(np.mean(rl))
        assert row.tokens == pytest.approx(np.mean([x["tokens"] for x in lines]))
        assert row.ms_per_token == pytest.approx(
            1000 * sum(x["decode_seconds"] for x in lines) / sum(x["tokens"] for x in lines)
        )
        if row.samples >= 2:
            div = [
                scorer.score(*[x["response"] for x in lines if x["id"] == pid])["rougeL"].fmeasure for pid in prompts
            ]
            assert row.self_rouge_l == pytest.approx(np.mean(div))
        else:
            assert row.self_rouge_l is None
        # corpus BLEU: every sample a hypothesis with its prompt's references, straight through sacrebleu
        expected = sacrebleu.corpus_bleu([x["response"] for x in lines], [[x["reference"][0] for x in lines]])
        assert row.corpus_bleu == pytest.approx(expected.score)
        sentence = [
            np.mean([sacrebleu.sentence_bleu(x["response"], x["reference"]).score for x in lines if x["id"] == pid])
            for pid in prompts
        ]
        assert row.sentence_bleu == pytest.approx(np.mean(sentence))
    assert rows["pargs"].overhead == pytest.approx(3.0) and rows["top-k"].overhead == pytest.approx(1.0)

    table = (tmp_path / "report" / "results.md").read_text()
    assert table.startswith("| method |") and "H1: reward(pargs) > reward(method)" in table
    assert format_markdown(report) + "\n" == table
    with open(tmp_path / "report" / "results.csv") as fh:
        assert [r["method"] for r in csv.DictReader(fh)] == ["top-k", "pargs", "args"]
    for name in ("reward", "time_per_token", "reward_vs_diversity"):
        with Image.open(tmp_path / "report" / f"{name}.png") as img:
            assert img.format == "PNG" and img.size[0] > 100
        assert (tmp_path / "report" / f"{name}.pdf").read_bytes().startswith(b"%PDF")
        assert report.paths[name].endswith(f"{name}.png") and report.paths[f"{name}_pdf"].endswith(f"{name}.pdf")
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


def test_corpus_bleu_takes_every_sample_with_its_prompts_references(tmp_path):
    """Two samples of p0 (two references) and one of p1 (one reference: sacrebleu needs equally many streams, so
    the first one fills the second) make one corpus of three segments."""
    refs = {"p0": ["the staff was very friendly .", "the staff were friendly ."], "p1": ["the room was clean ."]}
    responses = [
        ("p0", 0, "the staff was friendly ."),
        ("p0", 1, "staff very friendly ."),
        ("p1", 0, "the room was very clean ."),
    ]
    lines = [
        {
            "id": pid,
            "method": "m",
            "sample": s,
            "prompt": pid,
            "response": text,
            "reference": refs[pid],
            "tokens": 5,
            "decode_seconds": 0.1,
            "reward": None,
        }
        for pid, s, text in responses
    ]
    path = tmp_path / "preds.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    report = build_report([path], tmp_path / "report", figures=False)
    streams = [[refs["p0"][0], refs["p0"][0], refs["p1"][0]], [refs["p0"][1], refs["p0"][1], refs["p1"][0]]]
    expected = sacrebleu.corpus_bleu([text for _, _, text in responses], streams).score
    assert 0 < expected < 100 and report.rows[0].corpus_bleu == pytest.approx(expected)
    p0 = np.mean([sacrebleu.sentence_bleu(text, refs[pid]).score for pid, _, text in responses if pid == "p0"])
    p1 = sacrebleu.sentence_bleu(responses[2][2], refs["p1"]).score
    assert report.rows[0].sentence_bleu == pytest.approx((p0 + p1) / 2)  # per-prompt means first, then prompts
    table = format_markdown(report)
    assert f"| {expected:.2f} |" in table.splitlines()[2]  # the table's BLEU is the corpus BLEU
    with open(tmp_path / "report" / "results.csv") as fh:
        (row,) = csv.DictReader(fh)
    assert float(row["corpus_bleu"]) == pytest.approx(expected)
    assert float(row["sentence_bleu"]) == pytest.approx((p0 + p1) / 2) and row["sentence_bleu_se"]


def test_columns_and_note_say_what_they_measure(preds, tmp_path):
    report = build_report([preds], tmp_path / "report", figures=False, reward_name="synthetic oracle reward")
    table = format_markdown(report)
    header = table.splitlines()[0]
    assert "| corpus BLEU |" in header and "| self-ROUGE-L ± SE (lower = more diverse) |" in header
    assert "BLEU ± SE" not in header and "diversity" not in header
    assert "reward: synthetic oracle reward," in table and "prompt prefill excluded" in table
    assert "Best-of-N n plain responses (n × plain" in table and "scoring of its n finished responses excluded" in table
    with open(tmp_path / "report" / "results.csv") as fh:
        fields = csv.DictReader(fh).fieldnames
    assert {
        "corpus_bleu",
        "sentence_bleu",
        "sentence_bleu_se",
        "self_rouge_l",
        "self_rouge_l_se",
        "ms_per_token_se",
    } <= set(fields)
    assert not {"bleu", "bleu_se", "diversity", "diversity_se"} & set(fields)


def test_reward_name_comes_from_the_lines_when_not_given(tmp_path):
    lines = [dict(x, reward_name="rm:OpenAssistant/deberta") for x in _lines()]
    path = tmp_path / "preds.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert build_report([path], tmp_path / "r", figures=False).reward_name == "rm:OpenAssistant/deberta"
    path.write_text("".join(json.dumps(x) + "\n" for x in _lines()))
    assert build_report([path], tmp_path / "r", figures=False).reward_name == "evaluation reward"


def test_lines_scored_by_two_rewards_or_a_contradicting_name_are_refused(tmp_path):
    from pargs.errors import ConfigError

    a = [dict(x, reward_name="reward of rm_a") for x in _lines()]
    b = [dict(x, method=x["method"] + "-b", reward_name="reward of rm_b") for x in _lines()]
    path = tmp_path / "preds.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in a + b))
    with pytest.raises(ConfigError, match="scored by different rewards \\('reward of rm_a', 'reward of rm_b'\\)"):
        build_report([path], tmp_path / "r", figures=False)
    path.write_text("".join(json.dumps(x) + "\n" for x in a))
    with pytest.raises(ConfigError, match="--reward-name 'synthetic oracle reward': the prediction lines say"):
        build_report([path], tmp_path / "r", figures=False, reward_name="synthetic oracle reward")
    assert not (tmp_path / "r").exists()  # refused before anything is written


def test_figures_name_the_reward_show_se_and_say_what_they_leave_out(preds, tmp_path):
    report = build_report([preds], tmp_path / "report", figures=False, reward_name="synthetic oracle reward")
    figs = report_figures(report)
    assert set(figs) == {"reward", "time_per_token", "reward_vs_diversity"}
    rows = {r.method: r for r in report.rows}

    (ax,) = figs["reward"].axes
    assert ax.get_ylabel() == "average synthetic oracle reward"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["top-k", "pargs", "args"]
    assert _error_bar_half_widths(ax) == pytest.approx([rows[m].reward_se for m in ("top-k", "pargs", "args")])
    assert "± 1 standard error" in _texts(figs["reward"])

    (ax,) = figs["time_per_token"].axes
    assert ax.get_ylabel() == "ms per generated token"
    assert _error_bar_half_widths(ax) == pytest.approx([rows[m].ms_per_token_se for m in ("top-k", "pargs", "args")])

    (ax,) = figs["reward_vs_diversity"].axes
    assert ax.get_xlabel() == "self-ROUGE-L (lower = more diverse)"
    assert ax.get_ylabel() == "average synthetic oracle reward"
    assert [t.get_text() for t in ax.texts] == ["top-k", "pargs"]  # the point labels
    assert "Not shown: args (one sample per prompt: no self-ROUGE-L)." in _texts(figs["reward_vs_diversity"])


def _texts(fig) -> str:
    return " ".join(t.get_text() for t in fig.texts).replace("\n", " ")


def _error_bar_half_widths(ax) -> list[float]:
    """Half the length of each vertical error bar of the axes' one error-bar container."""
    (bars,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    _, _, (lines,) = bars.lines
    return [abs(seg[1][1] - seg[0][1]) / 2 for seg in lines.get_segments()]


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
    assert warnings == [
        "[pargs] methods cover different prompt sets (args: 2, greedy: 6, pargs / top-k: 6 "
        "prompts; 0 common to all): each mean is over the method's own prompts, and p pairs a "
        "method with pargs on their shared prompts only; decode the same prompt file with every "
        "method to compare them"
    ], done.stderr
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


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_reward_is_refused_naming_file_line_and_field(tmp_path, value):
    """Before: a table of nan and inf, and exit 0."""
    from tests.subprocesses import run_pargs

    lines = _lines()
    lines[1]["reward"] = value  # json.dumps writes NaN / Infinity, as pargs predict did before it refused them
    path = tmp_path / "run" / "predictions" / "predictions-rank0.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    done = run_pargs("report", str(tmp_path / "run"), timeout=300)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"pargs: error: {path}, line 2: field 'reward' is {value}, not a finite number, so no mean or test over it "
        "means anything: decode this prediction again (delete the line, then run the same pargs predict: it decodes "
        "what is missing), or leave this file out"
    )
    assert "Traceback" not in done.stderr and not (tmp_path / "run" / "report").exists()


def test_without_baseline_lines_the_report_says_there_are_no_p_values_and_why(tmp_path):
    """Before: every p was ``-`` while the note still read ``H1: reward(pargs) > reward(method)``."""
    from tests.subprocesses import run_pargs

    path = tmp_path / "run" / "predictions" / "predictions-rank0.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(x) + "\n" for x in _lines() if x["method"] != "pargs"))
    done = run_pargs("report", str(tmp_path / "run"), timeout=300)
    assert done.returncode == 0, done.stderr
    reason = (
        "each method is tested against the baseline 'pargs', and these predictions hold no line of method 'pargs'; "
        "choose the baseline with --baseline NAME (methods here: args, top-k)"
    )
    assert f"[pargs] no p-values: {reason}" in done.stderr.splitlines()
    markdown = (tmp_path / "run" / "report" / "results.md").read_text()
    assert f"p: none, {reason}." in markdown and "H1" not in markdown
    done = run_pargs("report", str(tmp_path / "run"), "--baseline", "top-k", timeout=300)
    assert done.returncode == 0 and "no p-values" not in done.stderr
    assert "H1: reward(top-k) > reward(method)" in (tmp_path / "run" / "report" / "results.md").read_text()
