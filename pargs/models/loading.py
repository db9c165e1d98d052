"""Load (or build from a config) tokenizers, policies and reward models, Hugging Face style.

A model is named by a :class:`ModelSpec`: a local directory or hub name (``from_pretrained``), or a
config dict that builds a fresh, randomly initialised model (tiny models for tests and the
quickstart). ``trust_remote_code`` stays off unless the spec turns it on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from pargs.errors import ConfigError

log = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "float64": torch.float64}


@dataclass
class ModelSpec:
    """Where a model comes from."""

    #: local directory or hub name passed to ``from_pretrained``; None builds from ``config``
    path: str | None = None
    #: config keys for a fresh model (``model_type`` required), e.g. ``{model_type: gpt2, n_layer: 2}``;
    #: with ``path`` set, these override the loaded config instead
    config: dict[str, Any] = field(default_factory=dict)
    #: tokenizer directory or hub name; defaults to ``path``
    tokenizer: str | None = None
    #: allow a checkpoint's own Python code to run (off: only code shipped with transformers runs)
    trust_remote_code: bool = False
    #: parameter dtype: float32, bfloat16, float16 (None keeps the checkpoint's / float32)
    dtype: str | None = None

    def __post_init__(self) -> None:
        if self.path is None and not self.config.get("model_type"):
            raise ConfigError("a ModelSpec needs either `path` or `config` with a `model_type`")
        if self.dtype is not None and self.dtype not in _DTYPES:
            raise ConfigError(f"dtype must be one of {sorted(_DTYPES)}, got {self.dtype!r}")

    @property
    def tokenizer_path(self) -> str:
        source = self.tokenizer or self.path
        if source is None:
            raise ConfigError("a model built from a config needs `tokenizer` set to a tokenizer directory")
        return source

    @property
    def torch_dtype(self) -> torch.dtype | None:
        return _DTYPES[self.dtype] if self.dtype else None


def load_tokenizer(spec: ModelSpec) -> PreTrainedTokenizerBase:
    """Load the spec's tokenizer. Without an EOS token, [SEP] ends responses (encoder tokenizers), so
    a sequence reads ``[CLS] prompt [SEP] response [SEP]``; without a pad token, EOS pads."""
    tokenizer = AutoTokenizer.from_pretrained(spec.tokenizer_path, trust_remote_code=spec.trust_remote_code)
    if tokenizer.eos_token_id is None and tokenizer.sep_token_id is not None:
        tokenizer.eos_token = tokenizer.sep_token  # BERT-style: responses end with [SEP]
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token_id is None:
            raise ConfigError(f"tokenizer {spec.tokenizer_path!r} has neither a pad nor an EOS token")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _config_for(spec: ModelSpec, tokenizer: PreTrainedTokenizerBase | None, **extra: Any):
    cfg = dict(spec.config)
    if tokenizer is not None:
        cfg.setdefault("vocab_size", len(tokenizer))
        for key in ("pad_token_id", "eos_token_id", "bos_token_id"):
            value = getattr(tokenizer, key, None)
            if value is not None:
                cfg.setdefault(key, value)
    cfg.update(extra)
    return AutoConfig.for_model(cfg.pop("model_type"), **cfg)


def _from_spec(auto_cls, spec: ModelSpec, tokenizer: PreTrainedTokenizerBase | None, **extra: Any) -> PreTrainedModel:
    if spec.path is None:
        model = auto_cls.from_config(_config_for(spec, tokenizer, **extra), trust_remote_code=spec.trust_remote_code)
        if spec.torch_dtype is not None:
            model = model.to(spec.torch_dtype)
        return model
    kwargs: dict[str, Any] = dict(spec.config, **extra)
    if spec.torch_dtype is not None:
        kwargs["dtype"] = spec.torch_dtype
    return auto_cls.from_pretrained(spec.path, trust_remote_code=spec.trust_remote_code, **kwargs)


def load_causal_lm(spec: ModelSpec, tokenizer: PreTrainedTokenizerBase | None = None) -> PreTrainedModel:
    """A causal LM (the policy / reference model)."""
    model = _from_spec(AutoModelForCausalLM, spec, tokenizer)
    check_vocab(model, tokenizer, spec)
    return model


def load_reward_model(spec: ModelSpec, tokenizer: PreTrainedTokenizerBase | None = None) -> PreTrainedModel:
    """A scalar reward model: ``AutoModelForSequenceClassification`` with exactly one output."""
    if spec.path is not None:
        loaded = AutoConfig.from_pretrained(spec.path, trust_remote_code=spec.trust_remote_code)
        is_classifier = any(a.endswith("ForSequenceClassification") for a in (loaded.architectures or []))
        if is_classifier and loaded.num_labels != 1:
            raise ConfigError(
                f"reward model {spec.path!r} has {loaded.num_labels} outputs; a reward model needs exactly one "
                "(a classifier with several labels is not a scalar reward)"
            )
    model = _from_spec(AutoModelForSequenceClassification, spec, tokenizer, num_labels=1)
    if model.config.pad_token_id is None and tokenizer is not None:
        model.config.pad_token_id = tokenizer.pad_token_id
    check_vocab(model, tokenizer, spec)
    return model


def check_vocab(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase | None, spec: ModelSpec) -> None:
    """Fail early when a tokenizer produces ids the model has no embedding for."""
    if tokenizer is None:
        return
    n_embed = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > n_embed:
        raise ConfigError(
            f"tokenizer {spec.tokenizer_path!r} has {len(tokenizer)} tokens but model {spec.path or spec.config} "
            f"has only {n_embed} embeddings: they do not belong together"
        )


def context_length(model: PreTrainedModel) -> int | None:
    """The most positions the model accepts (None when its config sets no limit)."""
    config = model.config.get_text_config()
    for key in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None
