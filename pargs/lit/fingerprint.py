"""What decides the prediction lines of a decoding method: its settings, recorded when it starts writing
and compared when a run resumes (:mod:`pargs.lit.manifest`).

A method's settings are one flat ``{key: value}``, keys named as in the predict config:

- every field of the method (``name``, ``kind``, ``greedy``, ``top_k``, ``top_p``, ``temperature``, ``k``,
  ``beta``, ``n``, ``scorer``, ``policy``, ``samples``; ``preset`` is None once a method is built);
- the generation settings ``max_new_tokens``, ``stop_strings`` and ``seed``, and ``trainer.precision``;
- the policy it decodes from, ``policies.<name>.*``: the content digest of its files and of its tokenizer's
  (:mod:`pargs.models.identity`), ``config``, ``dtype``, ``trust_remote_code``, and for a model built from a
  config (random weights) the run's seed;
- its scorer (guided, Best-of-N), ``scorers.<name>.*``, and the evaluation reward, ``eval_reward.*``: the
  model as above, or ``oracle``, and ``mode``, ``input_format``, ``template``, ``max_length``.

Keys ending in ``path``/``tokenizer`` name where a model was read (shown in messages); they are compared
only when the content of either side is unknown (a hub name not downloaded yet): a moved model
directory with the same files resumes. Left out, because they do not change a line: ``warmup``,
``rows_per_call``, the rewards' ``batch_size`` and the data's (outputs do not depend on batching: each row
has its own seed), ``max_prompt_length`` (a longer prompt stops the run, it is never cut), the devices and
``decode_path`` (the static and compiled loops give the eager loop's tokens; like a change of device, they
can differ in the last bits of a float, which a near-tie could turn into another token).
The prompts are compared line by line (each line holds its prompt and references).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import torch

from pargs.decoding.build import RewardSpec
from pargs.decoding.methods import DecodeMethod
from pargs.models.identity import FileDigests
from pargs.models.loading import ModelSpec

#: setting keys that say where something was read, not what it is (see the module docstring)
LOCATION_SUFFIXES = (".path", ".tokenizer")


def model_settings(spec: ModelSpec, digests: FileDigests) -> dict[str, Any]:
    """What a :class:`ModelSpec` loads: content digests, the spec's fields, the seed of random weights."""
    out: dict[str, Any] = {"path": spec.path, "files": digests.source(spec.path) if spec.path else None}
    if spec.tokenizer is not None and spec.tokenizer != spec.path:
        out["tokenizer"] = spec.tokenizer
        out["tokenizer_files"] = digests.source(spec.tokenizer)
    out.update(config=dict(spec.config), dtype=spec.dtype, trust_remote_code=spec.trust_remote_code)
    if spec.path is None:  # random weights drawn after seed_everything: the seed decides them
        out["init_seed"] = torch.initial_seed()
    return out


def reward_settings(spec: RewardSpec, digests: FileDigests) -> dict[str, Any]:
    """What a :class:`RewardSpec` computes (its ``batch_size`` only changes the speed)."""
    out: dict[str, Any] = {"oracle": spec.oracle}
    if spec.model is not None:
        out.update({f"model.{k}": v for k, v in model_settings(spec.model, digests).items()})
        out.update(mode=spec.mode, input_format=spec.input_format, template=spec.template, max_length=spec.max_length)
    return out


def method_settings(
    methods: list[DecodeMethod],
    policies: dict[str, ModelSpec],
    scorers: dict[str, RewardSpec],
    eval_reward: RewardSpec | None,
    generation: dict[str, Any],
    digests: FileDigests,
) -> dict[str, dict[str, Any]]:
    """``{method name: settings}`` (module docstring); ``generation``: the module-wide settings
    (``max_new_tokens``, ``stop_strings``, ``seed``, ``trainer.precision``)."""
    policy_of: dict[str, dict] = {}  # each model hashed once, however many methods use it
    scorer_of: dict[str, dict] = {}
    evaluation = {}
    if eval_reward is not None:
        evaluation = {f"eval_reward.{k}": v for k, v in reward_settings(eval_reward, digests).items()}
    out = {}
    for method in methods:
        settings = {f.name: getattr(method, f.name) for f in fields(method)}
        settings.update(generation)
        if method.policy not in policy_of:
            policy_of[method.policy] = model_settings(policies[method.policy], digests)
        settings.update({f"policies.{method.policy}.{k}": v for k, v in policy_of[method.policy].items()})
        if method.uses_scorer:
            if method.scorer not in scorer_of:
                scorer_of[method.scorer] = reward_settings(scorers[method.scorer], digests)
            settings.update({f"scorers.{method.scorer}.{k}": v for k, v in scorer_of[method.scorer].items()})
        settings.update(evaluation)
        out[method.name] = settings
    return out
