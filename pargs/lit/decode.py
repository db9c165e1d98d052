"""Prediction: decode each batch of prompts with every configured method and score the responses.

``predict_step`` returns one record per (prompt, method, sample); :class:`~pargs.lit.writer.JsonlPredictionWriter`
streams them to JSONL. Records already written by an earlier, interrupted run are skipped, and each
row's seed depends only on (seed, prompt id, the method's noise key, sample), so a resumed run writes
what an uninterrupted one would have.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Literal

import lightning as L
import torch
from torch import nn

from pargs.decoding.build import RewardSpec, build_scorer, text_reward
from pargs.decoding.cached_scorer import CachedCausalScorer
from pargs.decoding.engine import Stopping, choose_path, generate
from pargs.decoding.finite import NonFiniteScores
from pargs.decoding.methods import DecodeMethod
from pargs.decoding.noise import stable_seed
from pargs.decoding.static_loop import bucketed_rows
from pargs.errors import ConfigError
from pargs.lit.fingerprint import method_settings
from pargs.lit.writer import JsonlPredictionWriter
from pargs.metrics.flops import shape_or_none
from pargs.models.encoding import encode_prompt
from pargs.models.identity import FileDigests
from pargs.models.loading import ModelSpec, check_spec_sources, context_length, load_causal_lm, load_tokenizer

log = logging.getLogger(__name__)

#: a (prompt record, sample index) pair: one response to decode
Row = tuple[dict, int]


def rows_to_decode(method: DecodeMethod, batch: Sequence[dict], done: set) -> list[Row]:
    """The rows of a batch of prompts that ``method`` decodes: every sample of every prompt, less those written
    by an earlier run (``done``: ``(id, method name, sample)``)."""
    return [(rec, s) for rec in batch for s in range(method.samples) if (rec["id"], method.name, s) not in done]


def split_calls(rows: Sequence, rows_per_call: int | None, prompts: int) -> list[Sequence]:
    """``rows`` cut into the ``generate`` calls that decode them: at most ``rows_per_call`` rows each (None: the
    batch's number of ``prompts``)."""
    size = rows_per_call or prompts
    return [rows[start : start + size] for start in range(0, len(rows), size)]


def calls_per_shape(
    batches: Iterable[Sequence[dict]], method: DecodeMethod, done: set, rows_per_call: int | None
) -> Counter:
    """``{rows: calls}``: how many ``generate`` calls of each bucket of rows (:func:`bucketed_rows`, the batch a
    captured step serves) ``method`` makes over ``batches``, cut as :meth:`DecodeModule.predict_step` cuts them."""
    counts: Counter = Counter()
    for batch in batches:
        for part in split_calls(rows_to_decode(method, batch, done), rows_per_call, len(batch)):
            counts[bucketed_rows(len(part))] += 1
    return counts


class DecodeModule(L.LightningModule):
    """Decode prompts with the configured methods; evaluate each response with ``eval_reward``.

    Args:
        policies: named causal LMs to decode from; methods pick one by name (default "reference").
        scorers: named rewards that guide decoding (guided methods) or pick among samples (Best-of-N).
        eval_reward: the separate reward that scores every final response (an evaluation RM, or the
            synthetic oracle); None records no reward.
        methods: the decoding methods, one results-table row each (e.g. ``{preset: pargs, samples: 10}``).
        max_new_tokens: the most tokens per response.
        stop_strings: a response also ends when its text contains one of these.
        max_prompt_length: fail on prompts with more tokens than this (None: the policy's context minus
            ``max_new_tokens``).
        seed: run seed; every row's seed derives from it, the prompt id, the method's ``noise_key`` and the sample.
        warmup: run each method once, untimed, before its first timed batch.
        rows_per_call: responses decoded together (None: the prompt batch size). The same for every
            method, so methods with several samples per prompt are timed under the same batch size as
            greedy ones and time per token is comparable across the table.
        decode_path: the token loop (:func:`pargs.decoding.engine.generate`'s ``path``): ``auto`` (eager on CPU;
            on CUDA, where the method allows it, the loop of the fewest estimated seconds for the calls of each
            shape this run makes, :func:`pargs.decoding.engine.auto_path`), ``eager``, ``static``, ``graphs`` or
            ``compiled``.
    """

    def __init__(
        self,
        policies: dict[str, ModelSpec],
        methods: list[DecodeMethod],
        scorers: dict[str, RewardSpec] | None = None,
        eval_reward: RewardSpec | None = None,
        max_new_tokens: int = 64,
        stop_strings: list[str] | None = None,
        max_prompt_length: int | None = None,
        seed: int = 0,
        warmup: bool = True,
        rows_per_call: int | None = None,
        decode_path: Literal["auto", "eager", "static", "graphs", "compiled"] = "auto",
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        scorers = scorers or {}
        for key, group in (("policies", policies), ("scorers", scorers)):
            for name in group:  # they key torch ModuleDicts, whose keys cannot hold a dot
                if not name or "." in name:
                    raise ConfigError(
                        f"model.init_args.{key}: the name {name!r} cannot name a model (empty, or it holds a "
                        f"'.'); rename it, e.g. {name.replace('.', '_') or 'rm'!r}"
                    )
        names = [m.name for m in methods]
        if len(set(names)) != len(names):
            raise ConfigError(f"method names must be unique, got {names}")
        for m in methods:
            if m.policy not in policies:
                raise ConfigError(
                    f"method {m.name!r} decodes from policy {m.policy!r}, not among policies {sorted(policies)}"
                )
            if m.uses_scorer and m.scorer not in scorers:
                raise ConfigError(f"method {m.name!r} uses scorer {m.scorer!r}, not among scorers {sorted(scorers)}")
        self.policy_specs, self.scorer_specs, self.eval_spec = policies, scorers, eval_reward
        self.methods = methods
        self.policies = nn.ModuleDict()
        self.reward_models = nn.ModuleDict()
        self.tokenizers: dict = {}
        self.reward_tokenizers: dict = {}
        self._done: set = set()
        self._warm: set[tuple] = set()  # (method name, bucket of rows of a captured path, else None) warmed up
        self._calls: dict[str, Counter] = {}  # method name -> {rows: calls} of this run (calls_per_shape)

    def check_model_sources(self) -> None:
        """Every model and tokenizer path, checked before any model loads, so a typo in the last one costs no
        waiting (no file is read); the CLI calls it before it writes anything."""
        for name, spec in self.policy_specs.items():
            check_spec_sources(spec, f"model.init_args.policies.{name}")
        rewards = {f"scorers.{name}": spec for name, spec in self.scorer_specs.items()}
        for where, reward in dict(rewards, eval_reward=self.eval_spec).items():
            if reward is not None and reward.model is not None:
                check_spec_sources(reward.model, f"model.init_args.{where}.model")

    def configure_model(self) -> None:
        if len(self.policies):
            return
        self.check_model_sources()
        for name, spec in self.policy_specs.items():
            tok = load_tokenizer(spec)
            self.tokenizers[name] = tok
            self.policies[name] = load_causal_lm(spec, tok).eval().requires_grad_(False)
        rewards = dict(self.scorer_specs)
        if self.eval_spec is not None:
            rewards["__eval__"] = self.eval_spec
        for name, spec in rewards.items():
            model, tok = spec.load()
            if model is not None:
                self.reward_models[name] = model
                self.reward_tokenizers[name] = tok
        for method in self.methods:  # k, top_k against the vocabulary, before any decoding starts
            method.validate(vocab_size=self.policies[method.policy].config.get_text_config().vocab_size)

    def _prompt_limit(self, policy_name: str) -> int | None:
        if self.hparams.max_prompt_length is not None:
            return self.hparams.max_prompt_length
        context = context_length(self.policies[policy_name])
        return None if context is None else context - self.hparams.max_new_tokens

    def _check_prompts(self, method: DecodeMethod, rows: list[tuple[dict, int]]) -> list[int]:
        """The rows' prompt lengths in tokens; fail on a prompt that leaves no room to generate."""
        limit = self._prompt_limit(method.policy)
        tok = self.tokenizers[method.policy]
        lengths = []
        for rec, _ in rows:
            n = len(encode_prompt(tok, rec["prompt"]))
            lengths.append(n)
            if limit is not None and n > limit:
                where = f"{rec.get('_file', 'prompts')}, line {rec.get('_line', '?')}"
                raise ConfigError(
                    f"{where}: field 'prompt' (id {rec['id']!r}) has {n} tokens but at most {limit} fit in policy "
                    f"{method.policy!r} (its context minus max_new_tokens={self.hparams.max_new_tokens}, or "
                    "max_prompt_length); shorten the prompt, lower max_new_tokens or drop long prompts from the file"
                )
        return lengths

    def _flops(self, method: DecodeMethod, scorer, prompt_lens: list[int], new_tokens: list[int]) -> list[int | None]:
        """Estimated FLOPs of each decoded row from the models' shapes (the rule's ``flops``)."""
        lm = shape_or_none(self.policies[method.policy].config)
        if lm is None:
            return [None] * len(new_tokens)
        scored = method.uses_scorer and method.scorer in self.reward_models  # not the oracle
        rm = shape_or_none(self.reward_models[method.scorer].config) if scored else None
        scoring = "cached" if isinstance(scorer, CachedCausalScorer) else "from_scratch"
        return [method.rule.flops(method, lm, rm, p, n, scoring) for p, n in zip(prompt_lens, new_tokens)]

    def prediction_settings(self, digests: FileDigests) -> dict[str, dict]:
        """``{method name: what decides its lines}`` (:mod:`pargs.lit.fingerprint`), read from the config and
        the models' files, not from loaded models: the writer compares it with the record of earlier lines
        before :meth:`configure_model` runs."""
        hp = self.hparams
        generation = {
            "max_new_tokens": hp.max_new_tokens,
            "stop_strings": hp.stop_strings,
            "seed": hp.seed,
            "trainer.precision": self._trainer.precision if self._trainer is not None else None,
        }
        return method_settings(self.methods, self.policy_specs, self.scorer_specs, self.eval_spec, generation, digests)

    def on_predict_start(self) -> None:
        writer = next((cb for cb in self.trainer.callbacks if isinstance(cb, JsonlPredictionWriter)), None)
        self._done = writer.done if writer is not None else set()
        self._scorers = {
            name: build_scorer(spec, *self._reward(name), self.tokenizers[self._policy_for(name)])
            for name, spec in self.scorer_specs.items()
        }
        self._eval = text_reward(self.eval_spec, *self._reward("__eval__")) if self.eval_spec is not None else None
        batches = self._planned_batches()
        self._calls = {}
        if batches is not None:
            hp = self.hparams
            self._calls = {m.name: calls_per_shape(batches, m, self._done, hp.rows_per_call) for m in self.methods}

    def _planned_batches(self) -> list[list[dict]] | None:
        """The prompt records of every batch this process will predict, read through the loaders' samplers (no
        batch is loaded, no worker started), for ``auto`` to weigh a run's calls; None where they cannot be listed
        (an iterable dataset, a batch sampler without a sampler and a size): each call is then weighed alone."""
        loaders = self.trainer.predict_dataloaders
        if loaders is None:
            return None
        loaders = list(loaders.values()) if isinstance(loaders, dict) else loaders
        loaders = loaders if isinstance(loaders, (list, tuple)) else [loaders]
        limits = getattr(self.trainer.predict_loop, "max_batches", None) or [float("inf")] * len(loaders)
        batches = []
        for loader, limit in zip(loaders, limits):
            # the batch sampler's sampler and size, not its batches: Lightning wraps it in an object that is its own
            # iterator (iterating it would consume the loader's pass), copying the attributes of a BatchSampler
            batcher = getattr(loader, "batch_sampler", None)
            sampler = getattr(batcher, "sampler", None) or getattr(loader, "sampler", None)
            size = getattr(batcher, "batch_size", None) or getattr(loader, "batch_size", None)
            drop_last = getattr(batcher, "drop_last", getattr(loader, "drop_last", False))
            dataset = getattr(loader, "dataset", None)
            if sampler is None or not size or not hasattr(dataset, "__getitem__"):
                return None
            indices = iter(sampler)
            if indices is sampler:  # iterating it would consume the loader's own pass
                return None
            try:
                records = [dataset[i] for i in indices]
            except (TypeError, KeyError, IndexError, NotImplementedError):
                return None
            parts = [records[start : start + size] for start in range(0, len(records), size)]
            if drop_last and parts and len(parts[-1]) < size:
                parts.pop()
            batches.extend(parts[: limit if limit != float("inf") else None])
        return batches

    def _reward(self, name: str):
        """``(model, tokenizer)`` of a named reward; ``(None, None)`` for the oracle."""
        return (self.reward_models[name], self.reward_tokenizers[name]) if name in self.reward_models else (None, None)

    def _policy_for(self, scorer: str) -> str:
        """The policy whose token ids a scorer reads: that of the first method using it (any, if unused)."""
        users = (m.policy for m in self.methods if m.uses_scorer and m.scorer == scorer)
        return next(users, next(iter(self.policy_specs)))

    @torch.no_grad()
    def predict_step(self, batch: list[dict], batch_idx: int) -> list[dict]:
        out = []
        for method in self.methods:
            for part in split_calls(rows_to_decode(method, batch, self._done), self.hparams.rows_per_call, len(batch)):
                out.extend(self._decode(method, part))
        return out

    def _not_finite(self, method: DecodeMethod, rows: list[tuple[dict, int]], bad: list[int], who: str) -> ConfigError:
        """The error of a NaN or infinite reward from ``who`` for ``rows[i]``, ``i`` in ``bad``: it stops the run
        before this batch is written (earlier batches' lines are complete and kept)."""
        spec = self.eval_spec if who == "eval_reward" else self.scorer_specs.get(method.scorer)
        model = "the oracle" if spec is None or spec.model is None else spec.model.path or "a model built from config"
        ids = list(dict.fromkeys(repr(rows[i][0]["id"]) for i in bad))
        shown = ", ".join(ids[:6]) + (f" and {len(ids) - 6} more" if len(ids) > 6 else "")
        return ConfigError(
            f"method {method.name!r}: {who} ({model}) returned a non-finite reward (NaN or inf) for prompt id {shown}; "
            "nothing of this batch is written (the lines of earlier batches are kept): check that reward model "
            "(its weights, its dtype: float16 overflows), then run the same command again to resume"
        )

    def _decode(self, method: DecodeMethod, rows: list[tuple[dict, int]]) -> list[dict]:
        hp = self.hparams
        policy, tok = self.policies[method.policy], self.tokenizers[method.policy]
        scorer = self._scorers.get(method.scorer) if method.uses_scorer else None
        prompt_lens = self._check_prompts(method, rows)
        prompts = [rec["prompt"] for rec, _ in rows]
        seeds = torch.tensor([stable_seed(hp.seed, rec["id"], method.noise_key, s) for rec, s in rows])
        # auto weighs the calls of this shape that the run makes in all (a capture or a compile is paid once)
        calls = self._calls.get(method.name, {}).get(bucketed_rows(len(rows)), 1)
        stop = Stopping.for_models(policy, tok, self.device, hp.max_new_tokens, stop_strings=hp.stop_strings or ())
        path = choose_path(hp.decode_path, method, policy, scorer, stop, self.device, calls)
        kwargs = dict(scorer=scorer, stop_strings=hp.stop_strings or (), path=path)
        # a captured step (CUDA graphs, torch.compile) is made per bucket of rows (and of lengths): warm up once per
        # bucket with these rows so that no capture is timed; the eager loop needs only a short run once
        captured = path in ("graphs", "compiled")
        warm = (method.name, bucketed_rows(len(rows)) if captured else None)
        if hp.warmup and warm not in self._warm:
            n_warm, warm_tokens = (len(rows), hp.max_new_tokens) if captured else (1, min(4, hp.max_new_tokens))
            try:
                generate(policy, tok, prompts[:n_warm], method, seeds[:n_warm], max_new_tokens=warm_tokens, **kwargs)
            except NonFiniteScores:
                pass  # the call below decodes these rows again and names every row that meets one
            self._warm.add(warm)
        try:
            gen = generate(policy, tok, prompts, method, seeds, max_new_tokens=hp.max_new_tokens, **kwargs)
        except NonFiniteScores as err:
            raise self._not_finite(method, rows, err.rows, f"scorer {method.scorer!r}") from None
        rewards = [None] * len(rows)
        if self._eval is not None:
            scored = self._eval(prompts, gen.texts, gen.complete)
            bad = (~torch.isfinite(scored)).nonzero().flatten().tolist()
            if bad:
                raise self._not_finite(method, rows, bad, "eval_reward")
            rewards = scored.tolist()
        total = max(1, sum(gen.num_tokens))
        flops = self._flops(method, scorer, prompt_lens, gen.num_tokens)
        records = []
        for i, ((rec, s), text) in enumerate(zip(rows, gen.texts)):
            n = gen.num_tokens[i]
            records.append(
                {
                    "id": rec["id"],
                    "method": method.name,
                    "sample": s,
                    "prompt": rec["prompt"],
                    "response": text,
                    "reference": rec.get("reference", []),
                    "tokens": n,
                    "stop": gen.stop_reasons[i],
                    "reward": rewards[i],
                    "reward_name": self.eval_spec.label if self.eval_spec is not None else None,
                    "decode_seconds": gen.seconds * n / total,
                    "flops": flops[i],
                    "seed": int(seeds[i]),
                    "policy": method.policy,
                    "scorer": method.scorer if method.uses_scorer else None,
                    **({"scorer_reward": float(gen.scores[i])} if gen.scores is not None else {}),
                }
            )
        return records
