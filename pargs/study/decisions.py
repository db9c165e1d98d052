"""Decision-level evidence in a study: does the partial RM rank the candidates of a decoding step better?

The paper's argument is about one decoding step: a guided decoder ranks the k candidate tokens of one prefix with
an RM, so an RM fit for partial sequences should rank them better than a full-sequence RM. Per seed, the
``decisions`` step (:func:`run_step`) draws decoding states on the validation prompts, estimates every
candidate's value by Monte Carlo (:mod:`pargs.metrics.decision_values`: k = 10 candidates, m completions each,
common random numbers across the candidates of a state, the oracle as the reward) and scores the candidates with
the partial RM, the full RM, the CD-FUDGE value model and the reference LM's log-probability. It writes one row
per candidate to ``<seed dir>/decisions.csv.gz`` (:data:`COLUMNS`: the state, its prompt and prefix text, the
candidate, its Monte Carlo value and every scorer's score); everything below is computed from those files.

- Per state and scorer: Kendall's tau-b and top-1 agreement with the values, on all pairs, on the pairs with an
  EOS candidate and on the rest (:mod:`pargs.metrics.rank_agreement`, which also says how ties are handled).
- The claim (:func:`decision_claim`): the partial RM's tau-b is higher than the full RM's, paired by state within
  a seed (Wilcoxon signed-rank) and tested across seeds with seeds as the unit, by the same machinery and
  verdict rule as the method claims (:func:`pargs.metrics.claims.compare_methods`).
- Ranking and reward (:func:`ranking_vs_reward`): across seeds and the four scorers, does a scorer that ranks the
  candidates better go with a higher test reward of the method it guides? The number is the correlation of the
  two after the seed's mean is taken out of each (so that a seed with better models all round does not count as
  evidence); the plot shows every (seed, method) point.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from pargs.metrics.claims import ALPHA, compare_methods
from pargs.metrics.rank_agreement import StateRanking, rank_state
from pargs.study.csv_gz import read_csv_gz, write_csv_gz

FILE = "decisions.csv.gz"  #: per seed, under the seed directory
#: the scorers of the candidates (columns ``score_<name>``), each with the decoding method it guides in the study
SCORERS = {"partial": "pargs", "full": "args-sampled", "value": "cd-fudge", "logp": "top-k"}
SCORER_LABELS = {
    "partial": "partial RM",
    "full": "full RM",
    "value": "CD-FUDGE value model",
    "logp": "reference LM log-probability",
}
METRICS = {
    "tau": "τ-b, all pairs",
    "tau_eos": "τ-b, pairs with EOS",
    "tau_rest": "τ-b, other pairs",
    "top1": "top-1",
    "top1_rest": "top-1 among non-EOS",
}
STATEMENT = (
    "The argument of the paper: at each decoding step a partial-sequence RM ranks the k candidate tokens of the "
    "prefix better than a full-sequence RM (which was never trained on prefixes)"
)
NAME = "partial RM vs full RM"  #: the claim's name in the claims table
#: the claim's view in the claims table: what its numbers are
CLAIM_VIEW = "Kendall τ-b per decoding step"
#: the columns of a seed's file and their types (:mod:`pargs.study.csv_gz`)
COLUMNS: dict[str, object] = {
    "state": str,
    "prompt_id": str,
    "prompt": str,
    "prefix": str,
    "step": int,
    "rank": int,
    "token": int,
    "word": str,
    "eos": "bool",
    "mc_mean": float,
    "mc_se": float,
    "mc_n": int,
    "mc_truncated": int,
    "mc_se_diff_best": float,
    **{f"score_{s}": float for s in SCORERS},
}


# ---------------------------------------------------------------------------------------------- the step
def run_step(cfg: dict, out: Path) -> None:
    """The ``decisions`` step of one seed: states, values, scores, written to ``out`` (a ``.csv.gz``)."""
    import torch

    from pargs.decoding.build import RewardSpec, build_scorer
    from pargs.decoding.text_reward import OracleReward
    from pargs.metrics.decision_values import candidate_scores, decision_values, draw_states
    from pargs.models.encoding import decode_response
    from pargs.models.loading import ModelSpec, load_causal_lm, load_tokenizer
    from pargs.records import load_prompts

    prompts = load_prompts(cfg["prompts"])
    spec = ModelSpec(path=cfg["policy"])
    tokenizer = load_tokenizer(spec)
    with torch.inference_mode():
        policy = load_causal_lm(spec, tokenizer).eval()
        states = draw_states(policy, tokenizer, prompts, cfg["states"], cfg["seed"], cfg["max_new_tokens"])
        decisions = decision_values(
            policy, tokenizer, states, OracleReward(), cfg["k"], cfg["m"], cfg["seed"], cfg["max_new_tokens"]
        )
        scores = {"logp": [list(d.logp) for d in decisions]}
        for name, path in cfg["scorers"].items():
            reward = RewardSpec(model=ModelSpec(path=path))
            model, rm_tokenizer = reward.load()
            scorer = build_scorer(reward, model, rm_tokenizer, tokenizer)
            scores[name] = candidate_scores(scorer, tokenizer, decisions).tolist()
    rows = []
    for i, d in enumerate(decisions):
        for j, v in enumerate(d.tokens):
            value = d.values[j]
            cells = (
                d.state.key,
                d.state.prompt_id,
                d.state.prompt,
                decode_response(tokenizer, d.state.prefix),
                len(d.state.prefix),
                j,
                v,
                tokenizer.convert_ids_to_tokens(v),
                bool(d.eos[j]),
                value.mean,
                value.se,
                value.n,
                value.truncated,
                d.se_diff[j],
                *(scores[s][i][j] for s in SCORERS),
            )
            rows.append(dict(zip(COLUMNS, cells)))
    write_rows(out, rows)


def write_rows(path: Path, rows: list[dict]) -> None:
    """Write the candidate rows (dicts keyed by :data:`COLUMNS`) as a gzipped CSV, atomically and byte-reproducibly
    (:func:`pargs.study.csv_gz.write_csv_gz`)."""
    write_csv_gz(path, list(COLUMNS), rows)


def read_rows(path: Path) -> list[dict]:
    """The candidate rows of one seed's file, typed."""
    return read_csv_gz(path, COLUMNS)


