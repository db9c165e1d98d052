"""`pargs study --smoke` end to end: two seeds of the whole pipeline, the report and its evidence files, the report
recomputed from those files alone, resuming after an interruption without redoing completed steps, refusing a
changed config or another environment, and --reuse training nothing."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from dataclasses import replace

import pytest

from pargs.errors import ConfigError
from pargs.study.command import main, run_study
from pargs.study.evidence import SIMILAR_MARGIN
from pargs.study.grids import GUIDED
from pargs.study.ledger import StudyConflict
from pargs.study.plan import SMOKE
from pargs.tasks.synthetic import oracle_reward
from tests.subprocesses import run_pargs

#: two seeds: the exact test across seeds cannot reach 0.05 (its smallest p is 1/4), so every verdict says so
VERDICTS = {"inconclusive: 2 seeds"}
REPORT_TEXT = ("study.md", "claims.md", "methods.csv", "claims.csv", "verdicts.csv", "theorem1.csv", "tuning.csv",
               "ablation.csv", "timing.csv", "decisions.csv")  # fmt: skip


def _lines(folder):
    return [json.loads(x) for p in sorted(folder.glob("*.jsonl")) for x in p.read_text().splitlines()]


def _hand_signed_rank_greater(d0: float, d1: float) -> float:
    """Exact P(W+ >= observed) for two non-zero differences of distinct size, by listing the four sign patterns."""
    small, large = sorted((d0, d1), key=abs)
    observed = (small > 0) * 1 + (large > 0) * 2
    return sum(w >= observed for w in (0, 1, 2, 3)) / 4


def _check_decisions(out):
    """Each seed's decision file against computations from scratch: its states cycle through the validation prompts,
    an EOS candidate's value is the oracle's reward of its response, the partial RM's score is the RM's reward of
    prompt + prefix + candidate from one plain forward pass; the report's evidence holds the same rows (so
    --recompute needs no seed directory); and the report's numbers are the file's."""
    import torch

    from pargs.models.encoding import encode_prompt, encode_response, pad_batch
    from pargs.models.loading import ModelSpec, load_reward_model, load_tokenizer
    from pargs.models.reward_model import sequence_rewards
    from pargs.records import load_prompts
    from pargs.study import decisions
    from pargs.study.csv_gz import read_csv_gz
    from pargs.study.evidence_files import FILES

    kept = read_csv_gz(out / "report" / "evidence" / decisions.FILE, FILES[decisions.FILE])
    for seed in (0, 1):
        d = out / f"seed-{seed}"
        rows = decisions.read_rows(d / decisions.FILE)
        assert [{k: v for k, v in r.items() if k != "seed"} for r in kept if r["seed"] == seed] == rows
        ids = [r["id"] for r in load_prompts(d / "data" / "prompts_val.jsonl")]  # 3 prompts: 4 states cycle
        assert sorted({r["state"] for r in rows}) == sorted([f"{i}/0" for i in ids] + [f"{ids[0]}/1"])
        assert len(rows) == 4 * SMOKE.decision_k
        spec = ModelSpec(path=str(d / "models" / "rm_partial"))
        tok = load_tokenizer(spec)
        rm = load_reward_model(spec, tok).eval()
        seqs = [
            encode_prompt(tok, r["prompt"]) + encode_response(tok, r["prefix"], add_eos=False) + [r["token"]]
            for r in rows
        ]
        with torch.no_grad():
            want = sequence_rewards(rm, *pad_batch(seqs, tok.pad_token_id))
        assert [r["score_partial"] for r in rows] == pytest.approx(want.tolist(), abs=1e-4)
        for r in rows:
            assert r["step"] == len(encode_response(tok, r["prefix"], add_eos=False))
            if r["eos"]:
                assert r["mc_n"] == 0 and r["mc_mean"] == pytest.approx(oracle_reward(r["prompt"], r["prefix"]))
            else:  # a candidate that fills the 32 tokens is scored as it is
                assert r["mc_n"] == (SMOKE.decision_m if r["step"] + 1 < 32 else 0)
        summary = decisions.summarise_seed(rows)
        table = list(csv.DictReader(open(out / "report" / "decisions.csv")))
        got = {(r["scorer"], r["metric"]): float(r["mean_over_states"]) for r in table if int(r["seed"]) == seed}
        assert got == pytest.approx(
            {(s, m): summary.metrics[s][m] for s in decisions.SCORERS for m in decisions.METRICS}, nan_ok=True
        )
    assert "## Decision-level evidence" in (out / "report" / "study.md").read_text()


def test_smoke_study_end_to_end_resume_refusal_and_reuse(tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["--smoke", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| claim | the paper |" in printed and "report:" in printed
    summary = json.loads((out / "study.json").read_text())
    assert summary["seeds"] == [0, 1] and summary["ablation_seeds"] == [0, 1]
    report = out / "report"
    figures = [f"{f}.{e}" for f in ("rewards", "prefix_agreement", "ablation", "decisions") for e in ("png", "pdf")]
    evidence = [f"evidence/{f}" for f in ("manifest.json", "rewards.csv.gz", "ground_truth.csv.gz",
                                          "prefix_values.csv.gz", "ablation.csv.gz", "decisions.csv.gz")]  # fmt: skip
    for name in (*REPORT_TEXT, *figures, *evidence):
        assert (report / name).is_file(), name

    # every method of the test step, scored by the oracle; per-seed means recomputed here from the lines
    methods = {"greedy": 1, "top-k": 2, "best-of-2": 2, "dpo": 2, "ppo": 2}
    for g in GUIDED:
        n = 1 if g in ("pargs-g", "args") else 2
        methods[g] = methods[f"{g}@b1.5"] = n
    table = {(r["method"], int(r["seed"])): float(r["reward"]) for r in csv.DictReader(open(report / "methods.csv"))}
    for seed in (0, 1):
        lines = _lines(out / f"seed-{seed}" / "predictions" / "test")
        counts: dict[str, int] = {}
        per: dict[str, dict[str, list[float]]] = {}
        for r in lines:
            counts[r["method"]] = counts.get(r["method"], 0) + 1
            assert r["reward"] == pytest.approx(oracle_reward(r["prompt"], r["response"]))
            per.setdefault(r["method"], {}).setdefault(r["id"], []).append(r["reward"])
        assert counts == {m: 3 * n for m, n in methods.items()}  # 3 test prompts
        for m, prompts in per.items():
            assert table[(m, seed)] == pytest.approx(sum(sum(v) / len(v) for v in prompts.values()) / len(prompts))
        # the evidence file holds each prompt's mean reward and sample count, as the lines give them
        with gzip.open(report / "evidence" / "rewards.csv.gz", "rt") as fh:
            rows = [r for r in csv.DictReader(fh) if int(r["seed"]) == seed]
        assert {(r["method"], r["prompt"]): (float(r["reward"]), int(r["samples"])) for r in rows} == {
            (m, k): (pytest.approx(sum(v) / len(v)), len(v)) for m, prompts in per.items() for k, v in prompts.items()
        }
        tuning = json.loads((out / f"seed-{seed}" / "tuning.json").read_text())
        test_config = (out / f"seed-{seed}" / "configs" / "test.yaml").read_text()
        assert test_config.startswith("# pargs predict -c")
        assert all(tuning["guided"][g]["chosen"] in SMOKE.betas for g in GUIDED)
        assert f"beta: {tuning['guided']['pargs']['chosen']}" in test_config
        gt = json.loads((out / f"seed-{seed}" / "ground_truth.json").read_text())
        assert {k: len(v) for k, v in gt["outcomes"].items()} == {"rm_partial": 3 * 4, "rm_full": 3 * 4}

    # the across-seed test of each claim, recomputed by hand from the two per-seed differences
    rows = list(csv.DictReader(open(report / "claims.csv")))
    assert rows and {r["verdict"] for r in rows} == VERDICTS
    primary = {r["claim"] for r in rows if r["primary"] == "True"}
    # with Theorem 1 (verdicts.csv): declared in pargs/study/evidence.py
    assert primary == {"PARGS vs ARGS-sampled", "partial RM vs full RM"}
    assert {(r["kind"], float(r["margin"])) for r in rows} == {("better", 0.0), ("not_worse", SIMILAR_MARGIN)}
    for name in {(r["claim"], r["view"]) for r in rows}:
        # "performs similarly" claims test A + margin vs B, so their differences are shifted by the margin
        d0, d1 = (
            float(r["diff"]) + float(r["margin"])
            for r in sorted((r for r in rows if (r["claim"], r["view"]) == name), key=lambda r: int(r["seed"]))
        )
        if d0 and d1 and abs(d0) != abs(d1):
            across = next(float(r["across_p_a_greater"]) for r in rows if (r["claim"], r["view"]) == name)
            assert across == pytest.approx(_hand_signed_rank_greater(d0, d1)), name
    claims = (report / "claims.md").read_text().splitlines()
    claim_rows = [x for x in claims if x.startswith("| ") and not x.startswith("| claim")]
    assert len(claim_rows) == 9  # seven method claims, the decision-level claim and Theorem 1
    assert claim_rows[7].startswith("| partial RM vs full RM | The argument of the paper: at each decoding step")
    assert all(x.split(" | ")[4].split(" (")[0] in VERDICTS for x in claim_rows)  # the verdict column
    _check_decisions(out)
    verdicts = {r["claim"]: r for r in csv.DictReader(open(report / "verdicts.csv"))}
    assert {c for c, r in verdicts.items() if r["primary"] == "True"} == {
        "PARGS vs ARGS-sampled",
        "partial RM vs full RM",
        "Partial vs full RM on prefixes",
    }
    # in the declared order of the fixed sequence, each at its place; secondary claims have none
    order = {r["claim"]: int(r["sequence_position"]) for r in verdicts.values() if r["primary"] == "True"}
    assert order == {"Partial vs full RM on prefixes": 1, "partial RM vs full RM": 2, "PARGS vs ARGS-sampled": 3}
    assert all(r["sequence_position"] == "0" for r in verdicts.values() if r["primary"] == "False")

    # the report recomputed from its evidence files alone (no seed directories next to them) is the same report
    alone = tmp_path / "recomputed"
    shutil.copytree(report / "evidence", alone / "evidence")
    done = run_pargs("study", "--recompute", str(alone))
    assert done.returncode == 0, done.stderr
    for name in REPORT_TEXT:
        assert (alone / name).read_bytes() == (report / name).read_bytes(), name

    # resume: seed 1's last step lost its record (an interruption), and --redo ground_truth: only those run again
    weights = out / "seed-0" / "models" / "reference" / "model.safetensors"
    before = weights.stat().st_mtime_ns
    (out / "seed-1" / "steps" / "ablation_decode.json").unlink()
    again = run_study(out, seeds=2, plan=SMOKE, redo=["ground_truth"])
    ran = {(int(s), step) for s, per in again["steps"].items() for step, v in per.items() if v["status"] == "ran"}
    assert ran == {(0, "ground_truth"), (1, "ground_truth"), (1, "ablation_decode")}
    assert sum(len(per) for per in again["steps"].values()) == 2 * 15  # 12 main + 3 ablation steps a seed
    assert weights.stat().st_mtime_ns == before

    # a changed config of a completed step is refused, naming the step and the field; nothing runs
    with pytest.raises(StudyConflict, match=r"seed 0, step 'sft'[\s\S]*trainer.max_epochs: 1 -> 2"):
        run_study(out, seeds=2, plan=replace(SMOKE, epochs={**SMOKE.epochs, "sft": 2}))
    assert weights.stat().st_mtime_ns == before

    # a step recorded in another environment is refused, naming the field; --reuse keeps it, and the report says so
    record = out / "seed-1" / "steps" / "ground_truth.json"
    data = json.loads(record.read_text())
    data["environment"]["torch"] = "0.0-other"
    record.write_text(json.dumps(data))
    with pytest.raises(StudyConflict, match=r"seed 1, step 'ground_truth' was completed in another environment"):
        run_study(out, seeds=2, plan=SMOKE)
    mixed = run_study(out, seeds=2, plan=SMOKE, reuse=True)
    assert {v["status"] for per in mixed["steps"].values() for v in per.values()} == {"done before"}
    assert "The steps ran in 2 environments" in (report / "claims.md").read_text()
    assert "torch 0.0-other" in (report / "study.md").read_text()
    assert weights.stat().st_mtime_ns == before

    # --reuse trains nothing: a training step without a record is an error, not a retraining
    (out / "seed-0" / "steps" / "dpo-0.json").unlink()
    with pytest.raises(ConfigError, match="--reuse trains nothing.*'dpo-0'"):
        run_study(out, seeds=2, plan=SMOKE, reuse=True)
