"""The choice of each tuned setting from the validation decodes (the criterion: :mod:`pargs.study.grids`).

The ``tune`` step decodes, on the validation prompts, every guided method at every beta of the grid
(``pargs@b1.5`` ...), the SFT model top-k sampled (``sft-top-k``, the initial policy of DPO and PPO) and
every DPO and PPO grid point's policy top-k sampled (``dpo-<i>``, ``ppo-<i>``). :func:`select` reads
those predictions and returns what ``tuning.json`` holds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from pargs.errors import ConfigError
from pargs.metrics.reward_stats import per_prompt_means, reward_summary
from pargs.study.grids import GUIDED, beta_name


def mean_rewards(records: Sequence[dict]) -> dict[str, float]:
    """Per method: the mean over prompts of the per-prompt mean oracle reward."""
    rows: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for r in records:
        if r.get("reward") is not None:
            rows[r["method"]].append((str(r["id"]), r["reward"]))
    return {m: reward_summary(per_prompt_means(x))[0] for m, x in rows.items()}


def best(values: dict, order: Sequence) -> object:
    """The key of the highest value; a tie goes to the first key in ``order``."""
    top = max(values[k] for k in order)
    return next(k for k in order if values[k] == top)


def select(records: Sequence[dict], plan, criterion: str) -> dict:
    """The chosen beta per guided method, DPO and PPO grid point, with every grid value's validation reward."""
    means = mean_rewards(records)

    def reward(name: str) -> float:
        if name not in means:
            raise ConfigError(f"the validation decodes hold no reward for {name!r}: run the study with --redo tune")
        return means[name]

    out: dict = {"criterion": criterion, "guided": {}}
    for g in GUIDED:
        values = {b: reward(beta_name(g, b)) for b in plan.betas}
        out["guided"][g] = {"values": {f"{b:g}": v for b, v in values.items()}, "chosen": best(values, plan.betas)}
    initial = reward("sft-top-k")
    out["initial_policy"] = {"name": "sft-top-k", "reward": initial}
    for family, grid, keys in (("dpo", plan.dpo_grid, ("beta", "lr")), ("ppo", plan.ppo_kl, ("kl_coef",))):
        names = [f"{family}-{i}" for i in range(len(grid))]
        values = {n: reward(n) for n in names}
        chosen = best(values, names)
        points = [dict(zip(keys, p if isinstance(p, (tuple, list)) else (p,))) for p in grid]
        out[family] = {
            "grid": [{"name": n, **pt, "reward": values[n]} for n, pt in zip(names, points)],
            "chosen_name": chosen,
            "chosen": points[names.index(chosen)],
            "reward": values[chosen],
            "beats_initial_policy": values[chosen] > initial,
        }
    return out
