"""Guided decoding as plain functions: no Lightning needed (use it from a notebook).

>>> from pargs.decoding import generate, preset, build_scorer, RewardSpec
>>> gen = generate(policy, tokenizer, prompts, preset("pargs", scorer="rm"), seeds, scorer=CachedCausalScorer(rm))

Importing the package registers the built-in decoding rules (:mod:`pargs.decoding.rules`).
"""

import pargs.decoding.rules  # noqa: F401  (registers sample, guided and best_of_n)
from pargs.decoding.build import RewardSpec, build_scorer, text_reward
from pargs.decoding.cached_scorer import CachedCausalScorer
from pargs.decoding.engine import Generation, generate
from pargs.decoding.methods import PRESETS, DecodeMethod, preset
from pargs.decoding.noise import stable_seed
from pargs.decoding.registry import register
from pargs.decoding.text_reward import ModelReward, OracleReward
from pargs.decoding.text_scorer import TextScorer

__all__ = [
    "PRESETS", "CachedCausalScorer", "DecodeMethod", "Generation", "ModelReward", "OracleReward", "RewardSpec",
    "TextScorer", "build_scorer", "generate", "preset", "register", "stable_seed", "text_reward",
]
