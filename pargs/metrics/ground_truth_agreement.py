"""How often a reward model's prefix preferences agree with a Monte Carlo ground truth, next to the label.

:func:`pargs.metrics.prefix_agreement.prefix_agreement` (the paper's Table 12 view) counts how often
an RM scores the chosen response's prefix higher. That is partly circular: the label is what the
partial RM was trained on, and a prefix of the chosen response need not be the better prefix. Here
the same RM prefix scores (:func:`pargs.metrics.prefix_agreement.pair_prefix_scores`) are compared
with both references, the label and the ground truth of :func:`pargs.metrics.prefix_values.prefix_values`
(which prefix has the higher expected oracle reward when pi_ref completes it).

Outcomes are kept per (pair, fraction), so two RMs can be paired on the same pairs
(:func:`compare_rms`, McNemar's test) and the results sliced, e.g. by the synthetic task's
"but"-contrast cases (:func:`pargs.tasks.synthetic.but_contrast`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from pargs.errors import ConfigError
from pargs.metrics.prefix_agreement import agreement, encode_pairs, pair_prefix_scores
from pargs.metrics.prefix_values import GroundTruth, pair_id
from pargs.metrics.significance import Alternative, McNemarTest, mcnemar
from pargs.prefixes import prefix_fraction_lengths


@dataclass(frozen=True)
class PairOutcome:
    """One RM on one pair at one fraction of its length."""

    pair_id: str  #: the pair's id (see :func:`pargs.metrics.prefix_values.pair_id`)
    fraction: float  #: fraction of the pair's length
    label: float  #: 1 / 0.5 / 0: the chosen response's prefix scores higher / the same / lower (Table 12's count)
    truth: float  #: 1 / 0.5 / 0 the same for the ground truth's better prefix; NaN when the ground truth is a tie
    z: float  #: the ground truth's z-score (:attr:`pargs.metrics.prefix_values.PrefixComparison.z`)
    contrast: bool | None = None  #: either response is a "but"-contrast case; None when not asked


@torch.no_grad()
def rm_agreement(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    pairs: Sequence[Mapping],
    ground_truth: GroundTruth,
    batch_size: int = 32,
    contrast: Callable[[str], bool] | None = None,
) -> list[PairOutcome]:
    """Per pair and fraction of ``ground_truth``: does the RM (causal or encoder) agree with the label, and
    with the ground truth?

    ``pairs`` are the records ``ground_truth`` was computed on (matched by id); their prefixes are cut
    again with the RM's tokenizer and must come out as long as the ground truth's, or a ConfigError
    says so. ``contrast(response)`` (e.g. :func:`pargs.tasks.synthetic.but_contrast`) marks the pairs
    where it holds for either response.
    """
    truth = {(c.pair_id, c.fraction): c for c in ground_truth.comparisons}
    fractions = ground_truth.fractions
    device = next(model.parameters()).device
    out: list[PairOutcome] = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        names = [pair_id(r, start + n) for n, r in enumerate(chunk)]
        ids, mask, pl, lw, ll = encode_pairs(tokenizer, chunk, ground_truth.max_length)
        lengths = [prefix_fraction_lengths(lw, ll, f, ground_truth.pad_rule) for f in fractions]
        rows = []
        for f, i in zip(fractions, lengths):
            for b, name in enumerate(names):
                c = truth.get((name, f))
                if c is None:
                    raise ConfigError(
                        f"pair {name!r} has no ground truth at {f:.0%}: compute prefix_values on the same pairs"
                    )
                if (min(int(i[b]), int(lw[b])), min(int(i[b]), int(ll[b]))) != (c.length_w, c.length_l):
                    raise ConfigError(
                        f"pair {name!r} at {f:.0%}: the RM's tokenizer cuts prefixes of "
                        f"{min(int(i[b]), int(lw[b]))} / {min(int(i[b]), int(ll[b]))} tokens, the "
                        f"ground truth's have {c.length_w} / {c.length_l}; use the policy's tokenizer"
                    )
            rows.append([truth[(name, f)] for name in names])
        scores = pair_prefix_scores(
            model,
            ids.to(device),
            mask.to(device),
            pl.to(device),
            lw.to(device),
            pl.to(device),
            ll.to(device),
            [i.to(device) for i in lengths],
        )
        marks = [contrast(r["chosen"]) or contrast(r["rejected"]) if contrast else None for r in chunk]
        for f, comps, (r_w, r_l) in zip(fractions, rows, scores):
            label = agreement(r_w, r_l).tolist()
            reverse = agreement(r_l, r_w).tolist()
            for b, c in enumerate(comps):
                vs_truth = {1: label[b], -1: reverse[b], 0: math.nan}[c.preferred]
                out.append(PairOutcome(names[b], f, label[b], vs_truth, c.z, marks[b]))
    return out


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else math.nan


@dataclass(frozen=True)
class AgreementSummary:
    """Shares of pairs an RM gets right at one fraction (NaN where a slice is empty)."""

    n_pairs: int  #: pairs
    label: float  #: mean agreement with the label
    n_truth: int  #: pairs whose ground truth is not a tie
    truth: float  #: mean agreement with the ground truth over those
    n_confident: int  #: pairs whose ground truth has |z| > z_min
    truth_confident: float  #: mean agreement with the ground truth over those
    n_contrast: int  #: "but"-contrast pairs (0 when not marked)
    label_contrast: float  #: mean agreement with the label over those
    truth_contrast: float  #: mean agreement with the ground truth over those with a non-tie ground truth


def summarize(outcomes: Sequence[PairOutcome], z_min: float = 2.0) -> dict[float, AgreementSummary]:
    """Per fraction: agreement with the label and with the ground truth, overall and on the slices."""
    out = {}
    for f in sorted({o.fraction for o in outcomes}):
        rows = [o for o in outcomes if o.fraction == f]
        known = [o for o in rows if not math.isnan(o.truth)]
        confident = [o for o in known if abs(o.z) > z_min]
        contrast = [o for o in rows if o.contrast]
        out[f] = AgreementSummary(
            len(rows),
            _mean([o.label for o in rows]),
            len(known),
            _mean([o.truth for o in known]),
            len(confident),
            _mean([o.truth for o in confident]),
            len(contrast),
            _mean([o.label for o in contrast]),
            _mean([o.truth for o in contrast if not math.isnan(o.truth)]),
        )
    return out


def compare_rms(
    a: Sequence[PairOutcome],
    b: Sequence[PairOutcome],
    fraction: float,
    against: Literal["truth", "label"] = "truth",
    z_min: float | None = None,
    alternative: Alternative = "two-sided",
    a_name: str = "A",
    b_name: str = "B",
) -> McNemarTest:
    """McNemar's test of two RMs' right/wrong calls on the same pairs at one fraction.

    A pair counts when both RMs make a call (a tie in an RM's scores, 0.5, is neither right nor wrong
    and drops the pair) and, against the ground truth, when the ground truth is not a tie and, with
    ``z_min``, when it is confident (|z| > z_min). For one seed; :func:`pargs.metrics.significance.pooled_mcnemar`
    combines seeds.
    """

    def calls(outcomes: Sequence[PairOutcome]) -> dict[str, float]:
        rows = {o.pair_id: o for o in outcomes if o.fraction == fraction}
        return {k: getattr(o, against) for k, o in rows.items() if z_min is None or abs(o.z) > z_min}

    ca, cb = calls(a), calls(b)
    if set(ca) != set(cb):
        raise ConfigError(f"{a_name} and {b_name} were not scored on the same pairs at {fraction:.0%}")
    keys = sorted(k for k in ca if ca[k] in (0.0, 1.0) and cb[k] in (0.0, 1.0))
    return mcnemar([ca[k] == 1.0 for k in keys], [cb[k] == 1.0 for k in keys], alternative, a_name, b_name)


def ground_truth_table(
    results: Mapping[str, Sequence[PairOutcome]], ground_truth: GroundTruth, z_min: float = 2.0
) -> str:
    """Markdown: per RM and fraction, agreement with the label and with the ground truth, with its slices."""
    contrast = any(o.contrast is not None for res in results.values() for o in res)
    head = [
        "reward model",
        "prefix",
        "pairs",
        "vs label",
        "vs ground truth",
        f"n with abs(z) > {z_min:g}",
        "vs ground truth, those",
    ]
    if contrast:
        head += ['n "but"-contrast', "contrast vs label", "contrast vs ground truth"]
    lines = ["| " + " | ".join(head) + " |", "|---|---:|" + "---:|" * (len(head) - 2)]
    num = lambda x: "–" if math.isnan(x) else f"{x:.3f}"  # noqa: E731
    for name, res in results.items():
        for f, s in summarize(res, z_min).items():
            cells = [
                name,
                f"{round(f * 100)} %",
                str(s.n_pairs),
                num(s.label),
                f"{num(s.truth)} (n={s.n_truth})",
                str(s.n_confident),
                num(s.truth_confident),
            ]
            if contrast:
                cells += [str(s.n_contrast), num(s.label_contrast), num(s.truth_contrast)]
            lines.append("| " + " | ".join(cells) + " |")
    se = ground_truth.mean_se()
    se_text = ", ".join(f"{round(f * 100)} %: " + ("exact" if math.isnan(v) else f"{v:.3f}") for f, v in se.items())
    lines += [
        "",
        "vs label: share of pairs whose chosen response's prefix gets the higher reward (the paper's Table 12 "
        "view). vs ground truth: share whose better prefix by the ground truth gets the higher reward, over "
        "pairs where the ground truth is not a tie (identical prefixes). Ties in an RM's scores count one half.",
        f"Ground truth: the oracle's expected final reward of each prefix when pi_ref completes it, the mean of "
        f"m = {ground_truth.m} sampled completions (seed {ground_truth.seed}, responses of at most "
        f"{ground_truth.max_new_tokens} tokens); a complete response is scored exactly. Mean standard error of a "
        f"sampled prefix value: {se_text}. abs(z): the difference of the two values over its standard error.",
    ]
    if contrast:
        lines.append(
            '"but"-contrast: pairs where, in either response, the last "but" overturns the sentiment of the '
            "clauses before it."
        )
    return "\n".join(lines)