# ---------------------------------------------------------------------------------------------- per seed
def rankings(rows: list[dict]) -> dict[str, dict[str, StateRanking]]:
    """Per scorer: per state, how its order of the candidates agrees with their Monte Carlo values."""
    by_state: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_state[r["state"]].append(r)
    out: dict[str, dict[str, StateRanking]] = {s: {} for s in SCORERS}
    for key, cands in by_state.items():
        cands.sort(key=lambda r: r["rank"])
        values = [r["mc_mean"] for r in cands]
        eos = [r["eos"] for r in cands]
        for s in SCORERS:
            out[s][key] = rank_state([r[f"score_{s}"] for r in cands], values, eos)
    return out


def _mean(xs) -> float:
    xs = [x for x in xs if not math.isnan(x)]
    return sum(xs) / len(xs) if xs else math.nan


@dataclass
class SeedSummary:
    """One seed's decision-level numbers."""

    states: int
    with_eos: int  #: states with an EOS candidate
    metrics: dict[str, dict[str, float]]  #: scorer -> metric (:data:`METRICS`) -> mean over states (NaN left out)
    counted: dict[str, int]  #: metric -> states where it is defined
    mean_se: float  #: mean SE of a sampled value
    #: mean SE of the difference between a sampled candidate and its state's best, when that is sampled too, paired
    #: by completion (common random numbers)
    se_diff_paired: float
    se_diff_independent: float  #: the same if the two candidates' completions were independent
    value_ties: float  #: share of candidate pairs whose values tie exactly


