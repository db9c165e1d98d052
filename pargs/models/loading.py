"""Load (or build from a config) tokenizers, policies and reward models, Hugging Face style.

A model is named by a :class:`ModelSpec`: a local directory or hub name (``from_pretrained``), or a
config dict that builds a fresh, randomly initialised model (tiny models for tests and the
quickstart). ``trust_remote_code`` stays off unless the spec turns it on.

Before anything is loaded, :func:`check_model_source` tells a local path from a Hub name without the
network: a path that is not there fails at once, naming the config key that gave it.
"""

from __future__ import annotations

import logging
import os
import pickle
from contextlib import contextmanager
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

from pargs.errors import ConfigError, SourceUnavailableError

log = logging.getLogger(__name__)

_TRUE = ("1", "on", "yes", "true")
#: path -> the config keys that gave it to :func:`check_model_source`, so that a later load failure names them
_KEYS: dict[str, list[str]] = {}
#: Hub names already looked up and found (one lookup per process)
_ON_HUB: set[str] = set()

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


def _offline() -> bool:
    from huggingface_hub import constants

    env = (os.environ.get(name, "").lower() for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return bool(constants.HF_HUB_OFFLINE) or any(value in _TRUE for value in env)


def _in_hub_cache(repo_id: str) -> bool:
    from huggingface_hub import constants

    snapshots = os.path.join(constants.HF_HUB_CACHE, "models--" + repo_id.replace("/", "--"), "snapshots")
    return os.path.isdir(snapshots) and bool(os.listdir(snapshots))


def is_hub_name(path: str) -> bool:
    """Whether ``path`` can only mean a Hugging Face Hub name (``gpt2``, ``owner/name``), not a local path.

    A path that starts with ``.``, ``/`` or ``~``, has more than one ``/``, or whose first folder exists
    here (``runs/rm`` next to a ``runs/`` folder) is local; so is anything the Hub would not accept as a name.
    """
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if path.startswith((".", "/", "~")) or os.path.isabs(path) or "\\" in path:
        return False
    try:
        validate_repo_id(path)
    except HFValidationError:
        return False
    return not ("/" in path and os.path.isdir(path.split("/")[0]))


def check_model_source(path: str, key: str | None = None) -> None:
    """Fail at once, naming ``key`` (the config key or option that gave ``path``), when ``path`` is neither
    an existing model / tokenizer directory nor a Hub name that can be loaded.

    A path that looks local (:func:`is_hub_name`) must exist; the network is never asked. A Hub name passes
    when the Hugging Face cache has it; otherwise offline mode (``HF_HUB_OFFLINE=1``) fails, and online the
    Hub is asked once, without retries (:func:`_hub_lookup`).
    """
    if key and key not in _KEYS.setdefault(path, []):
        _KEYS[path].append(key)
    where = f"{key}: " if key else ""
    local = os.path.expanduser(path)
    if os.path.isdir(local):
        return
    if os.path.exists(local):
        raise ConfigError(
            f"{where}{path!r} is a file; give the directory that holds the model or tokenizer "
            "(the folder with config.json / tokenizer_config.json)"
        )
    if not is_hub_name(path):
        resolved = "" if os.path.isabs(local) else f" (looked for {os.path.abspath(local)})"
        raise ConfigError(
            f"{where}{path!r} does not exist{resolved}; give a directory written by save_pretrained "
            "(a model or tokenizer), or a Hugging Face Hub name"
        )
    if _in_hub_cache(path):
        return
    looked_for = f"no local directory (looked for {os.path.abspath(local)})"
    if _offline():
        raise SourceUnavailableError(
            f"{where}{path!r} is {looked_for}, and as a Hugging Face Hub name it is not in the local cache while "
            "offline mode (HF_HUB_OFFLINE) is on; give a local directory, or download it once with network access"
        )
    problem = _hub_lookup(path)
    if problem:
        raise SourceUnavailableError(f"{where}{path!r} is {looked_for}, and as a Hugging Face Hub name {problem}")


def _hub_lookup(repo_id: str) -> str | None:
    """Ask the Hub once, without retries, whether ``repo_id`` exists: what is wrong, or None (it exists, or
    the Hub answered something the loader will explain). Loading would retry an unreachable Hub for a minute."""
    if repo_id in _ON_HUB:
        return None
    from huggingface_hub import model_info
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    try:
        model_info(repo_id, timeout=10)
    except GatedRepoError:
        pass  # it exists; access is the loader's to report
    except RepositoryNotFoundError:
        return "the Hub has no such model (or it is private: log in with `hf auth login`)"
    except HfHubHTTPError:
        pass
    except Exception as err:  # no network, DNS, timeout: the loader would retry for a minute first
        return (
            f"the Hub cannot be reached ({type(err).__name__}: {err}); with no network, set HF_HUB_OFFLINE=1 "
            "to use the local cache only"
        )
    _ON_HUB.add(repo_id)
    return None


def check_spec_sources(spec: ModelSpec, where: str) -> None:
    """:func:`check_model_source` of a spec's ``path`` and ``tokenizer``, named ``<where>.path`` and
    ``<where>.tokenizer`` (``where``: the spec's config key, e.g. ``model.init_args.policies.reference``)."""
    if spec.path is not None:
        check_model_source(spec.path, f"{where}.path")
    if spec.tokenizer is not None:
        check_model_source(spec.tokenizer, f"{where}.tokenizer")


def _pretrained(load, path: str, **kwargs: Any):
    """``load(path, **kwargs)`` (a ``from_pretrained``) after :func:`check_model_source`. What transformers
    cannot read (no config in a folder, a Hub name it cannot fetch) fails as one :class:`ConfigError` naming
    the path and the config keys that gave it."""
    check_model_source(path)
    keys = _KEYS.get(path)
    where = f"{' / '.join(keys)}: " if keys else ""
    try:
        return load(path, **kwargs)
    except ValueError as err:
        if "trust_remote_code" in str(err):
            raise ConfigError(f"{where}{_needs_remote_code(path, keys)}") from None
        if os.path.isdir(os.path.expanduser(path)):  # e.g. a model type this transformers does not know
            raise ConfigError(f"{where}cannot load {path!r}: {str(err).strip().splitlines()[0]}") from None
        raise
    except pickle.UnpicklingError as err:
        if "Weights only load failed" not in str(err):
            raise
        loader = getattr(getattr(load, "__self__", None), "__name__", "AutoModel")
        raise ConfigError(f"{where}{_unsafe_pickle(path, loader)}") from None
    except OSError as err:
        if os.path.isdir(os.path.expanduser(path)):
            raise ConfigError(f"{where}cannot load {path!r}: {err}") from err
        raise SourceUnavailableError(
            f"{where}{path!r} is no local directory (looked for {os.path.abspath(os.path.expanduser(path))}), "
            f"and as a Hugging Face Hub name it could not be loaded: {str(err).splitlines()[0]}"
        ) from err


def _needs_remote_code(path: str, keys: list[str] | None) -> str:
    """Why ``path`` did not load without ``trust_remote_code``, and the option that allows it."""
    specs = sorted({key.rpartition(".")[0] for key in keys or []})
    option = " / ".join(f"{spec}.trust_remote_code: true" for spec in specs) or "trust_remote_code: true in its spec"
    return (
        f"{path!r} needs its own Python code to load (the auto_map of its config.json), which pargs runs only "
        f"when told to: if you trust that code, set {option}; or use a model whose architecture transformers ships"
    )


def _unsafe_pickle(path: str, loader: str) -> str:
    """Why a ``pytorch_model*.bin`` did not load with ``weights_only``, and how to convert it."""
    folder = os.path.expanduser(path)
    bins = sorted(f for f in os.listdir(folder) if f.endswith(".bin")) if os.path.isdir(folder) else []
    files = ", ".join(os.path.join(path, f) for f in bins) or f"the .bin weights of {path}"
    return (
        f"{files} holds Python objects besides tensors, which loading with weights_only refuses (unpickling them "
        "could run code); if you trust the file, convert it to safetensors once, e.g. "
        f"{loader}.from_pretrained({path!r}, weights_only=False).save_pretrained(DIR) (DIR gets a "
        "model.safetensors), then give DIR"
    )


def load_tokenizer(spec: ModelSpec) -> PreTrainedTokenizerBase:
    """Load the spec's tokenizer. Without an EOS token, [SEP] ends responses (encoder tokenizers), so
    a sequence reads ``[CLS] prompt [SEP] response [SEP]``; without a pad token, EOS pads."""
    tokenizer = _pretrained(
        AutoTokenizer.from_pretrained, spec.tokenizer_path, trust_remote_code=spec.trust_remote_code
    )
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
    return _pretrained(auto_cls.from_pretrained, spec.path, trust_remote_code=spec.trust_remote_code, **kwargs)


def load_causal_lm(spec: ModelSpec, tokenizer: PreTrainedTokenizerBase | None = None) -> PreTrainedModel:
    """A causal LM (the policy / reference model)."""
    model = _from_spec(AutoModelForCausalLM, spec, tokenizer)
    check_vocab(model, tokenizer, spec)
    return model


def load_reward_model(spec: ModelSpec, tokenizer: PreTrainedTokenizerBase | None = None) -> PreTrainedModel:
    """A scalar reward model: ``AutoModelForSequenceClassification`` with exactly one output.

    From a checkpoint that is not a classifier (a language model a reward model is trained from), the reward
    head is new by design: transformers' load report (a table saying ``score.weight | MISSING``, which reads
    like an error) is replaced by one line saying so; any other missing weight is still a warning."""
    new_head = False
    if spec.path is not None:
        loaded = _pretrained(AutoConfig.from_pretrained, spec.path, trust_remote_code=spec.trust_remote_code)
        is_classifier = any(a.endswith("ForSequenceClassification") for a in (loaded.architectures or []))
        if is_classifier and loaded.num_labels != 1:
            raise ConfigError(
                f"reward model {spec.path!r} has {loaded.num_labels} outputs; a reward model needs exactly one "
                "(a classifier with several labels is not a scalar reward)"
            )
        new_head = not is_classifier
    if new_head:
        with _load_report_silenced():
            model, info = _from_spec(
                AutoModelForSequenceClassification, spec, tokenizer, num_labels=1, output_loading_info=True
            )
        body = model.base_model_prefix + "."
        head = sorted(name for name, _ in model.named_parameters() if not name.startswith(body))
        names = ", ".join(head)
        log.info("%s is a language model: the reward head (%s) starts untrained, as expected", spec.path, names)
        other = sorted(set(info.get("missing_keys", ())) - set(head))
        if other:
            log.warning("%s: weights missing from the checkpoint, set at random: %s", spec.path, ", ".join(other))
    else:
        model = _from_spec(AutoModelForSequenceClassification, spec, tokenizer, num_labels=1)
    if model.config.pad_token_id is None and tokenizer is not None:
        model.config.pad_token_id = tokenizer.pad_token_id
    check_vocab(model, tokenizer, spec)
    return model


@contextmanager
def _load_report_silenced():
    """transformers' load report (``transformers.modeling_utils``) held back for one load, and its check of a
    tensor-parallel plan, which lists every layer as "not sharded" when a classifier is built from a language
    model's checkpoint (no tensor parallelism is in use)."""
    loggers = [logging.getLogger(f"transformers.{name}") for name in ("modeling_utils", "distributed.tensor_parallel")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


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
