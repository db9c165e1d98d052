"""LightningModules, callbacks and prediction writers."""

from pargs.lit.causal_lm import CausalLMModule
from pargs.lit.decode import DecodeModule
from pargs.lit.dpo import DPOModule
from pargs.lit.ppo import PPOModule
from pargs.lit.reward import RewardModule
from pargs.lit.value import ValueModule
from pargs.lit.writer import JsonlPredictionWriter

__all__ = [
    "CausalLMModule",
    "DPOModule",
    "DecodeModule",
    "JsonlPredictionWriter",
    "PPOModule",
    "RewardModule",
    "ValueModule",
]
