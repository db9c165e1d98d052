"""The declared grids of ``pargs study``: what is tuned, over which values, and how the choice is made.

Every guided method's beta, DPO's (beta, learning rate) and PPO's KL coefficient are chosen per seed from
these grids on the validation prompts (held-out prompt combinations that are neither test nor training
prompts). **Selection criterion:** the highest mean validation oracle reward (mean over the validation
prompts of the per-prompt mean over samples); a tie goes to the first grid value in the order below.
The report records the grids, every grid value's validation reward and the choice.

DPO and PPO are also compared with their initial policy (the SFT model, top-k sampled like them) on the
validation prompts; the report says per seed whether the chosen setting beats it.
"""

from __future__ import annotations

#: the selection criterion above, as the report and tuning.json state it
SELECTION = "highest mean validation oracle reward (mean over prompts of the per-prompt mean); ties: first in the grid"

#: the guided methods whose beta is tuned (presets of pargs/decoding/methods.py)
GUIDED = ("pargs", "pargs-g", "args", "args-sampled", "cd-fudge")
#: beta values tried for each guided method: a geometric grid from the paper's lowest (0.5, its Table 13) to 8, since
#: the partial RM, the full RM and the value model give rewards on different scales. A first real-size seed with
#: (0.5, 1, 1.5, 2.5, 4) chose 4, the edge, for PARGS, PARGS-G and CD-FUDGE (2.5 for ARGS and ARGS-sampled)
BETAS = (0.5, 1.0, 2.0, 4.0, 8.0)
#: the paper's fixed beta (its main experiments): these rows are reported next to the tuned ones
FIXED_BETA = 1.5
#: DPO (beta, learning rate), LoRA r = alpha = 16 as in lightning_configs/baselines/dpo.yaml, whose (0.1, 5e-3) is
#: one of them. Probed on one seed (seed 0 of the quickstart's data, 60 test prompts x 4 samples, top-k; paired by
#: prompt against the SFT model): (0.1, 5e-3) is degenerate -- the chosen responses' log-probability falls by 6.5
#: nats over 3 epochs while the margin grows (both responses lose mass), responses get 20 % longer and the reward
#: drops by 1.36 +- 0.19; (0.1, 5e-4) barely moves the policy (-0.24 +- 0.17); higher beta holds the policy near the
#: SFT model: (0.5, 2e-3) -0.09 +- 0.18, (1, 5e-3) -0.06 +- 0.16 (also tried: (0.1, 2e-3) -0.36, (0.5, 5e-4) -0.33,
#: (0.5, 5e-3) -0.14). None beat the SFT model by more than noise there. On a first real-size seed of the study
#: (60 validation prompts x 4 samples), against the initial policy's -0.48: (0.1, 5e-4) -1.15, (0.1, 5e-3) -3.19,
#: (0.5, 2e-3) -1.05, (1, 5e-3) -0.47; the higher the beta, the nearer the SFT model, so the grid goes up to 2.
DPO_GRID = ((0.1, 5.0e-3), (0.5, 2.0e-3), (1.0, 5.0e-3), (2.0, 5.0e-3))
#: PPO KL coefficients (the shipped config uses 0.05). A first real-size seed with (0.02, 0.05, 0.2) gave validation
#: rewards -0.80, -3.09, 0.87 (initial policy -0.48): PPO is fragile at this size, and 0.2, the edge, was best
PPO_KL = (0.05, 0.2, 0.5)
#: the materialised-prefix RM's prefix_rows ratios of the data-size ablation (the paper's Table 15)
ABLATION_RATIOS = (1.0, 1.5, 2.0, 3.0)


def beta_name(method: str, beta: float) -> str:
    """The name of a guided method decoded at one beta, e.g. ``pargs@b1.5``."""
    return f"{method}@b{beta:g}"


def ratio_name(ratio: float) -> str:
    """The step that trains the ablation's RM at one prefix_rows ratio, e.g. ``ablation-1.5x``."""
    return f"ablation-{ratio:g}x"
