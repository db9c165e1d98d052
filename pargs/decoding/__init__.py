"""Guided decoding as plain functions: no Lightning needed (use it from a notebook).

>>> from pargs.decoding import generate, preset, build_scorer, RewardSpec
>>> gen = generate(policy, tokenizer, prompts, preset("pargs", scorer="rm"), seeds, scorer=CachedCausalScorer(rm))

or inside Hugging Face ``generate``:

>>> proc = GuidedLogitsProcessor.from_method(preset("pargs-g", scorer="rm"), CachedCausalScorer(rm), tokenizer)
>>> out = policy.generate(**enc, logits_processor=[proc.prepare(enc["attention_mask"])], **proc.generate_kwargs())

Importing the package registers the built-in decoding rules (:mod:`pargs.decoding.rules`).
"""

import pargs.decoding.rules  # noqa: F401  (registers sample, guided and best_of_n)
from pargs.decoding.build import RewardSpec, build_scorer, text_reward
from pargs.decoding.cached_scorer import CachedCausalScorer
from pargs.decoding.engine import Generation, generate
from pargs.decoding.hf_processor import GuidedLogitsProcessor
from pargs.decoding.methods import PRESETS, DecodeMethod, preset
from pargs.decoding.noise import stable_seed
from pargs.decoding.registry import register
from pargs.decoding.text_reward import ModelReward, OracleReward
from pargs.decoding.text_scorer import TextScorer

__all__ = [
    "PRESETS",
    "CachedCausalScorer",
    "DecodeMethod",
    "Generation",
    "GuidedLogitsProcessor",
    "ModelReward",
    "OracleReward",
    "RewardSpec",
    "TextScorer",
    "build_scorer",
    "generate",
    "preset",
    "register",
    "stable_seed",
    "text_reward",
]
