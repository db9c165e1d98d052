"""Build rewards and scorers from a config (:class:`RewardSpec`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from pargs.decoding.cached_scorer import CachedCausalScorer
from pargs.decoding.scorer import Scorer
from pargs.decoding.stream import why_no_candidate_chunks
from pargs.decoding.text_reward import InputFormat, ModelReward, OracleReward, TextReward
from pargs.decoding.text_scorer import TextScorer
from pargs.errors import ConfigError
from pargs.models.encoding import same_vocabulary
from pargs.models.loading import ModelSpec, load_reward_model, load_tokenizer
from pargs.models.reward_model import is_causal_reward_model
from pargs.tasks.synthetic import ORACLE_NAME

log = logging.getLogger(__name__)


@dataclass
class RewardSpec:
    """A reward used for guidance or evaluation: a reward model, or the synthetic task's oracle."""

    model: ModelSpec | None = None  #: a reward model directory / hub name (num_labels == 1)
    oracle: bool = False  #: use the synthetic task's hidden oracle instead of a model
    mode: Literal["auto", "cached", "text"] = "auto"  #: cached: a causal full-attention RM sharing the tokenizer
    input_format: InputFormat = "concat"  #: how the text path encodes (prompt, response); see ModelReward
    template: str = "{prompt}{response}"  #: format string for input_format "template"
    batch_size: int = 64  #: rows per reward-model forward pass on the text path
    max_length: int | None = None  #: truncate reward-model inputs on the text path

    def __post_init__(self) -> None:
        if (self.model is None) == (not self.oracle):
            raise ConfigError("a RewardSpec needs exactly one of `model` or `oracle: true`")

    @property
    def label(self) -> str:
        """What this reward is, as prediction lines, tables and figures name it."""
        return reward_label(self.oracle, self.model.path if self.model is not None else None)

    def load(self) -> tuple[PreTrainedModel | None, PreTrainedTokenizerBase | None]:
        """The reward model and its tokenizer (None, None for the oracle)."""
        if self.oracle:
            return None, None
        tokenizer = load_tokenizer(self.model)
        model = load_reward_model(self.model, tokenizer).eval()
        model.requires_grad_(False)
        return model, tokenizer


def reward_label(oracle: bool, model_path: str | None) -> str:
    """The name of a reward: the synthetic oracle's, or ``reward of <model path>``."""
    if oracle:
        return ORACLE_NAME
    return f"reward of {model_path}" if model_path else "reward of a model built from a config"


def text_reward(
    spec: RewardSpec, model: PreTrainedModel | None, tokenizer: PreTrainedTokenizerBase | None
) -> TextReward:
    """The reward as a function of (prompt, response) texts."""
    if spec.oracle:
        return OracleReward()
    return ModelReward(model, tokenizer, spec.input_format, spec.template, spec.batch_size, spec.max_length)


def build_scorer(
    spec: RewardSpec,
    model: PreTrainedModel | None,
    tokenizer: PreTrainedTokenizerBase | None,
    policy_tokenizer: PreTrainedTokenizerBase,
) -> Scorer:
    """The fastest scorer the reward allows (``mode="auto"``), or the one ``mode`` asks for.

    Everything but the cached scorer is a :class:`TextScorer`; a reward model in the "concat" format that
    shares the policy's vocabulary reads token ids there, never a re-encoding of their text.
    """
    cached_ok = (
        model is not None
        and is_causal_reward_model(model)
        and same_vocabulary(tokenizer, policy_tokenizer)
        and spec.input_format == "concat"
    )
    if spec.mode == "cached" and not cached_ok:
        raise ConfigError(
            "scorer mode 'cached' needs a causal reward model that shares the policy's tokenizer and the 'concat' "
            "input format; use mode 'text' (or 'auto') for this reward"
        )
    if cached_ok and spec.mode == "auto" and (reason := why_no_candidate_chunks(model.config)):
        log.warning(
            "reward model %s: the cached scorer does not fit (%s); scoring on the slower text path",
            type(model).__name__,
            reason,
        )
        cached_ok = False
    if cached_ok and spec.mode != "text":
        return CachedCausalScorer(model)  # in mode 'cached', an unfit model fails here, naming the reason
    return TextScorer(text_reward(spec, model, tokenizer), policy_tokenizer)
