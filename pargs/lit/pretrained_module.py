"""What the training modules share: a Hugging Face model built lazily, AdamW, export at the end."""

from __future__ import annotations

import dataclasses
import inspect

import lightning as L
from transformers import PreTrainedModel

from pargs.errors import ConfigError
from pargs.lit.checkpoint_state import capture_rng_state, restore_rng_state, to_plain
from pargs.lit.export import export_pretrained
from pargs.lit.fsdp2 import shard_with_fsdp2
from pargs.lit.optim import adamw_warmup_cosine
from pargs.lit.resume_point import settle_resume_point
from pargs.models.loading import ModelSpec, check_spec_sources, context_length, load_tokenizer
from pargs.models.lora import LoraSpec, prepare_for_training


class PretrainedModule(L.LightningModule):
    """Base of modules that train one Hugging Face model named by a :class:`ModelSpec`.

    The model is built in ``configure_model`` (so FSDP can shard it as it is created) and the
    tokenizer on first use, so building the module itself reads no file. Checkpoints hold plain
    data only and carry the RNG state (:mod:`pargs.lit.checkpoint_state`); a fit resumed from one goes
    on where the uninterrupted run did (:mod:`pargs.lit.resume_point`, from ``on_train_start``: a
    subclass that overrides it calls ``super().on_train_start()``). Subclasses implement
    :meth:`build_model` and call :meth:`save_plain_hyperparameters` with ``lr``, ``weight_decay``,
    ``warmup_steps``, ``export_dir`` and ``gradient_checkpointing``; one that offers LoRA sets
    ``lora_spec``, and ``configure_model`` adds the adapters (:func:`pargs.models.lora.prepare_for_training`).
    """

    lora_spec: LoraSpec | None = None  #: train LoRA adapters instead of every weight (None: every weight)
    lora_task_type = "CAUSAL_LM"  #: peft's task type of the adapted model ("SEQ_CLS" keeps a reward head trainable)

    def __init__(self, model: ModelSpec | dict) -> None:
        super().__init__()
        self.spec = ModelSpec(**model) if isinstance(model, dict) else model  # a dict: from a checkpoint
        self.model: PreTrainedModel | None = None
        self._tokenizer = None

    @property
    def tokenizer(self):
        """The model's tokenizer (loaded on first use)."""
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.spec)
        return self._tokenizer

    def check_model_sources(self) -> None:
        """Every model and tokenizer path of the config, checked before any model loads (no file is read;
        :func:`pargs.models.loading.check_model_source`); the CLI calls it before it writes anything."""
        for where, spec in model_specs(self.hparams, "model.init_args"):
            check_spec_sources(spec, where)

    def build_model(self) -> PreTrainedModel:
        """Load or create the model (called once, from ``configure_model``)."""
        raise NotImplementedError

    def configure_model(self) -> None:
        if self.model is not None:
            return
        self.check_model_sources()
        model = prepare_for_training(
            self.build_model(), self.hparams.gradient_checkpointing, self.lora_spec, self.lora_task_type
        )
        # from_pretrained returns eval mode; follow the LightningModule's mode (dropout on in training)
        self.model = model.train(self.training)
        if self.hparams.get("fsdp2"):
            if hasattr(self.model, "merge_adapter"):
                raise ConfigError("fsdp2 with LoRA is not supported: LoRA already keeps the trainable state small")
            shard_with_fsdp2(self.model, self.device_mesh["data_parallel"])

    def on_fit_start(self) -> None:
        check_fits_context(self.model, self.trainer.datamodule)

    def on_train_start(self) -> None:
        settle_resume_point(self.trainer)  # a resumed run goes on where the uninterrupted one did

    def configure_optimizers(self):
        hp = self.hparams
        return adamw_warmup_cosine(
            self.model, hp.lr, hp.weight_decay, hp.warmup_steps, self.trainer.estimated_stepping_batches
        )

    def on_fit_end(self) -> None:
        export_pretrained(self, self.hparams.export_dir)

    def save_plain_hyperparameters(self) -> None:
        """``save_hyperparameters()`` of the caller's arguments, configs stored as plain dicts."""
        self.save_hyperparameters(frame=inspect.currentframe().f_back)
        for key, value in list(self.hparams.items()):
            self.hparams[key] = to_plain(value)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["pargs_rng_state"] = capture_rng_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "pargs_rng_state" in checkpoint:
            restore_rng_state(checkpoint["pargs_rng_state"])


def model_specs(value, where: str):
    """``(config key, ModelSpec)`` of every model spec in plain hyperparameters (stored as dicts with exactly
    the fields of :class:`ModelSpec`, at any depth: a PPO reward's ``model`` too)."""
    names = {f.name for f in dataclasses.fields(ModelSpec)}
    if isinstance(value, ModelSpec):
        yield where, value
    elif isinstance(value, dict) and set(value) == names:
        yield where, ModelSpec(**value)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from model_specs(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from model_specs(item, f"{where}.{i}")


def check_fits_context(model: PreTrainedModel, datamodule) -> None:
    """Fail before training when the data holds sequences longer than the model's context."""
    context = context_length(model)
    longest = getattr(datamodule, "longest_sequence", None)
    if context is None or longest is None:
        return
    n, where = longest()
    if n > context:
        raise ConfigError(
            f"{where} makes a sequence (prompt + response) of {n} tokens but the model has only {context} "
            f"positions: set data.init_args.max_length to at most {context} so longer sequences are truncated"
        )