def summarise_seed(rows: list[dict]) -> SeedSummary:
    ranks = rankings(rows)
    metrics = {s: {m: _mean(getattr(r, m) for r in ranks[s].values()) for m in METRICS} for s in SCORERS}
    first = next(iter(SCORERS))
    counted = {m: sum(not math.isnan(getattr(r, m)) for r in ranks[first].values()) for m in METRICS}
    by_state: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_state[r["state"]].append(r)
    paired, independent, ties, pairs = [], [], 0, 0
    for cands in by_state.values():
        best = max(cands, key=lambda r: (r["mc_mean"], -r["rank"]))
        for r in cands:
            if r is not best and r["mc_n"] and best["mc_n"]:
                paired.append(r["mc_se_diff_best"])
                independent.append(math.hypot(r["mc_se"], best["mc_se"]))
        values = [r["mc_mean"] for r in cands]
        pairs += len(values) * (len(values) - 1) // 2
        ties += sum(values[i] == values[j] for i in range(len(values)) for j in range(i + 1, len(values)))
    return SeedSummary(
        len(by_state),
        sum(any(r["eos"] for r in c) for c in by_state.values()),
        metrics,
        counted,
        _mean(r["mc_se"] for r in rows if r["mc_n"]),
        _mean(paired),
        _mean(independent),
        ties / pairs if pairs else math.nan,
    )


# ---------------------------------------------------------------------------------------------- across seeds
def decision_claim(decisions: dict[int, list[dict]], alpha: float = ALPHA):
    """The claim "the partial RM ranks a step's candidates better than the full RM" from per-seed candidate rows:
    a :class:`pargs.metrics.claims.Claim` on the per-state tau-b (states whose values all tie left out), or None
    without decision files. It is the second of the study's primary claims
    (:data:`pargs.study.evidence.PRIMARY_SEQUENCE`)."""
    if not decisions:
        return None
    per_seed = {s: rankings(rows) for s, rows in decisions.items()}

    def taus(scorer: str) -> dict[int, dict[str, float]]:
        return {
            s: {k: r.tau for k, r in ranks[scorer].items() if not math.isnan(r.tau)} for s, ranks in per_seed.items()
        }

    return compare_methods(NAME, "better", taus("partial"), taus("full"), alpha)


@dataclass
class RankingVsReward:
    """Across seeds and scorers: a scorer's ranking of the candidates against the test reward of the method it
    guides."""

    points: list[tuple[int, str, float, float]]  #: (seed, scorer, mean tau-b over states, method's test reward)
    r: float  #: Pearson correlation of tau-b and reward, each with its seed's mean taken out (the number)
    n: int  #: points
    r_gain: float  #: over seeds: (partial - full tau-b) against (PARGS - ARGS-sampled reward)
    n_gain: int  #: seeds in r_gain


def _pearson(xs: list[float], ys: list[float]) -> float:
    if len(xs) < 3:
        return math.nan
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    sxx, syy = sum((x - mx) ** 2 for x in xs), sum((y - my) ** 2 for y in ys)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else math.nan


def ranking_vs_reward(summaries: dict[int, SeedSummary], rewards: dict[str, dict[int, float]]) -> RankingVsReward:
    """``rewards[method][seed]``: the method's mean test reward; the methods are :data:`SCORERS`' values."""
    points = [
        (s, scorer, summary.metrics[scorer]["tau"], rewards[method][s])
        for s, summary in sorted(summaries.items())
        for scorer, method in SCORERS.items()
        if s in rewards.get(method, {}) and not math.isnan(summary.metrics[scorer]["tau"])
    ]
    xs, ys = [], []
    for s in sorted({p[0] for p in points}):
        own = [p for p in points if p[0] == s]
        mx, my = sum(p[2] for p in own) / len(own), sum(p[3] for p in own) / len(own)
        xs += [p[2] - mx for p in own]
        ys += [p[3] - my for p in own]
    seeds = [s for s in sorted(summaries) if all(s in rewards.get(m, {}) for m in ("pargs", "args-sampled"))]
    gains = [
        (
            summaries[s].metrics["partial"]["tau"] - summaries[s].metrics["full"]["tau"],
            rewards["pargs"][s] - rewards["args-sampled"][s],
        )
        for s in seeds
    ]
    return RankingVsReward(
        points, _pearson(xs, ys), len(points), _pearson([g[0] for g in gains], [g[1] for g in gains]), len(gains)
    )
