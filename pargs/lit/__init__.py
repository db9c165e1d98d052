"""LightningModules, callbacks and prediction writers."""

from pargs.lit.causal_lm import CausalLMModule
from pargs.lit.decode import DecodeModule
from pargs.lit.reward import RewardModule
from pargs.lit.writer import JsonlPredictionWriter

__all__ = ["CausalLMModule", "DecodeModule", "JsonlPredictionWriter", "RewardModule"]
