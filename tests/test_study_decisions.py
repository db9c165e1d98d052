"""The study's decision-level evidence (pargs/study/decisions.py) on hand-made candidate rows: the per-seed summary,
the claim across seeds, the link to decoding reward, and the seed file's round trip."""

from __future__ import annotations

import math

import pytest

from pargs.study import decisions
from pargs.study.evidence import Evidence, decision_claims


def _rows(state: str, values, scores: dict[str, list[float]], eos=None, se=0.1, se_diff=None) -> list[dict]:
    """One state's candidate rows (rank = list order)."""
    eos = eos or [False] * len(values)
    return [
        {
            "state": state,
            "prompt_id": state.split("/")[0],
            "prompt": "write a review , of it :",
            "prefix": "the room was",
            "step": 3,
            "rank": j,
            "token": 10 + j,
            "word": f"w{j}",
            "eos": eos[j],
            "mc_mean": v,
            "mc_se": 0.0 if eos[j] else se,
            "mc_n": 0 if eos[j] else 8,
            "mc_truncated": 0,
            "mc_se_diff_best": (se_diff or [0.0] * len(values))[j],
            **{f"score_{s}": scores.get(s, [0.0] * len(values))[j] for s in decisions.SCORERS},
        }
        for j, v in enumerate(values)
    ]


def test_seed_summary_on_hand_worked_states():
    values = [3.0, 2.0, 1.0, 1.0]  # candidates 2 and 3 tie in value
    rows = _rows(
        "a/0",
        values,
        {"partial": [4, 3, 2, 1], "full": [1, 2, 3, 4], "logp": [0, 0, 0, 0]},
        se_diff=[0.0, 0.05, 0.07, 0.09],
    )
    rows += _rows("b/0", [1.0, 1.0, 1.0], {"partial": [1, 2, 3]})  # all values tie: left out of tau
    rows += _rows("c/0", [0.0, 5.0, 1.0], {"partial": [3, 2, 1], "full": [0, 1, 2]}, eos=[False, True, False])
    summary = decisions.summarise_seed(rows)
    assert (summary.states, summary.with_eos) == (3, 1)
    # state a: partial concordant on 5 pairs, the value tie (2, 3) counts neither: 5 / sqrt(6 * 5); full: -5 / ...
    # state c: partial: (0,1) D, (0,2) D, (1,2) C -> -1/3; full: (0,1) C, (0,2) C, (1,2) D -> 1/3
    a = 5 / math.sqrt(30)
    assert summary.metrics["partial"]["tau"] == pytest.approx((a - 1 / 3) / 2)
    assert summary.metrics["full"]["tau"] == pytest.approx((-a + 1 / 3) / 2)
    assert summary.metrics["logp"]["tau"] == 0.0  # constant scores order nothing
    assert summary.counted["tau"] == 2 and summary.counted["tau_eos"] == 1
    # state c's EOS pairs (0,1) and (1,2): partial D, C -> 0; its other pair (0,2): partial D -> -1
    assert summary.metrics["partial"]["tau_eos"] == 0.0
    # top-1: a's best (0) picked by the partial RM, c's (1, EOS) not; b has nothing to find
    assert summary.metrics["partial"]["top1"] == 0.5 and summary.counted["top1"] == 2
    assert summary.metrics["full"]["top1"] == 0.0
    # value ties: 1 of a's 6 pairs, all 3 of b's, none of c's 3
    assert summary.value_ties == pytest.approx(4 / 12)
    # SE of a difference to the best, where both are sampled: a's three, b's two (c's best is EOS, exact)
    assert summary.se_diff_paired == pytest.approx((0.05 + 0.07 + 0.09 + 0 + 0) / 5)
    assert summary.se_diff_independent == pytest.approx(math.hypot(0.1, 0.1))


def test_the_claim_takes_seeds_as_the_unit():
    # five seeds of two states: the partial RM orders both right, the full RM one of them backwards in seeds 0-3
    seeds = list(range(5))
    rows = {}
    for s in seeds:
        backwards = [3, 2, 1] if s < 4 else [1, 2, 3]
        rows[s] = _rows("x/0", [1.0, 2.0, 3.0], {"partial": [1, 2, 3], "full": backwards})
        rows[s] += _rows("y/0", [1.0, 2.0, 3.0], {"partial": [1, 2, 3], "full": [1, 2, 3]})
    claim = decisions.decision_claim(rows)
    assert [c.diff for c in claim.seeds] == pytest.approx([1.0, 1.0, 1.0, 1.0, 0.0])
    assert [c.n_prompts for c in claim.seeds] == [2] * 5
    # four positive differences of equal size and a zero (ranked, but its sign not permuted: Pratt): p = 1/16
    assert claim.across_for == pytest.approx(1 / 16)
    ev = Evidence(seeds, {}, {}, {}, {}, {}, {}, {}, {}, {}, decisions=rows)
    (row,) = decision_claims(ev)
    assert (row.a, row.b, row.claim) == ("rm_partial", "rm_full", claim)
    ev.decisions.pop(4)  # a seed without the file: no claim rather than one on fewer seeds
    assert decision_claims(ev) == []


def test_ranking_vs_reward_takes_each_seeds_mean_out():
    def summary(taus: dict[str, float]) -> decisions.SeedSummary:
        metrics = {s: {m: math.nan for m in decisions.METRICS} | {"tau": taus[s]} for s in decisions.SCORERS}
        return decisions.SeedSummary(1, 0, metrics, {}, 0.0, 0.0, 0.0, 0.0)

    taus = {"partial": 0.4, "full": 0.2, "value": 0.3, "logp": 0.1}
    # seed 1 has better everything (+1 reward, +0.1 tau): within a seed, reward = 2 * tau exactly
    summaries = {0: summary(taus), 1: summary({k: v + 0.1 for k, v in taus.items()})}
    rewards = {m: {0: 2 * taus[s], 1: 2 * (taus[s] + 0.1) + 1} for s, m in decisions.SCORERS.items()}
    link = decisions.ranking_vs_reward(summaries, rewards)
    assert link.n == 8 and link.r == pytest.approx(1.0)
    assert math.isnan(link.r_gain) and link.n_gain == 2  # two seeds give no correlation
    rewards["top-k"] = {0: 0.2}  # top-k missing in seed 1: that point is left out
    assert decisions.ranking_vs_reward(summaries, rewards).n == 7


def test_seed_file_round_trip_is_exact_and_byte_stable(tmp_path):
    rows = _rows("p 1/0", [1 / 3, 2.0, -0.1], {"partial": [0.1234567890123, 2, 3]}, eos=[False, True, False])
    path = tmp_path / decisions.FILE
    decisions.write_rows(path, rows)
    assert decisions.read_rows(path) == rows
    first = path.read_bytes()
    decisions.write_rows(path, rows)
    assert path.read_bytes() == first
