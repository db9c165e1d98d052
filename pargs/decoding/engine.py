"""The decoding loop: a batch of prompts, one method, per-row stopping.

Each row carries its own seed; all randomness is counter-based noise keyed by (seed, step, token),
so outputs do not depend on batch size or order (see :mod:`pargs.decoding.noise`). Finished rows
leave the batch (their KV-cache rows are dropped), so a batch costs what its live rows cost.

This is its own loop rather than Hugging Face ``generate`` with a ``LogitsProcessor``: a processor
cannot keep the reward model's KV cache in step with the chosen token, and a stateful one measured
about 5x the cost of plain sampling (DESIGN.md) against 2.5-2.9x here (``benchmarks/decoding.py``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from pargs.decoding.methods import DecodeMethod
from pargs.decoding.noise import child_seeds, sample_from_scores
from pargs.decoding.scorer import Responses, Scorer
from pargs.decoding.stream import CausalStream
from pargs.errors import ConfigError
from pargs.models.encoding import decode_response, encode_prompt, pad_batch


@dataclass
class Generation:
    """Decoded responses, one per input row."""

    token_ids: list[list[int]]  #: generated ids (EOS included when the response ended with it)
    texts: list[str]  #: response texts (special tokens dropped, cut after a stop string)
    stop_reasons: list[str]  #: "eos", "stop" (a stop string) or "length" (max_new_tokens reached)
    seconds: float = 0.0  #: wall time of the whole call
    scores: Tensor | None = None  #: Best-of-N: the scorer's reward of each chosen response
    tokens_generated: int = 0  #: tokens generated in total (Best-of-N counts every candidate)

    @property
    def num_tokens(self) -> list[int]:
        return [len(t) for t in self.token_ids]

    @property
    def complete(self) -> list[bool]:
        return [r != "length" for r in self.stop_reasons]


@dataclass
class Stopping:
    """When rows stop and which tokens they may never produce."""

    eos_ids: Tensor  #: ids that end a response
    suppress_ids: Tensor  #: ids never generated (padding, unknown)
    max_new_tokens: int  #: the most tokens per response
    min_new_tokens: int = 0  #: EOS is suppressed before this many tokens
    stop_strings: Sequence[str] = ()  #: a response also ends once its text contains one of these

    @classmethod
    def for_models(cls, policy: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, device, max_new_tokens: int,
                   min_new_tokens: int = 0, stop_strings: Sequence[str] = (),
                   suppress_tokens: Sequence[int] | None = None) -> Stopping:
        eos: set[int] = set()
        for source in (tokenizer.eos_token_id, getattr(policy.generation_config, "eos_token_id", None)):
            if isinstance(source, int):
                eos.add(source)
            elif source:
                eos.update(source)
        if not eos:
            raise ConfigError("neither the tokenizer nor the model defines an EOS token; decoding could not stop")
        if suppress_tokens is None:  # padding / unknown never belong inside a response
            suppress_tokens = sorted({tokenizer.pad_token_id, tokenizer.unk_token_id} - eos - {None})
        as_tensor = lambda ids: torch.tensor(sorted(ids), dtype=torch.long, device=device)  # noqa: E731
        if max_new_tokens < 1 or not 0 <= min_new_tokens <= max_new_tokens:
            raise ConfigError(f"need 1 <= max_new_tokens and 0 <= min_new_tokens <= max_new_tokens, got "
                             f"{max_new_tokens} and {min_new_tokens}")
        return cls(as_tensor(eos), as_tensor(suppress_tokens), max_new_tokens, min_new_tokens, tuple(stop_strings))

    def mask_logits(self, logits: Tensor, step: int) -> Tensor:
        logits = logits.float()
        if self.suppress_ids.numel():
            logits[:, self.suppress_ids] = float("-inf")
        if step < self.min_new_tokens:
            logits[:, self.eos_ids] = float("-inf")
        return logits


def encode_prompts(tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str], max_prompt_length: int | None = None):
    """Left-padded ``(ids, mask)`` for a list of prompt texts; prompts too long fail with their index."""
    rows = [encode_prompt(tokenizer, p) for p in prompts]
    if max_prompt_length is not None:
        for i, r in enumerate(rows):
            if len(r) > max_prompt_length:
                raise ConfigError(
                    f"prompt {i} has {len(r)} tokens, more than max_prompt_length={max_prompt_length}; "
                    "shorten it or raise the limit (the model's context must hold prompt + new tokens)"
                )
    return pad_batch(rows, tokenizer.pad_token_id, side="left")


def _lm_forward(model: PreTrainedModel):
    def forward(ids: Tensor, mask: Tensor, positions: Tensor, cache) -> tuple[Tensor, object]:
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True,
                    logits_to_keep=1)
        return out.logits, out.cache

    return forward


def _sample_step(method: DecodeMethod, logp: Tensor, seeds: Tensor, step: int) -> Tensor:
    if method.greedy:
        return logp.argmax(dim=-1)
    scores = logp / method.temperature
    if method.top_k:
        scores, ids = scores.topk(method.top_k, dim=-1)
    else:
        ids = torch.arange(scores.shape[-1], device=scores.device).expand_as(scores)
    if method.top_p < 1.0:
        scores, order = scores.sort(dim=-1, descending=True)
        ids = ids.gather(-1, order)
        probs = scores.softmax(-1)
        drop = probs.cumsum(-1) - probs >= method.top_p  # the mass before this token already reaches top_p
        scores = scores.masked_fill(drop, float("-inf"))
    j = sample_from_scores(scores, seeds, step, ids)
    return ids.gather(1, j.unsqueeze(1)).squeeze(1)


def _guided_step(method: DecodeMethod, logp: Tensor, seeds: Tensor, step: int, scorer: Scorer) -> Tensor:
    lp, cand = logp.topk(method.k, dim=-1)
    rewards = scorer.score_candidates(cand)
    scores = lp + method.weight * rewards.to(lp.dtype)
    if method.greedy:
        j = scores.argmax(dim=-1)
    else:
        j = sample_from_scores(scores / method.temperature, seeds, step, cand)
    tokens = cand.gather(1, j.unsqueeze(1)).squeeze(1)
    scorer.advance(j, tokens)
    return tokens


@torch.no_grad()
def _decode_rows(policy: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: list[str], prompt_ids: Tensor,
                 prompt_mask: Tensor, seeds: Tensor, method: DecodeMethod, scorer: Scorer | None,
                 stop: Stopping) -> tuple[list[list[int]], list[str]]:
    n_rows = prompt_ids.shape[0]
    stream = CausalStream(_lm_forward(policy), policy.config)
    logits = stream.prefill(prompt_ids, prompt_mask)[:, -1]
    guided = method.kind == "guided"
    if guided:
        scorer.begin(prompts, prompt_ids, prompt_mask)
    out: list[list[int]] = [[] for _ in range(n_rows)]
    reasons = ["length"] * n_rows
    live = torch.arange(n_rows)
    for step in range(stop.max_new_tokens):
        logp = torch.log_softmax(stop.mask_logits(logits, step), dim=-1)
        tokens = _guided_step(method, logp, seeds, step, scorer) if guided else _sample_step(method, logp, seeds, step)
        done = torch.isin(tokens, stop.eos_ids).cpu()
        for i, (row, tok) in enumerate(zip(live.tolist(), tokens.tolist())):
            out[row].append(tok)
            if done[i]:
                reasons[row] = "eos"
            elif stop.stop_strings and any(s in decode_response(tokenizer, out[row]) for s in stop.stop_strings):
                reasons[row], done[i] = "stop", True
        if step == stop.max_new_tokens - 1 or bool(done.all()):
            break
        if done.any():
            keep = (~done).nonzero().squeeze(1)
            live = live[keep]
            keep = keep.to(prompt_ids.device)
            seeds, tokens = seeds[keep], tokens[keep]
            stream.keep_rows(keep)
            if guided:
                scorer.keep_rows(keep)
        logits = stream.append(tokens)
    return out, reasons


def _texts(tokenizer: PreTrainedTokenizerBase, token_ids: list[list[int]], stop_strings: Sequence[str]) -> list[str]:
    texts = []
    for ids in token_ids:
        text = decode_response(tokenizer, ids)
        cuts = [text.find(s) + len(s) for s in stop_strings if s in text]
        texts.append(text[: min(cuts)] if cuts else text)
    return texts


@torch.no_grad()
def generate(
    policy: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    method: DecodeMethod,
    seeds: Tensor,
    scorer: Scorer | None = None,
    max_new_tokens: int = 64,
    stop_strings: Sequence[str] = (),
    max_prompt_length: int | None = None,
    min_new_tokens: int = 0,
    suppress_tokens: Sequence[int] | None = None,
) -> Generation:
    """Decode one response per prompt with ``method``.

    Args:
        policy: the causal LM to decode from (the reference LM, or a fine-tuned policy).
        tokenizer: its tokenizer (shared with a cached scorer's RM).
        prompts: prompt texts, one per row.
        method: the decoding method.
        seeds: ``[R]`` int64 seed per row (see :func:`pargs.decoding.noise.stable_seed`).
        scorer: the reward scorer for guided and Best-of-N methods.
        max_new_tokens: the most tokens a response may have.
        stop_strings: a response also ends once its text contains one of these (cut after it).
        max_prompt_length: reject longer prompts instead of silently overflowing the context.
        min_new_tokens: EOS cannot be generated before this many tokens.
        suppress_tokens: ids never generated; None = the tokenizer's padding and unknown tokens.
    """
    if method.kind in ("guided", "best_of_n") and scorer is None:
        raise ConfigError(f"method {method.name!r} ({method.kind}) needs a scorer")
    method.validate(vocab_size=policy.config.get_text_config().vocab_size)
    device = next(policy.parameters()).device
    stop = Stopping.for_models(policy, tokenizer, device, max_new_tokens, min_new_tokens, stop_strings, suppress_tokens)
    start = time.perf_counter()
    prompts = list(prompts)
    ids, mask = encode_prompts(tokenizer, prompts, max_prompt_length)
    ids, mask, seeds = ids.to(device), mask.to(device), seeds.to(device)
    if method.kind != "best_of_n":
        token_ids, reasons = _decode_rows(policy, tokenizer, prompts, ids, mask, seeds, method, scorer, stop)
        texts = _texts(tokenizer, token_ids, stop.stop_strings)
        return Generation(token_ids, texts, reasons, time.perf_counter() - start,
                          tokens_generated=sum(len(t) for t in token_ids))
    # Best-of-N: n samples per row (seeds derived per candidate), the scorer keeps the best one
    n = method.n
    rows_prompts = [p for p in prompts for _ in range(n)]
    rids, rmask = ids.repeat_interleave(n, 0), mask.repeat_interleave(n, 0)
    token_ids, reasons = _decode_rows(policy, tokenizer, rows_prompts, rids, rmask, child_seeds(seeds, n), method,
                                      None, stop)
    texts = _texts(tokenizer, token_ids, stop.stop_strings)
    complete = [r != "length" for r in reasons]
    scores = scorer.score_responses(Responses(rows_prompts, rids, rmask, token_ids, texts, complete))
    scores = scores.view(len(prompts), n)
    pick = [i * n + int(b) for i, b in enumerate(scores.argmax(dim=1))]
    return Generation([token_ids[i] for i in pick], [texts[i] for i in pick], [reasons[i] for i in pick],
                      time.perf_counter() - start, scores.max(dim=1).values.cpu(), sum(len(t) for t in token_ids))
