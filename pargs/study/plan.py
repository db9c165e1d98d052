"""How big a study is: data sizes, training budgets, decoding sizes, ground truth, decision and ablation sizes.

:data:`FULL` is the default (the quickstart's sizes); :data:`SMOKE` is ``pargs study --smoke``, a tiny
version for tests and installation checks. Every number here reaches the config of the step that uses
it, so a changed number shows up as a changed field of that step's record (:mod:`pargs.study.ledger`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from pargs.study.grids import ABLATION_RATIOS, BETAS, DPO_GRID, PPO_KL


@dataclass(frozen=True)
class StudyPlan:
    """Sizes and budgets of one study (each seed runs the same plan)."""

    #: fields of pargs.tasks.synthetic_prepare.SyntheticSizes (the seed is the study seed's)
    sizes: dict = field(default_factory=lambda: {"n_val_prompts": 60})
    #: max_epochs per training step family (the shipped configs' values; the ablation RMs get the RMs' budget)
    epochs: dict = field(default_factory=lambda: {"sft": 3, "reward": 3, "dpo": 3, "value": 3, "ppo": 4})
    #: extra trainer overrides per family, e.g. {"ppo": {"trainer.limit_train_batches": 2}}
    trainer: dict = field(default_factory=dict)
    rollout_prompts: int | None = None  #: CD-FUDGE rollouts from the first N training prompts (None: all of them)
    val_samples: int = 4  #: samples per validation prompt of the sampled methods (greedy ones: 1)
    test_samples: int = 10  #: samples per test prompt of the sampled methods, as in the quickstart
    test_prompts: int | None = None  #: decode only the first N test prompts (None: all)
    warmup: bool = True  #: an untimed warm-up run of each test method before its timed batches (ms/token)
    best_of_n: int = 10  #: N of Best-of-N
    gt_pairs: int = 100  #: held-out pairs (pairs_val.jsonl, first N) of the Monte Carlo ground truth
    gt_m: int = 16  #: completions per prefix of the ground truth
    #: decision-level evidence (pargs/study/decisions.py): decoding states on the validation prompts (cycling through
    #: them: 120 = 2 per prompt of the 60), candidates per state, Monte Carlo completions per candidate
    decision_states: int = 120
    decision_k: int = 10
    decision_m: int = 32
    ablation_prompts: int | None = 60  #: test prompts of the ablation's decoding (the first N)
    ablation_samples: int = 4  #: samples per prompt of the ablation's decoding
    betas: tuple = BETAS  #: grids: pargs/study/grids.py
    dpo_grid: tuple = DPO_GRID
    ppo_kl: tuple = PPO_KL
    ablation_ratios: tuple = ABLATION_RATIOS

    def as_dict(self) -> dict:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


FULL = StudyPlan()

#: ``--smoke``: tiny data, one epoch, a handful of prompts, small m, one-point training grids
SMOKE = replace(
    FULL,
    sizes={
        "n_sft": 200,
        "n_sft_val": 16,
        "n_pairs": 48,
        "n_pairs_val": 8,
        "n_heldout_prompts": 6,
        "n_test": 3,
        "n_val_prompts": 3,
        "n_reference_candidates": 2,
    },
    epochs={"sft": 1, "reward": 1, "dpo": 1, "value": 1, "ppo": 1},
    trainer={"all": {"trainer.limit_val_batches": 1}, "ppo": {"trainer.limit_train_batches": 1}},
    rollout_prompts=4,
    val_samples=2,
    test_samples=2,
    warmup=False,
    best_of_n=2,
    gt_pairs=3,
    gt_m=2,
    decision_states=4,
    decision_m=4,
    ablation_prompts=2,
    ablation_samples=1,
    betas=(1.0, 2.0),
    dpo_grid=((0.1, 5.0e-4),),
    ppo_kl=(0.05,),
    ablation_ratios=(1.0, 1.5),  # 1.5: a ratio whose name holds a dot
)


def plan_from_dict(data: dict) -> StudyPlan:
    """A plan from :meth:`StudyPlan.as_dict` after a trip through JSON (lists back to the tuples the plan holds);
    fields this version does not know are left out, fields it misses take their defaults."""
    known = {k: v for k, v in data.items() if k in StudyPlan.__dataclass_fields__}
    for name in ("betas", "ppo_kl", "ablation_ratios"):
        if name in known:
            known[name] = tuple(known[name])
    if "dpo_grid" in known:
        known["dpo_grid"] = tuple(tuple(p) for p in known["dpo_grid"])
    return StudyPlan(**known)
