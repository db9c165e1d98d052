"""Theorem 1's test in the study (pargs/study/evidence.py `theorem1`) against hand-computed values."""

from __future__ import annotations

import pytest

from pargs.metrics.claims import MIXED, NO_EVIDENCE, SUPPORTED
from pargs.metrics.ground_truth_agreement import PairOutcome
from pargs.study.evidence import THEOREM1_NAME, Evidence, study_verdicts, theorem1


def _outcomes(right: int, pairs: int = 10) -> list[PairOutcome]:
    """An RM right about the ground truth on the first ``right`` pairs at 50 %, agreeing with every label."""
    return [PairOutcome(f"p{i}", 0.5, 1.0, float(i < right), 3.0, False) for i in range(pairs)]


def test_theorem1_tests_seeds_as_the_unit():
    """Five seeds of ten pairs: the partial RM right on 8, the full RM on 3, 4, 5, 6, 7 (always a subset)."""
    seeds = list(range(5))
    outcomes = {s: {"rm_partial": _outcomes(8), "rm_full": _outcomes(3 + s)} for s in seeds}
    ev = Evidence(seeds, {}, {}, {}, {}, {}, {}, outcomes, {}, {})
    t1 = theorem1(ev)
    truth = next(t for t in t1.tests if t.against == "truth" and t.slice == "all")
    assert truth.per_seed_diff == pytest.approx([0.5, 0.4, 0.3, 0.2, 0.1])
    # across seeds: five positive differences -> exact signed-rank p = 1/32 for, 1 against
    assert (truth.across_for, truth.across_against) == (pytest.approx(1 / 32), pytest.approx(1.0))
    # per seed: McNemar's exact test on 5 - s discordant pairs, all the partial RM's: p = 1/2^(5 - s)
    assert [x.p_value for x in truth.per_seed_for] == pytest.approx([1 / 2 ** (5 - s) for s in seeds])
    # pooled over seeds: 15 discordant pairs, all the partial RM's
    assert truth.pooled_for.p_value == pytest.approx(1 / 2**15)
    assert (truth.partial, truth.full, truth.n) == (pytest.approx(0.8), pytest.approx(0.5), 50)
    assert truth.verdict == SUPPORTED and t1.claim.verdict == SUPPORTED
    # against the label both RMs are always right: no difference, no evidence
    label = next(t for t in t1.tests if t.against == "label" and t.slice == "all")
    assert label.per_seed_diff == [0.0] * 5 and label.verdict == NO_EVIDENCE
    assert (label.across_for, label.claim.zeros) == (1.0, 5)  # five zero differences: nothing to rank
    # Theorem 1 is the only primary claim here (no method or decision claim to test): first of a sequence of one,
    # its adjusted p is its own
    decision = study_verdicts([], t1)[THEOREM1_NAME]
    assert decision.primary and decision.position == 1 and decision.adjusted_for == pytest.approx(1 / 32)
    assert decision.verdict == SUPPORTED and decision.needed is None


def test_theorem1_is_not_supported_when_seeds_disagree():
    """The partial RM better in three seeds, worse in two: the pooled pairs favour it, the seeds do not agree."""
    rights = [(9, 1), (9, 1), (9, 1), (4, 6), (4, 6)]
    outcomes = {s: {"rm_partial": _outcomes(p), "rm_full": _outcomes(f)} for s, (p, f) in enumerate(rights)}
    ev = Evidence(list(range(5)), {}, {}, {}, {}, {}, {}, outcomes, {}, {})
    truth = next(t for t in theorem1(ev).tests if t.against == "truth" and t.slice == "all")
    assert truth.per_seed_diff == pytest.approx([0.8, 0.8, 0.8, -0.2, -0.2])
    # |d| ranks: 0.2, 0.2 -> 1.5 each; 0.8 x 3 -> 4 each. W+ = 12 of 15; W+ >= 12 <=> the negative ranks sum to
    # <= 3: {}, {1.5}, {1.5'}, {1.5, 1.5'} -> 4 of 32
    assert truth.across_for == pytest.approx(4 / 32)
    assert truth.pooled_for.p_value < 0.001  # 24 partial-only vs 4 full-only pairs pooled: driven by 3 seeds
    # seeds 0-2 are significant for the partial RM (8 discordant pairs, p = 1/256), so the verdict is mixed
    assert truth.verdict == MIXED
