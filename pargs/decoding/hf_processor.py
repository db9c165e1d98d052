"""Reward-guided decoding inside Hugging Face ``generate``: any guided rule as a ``LogitsProcessor``.

PARGS, PARGS-G, ARGS and CD-FUDGE all take, at each step, the ``k`` most likely tokens v of the
reference LM and score them ``log pi_ref(v | x, y) + beta * r(x, y + v)`` (see
:mod:`pargs.decoding.methods`). :class:`GuidedLogitsProcessor` returns exactly these scores for the
``k`` candidates and ``-inf`` for every other token, so ``generate``'s argmax (``do_sample=False``) is
the greedy rule and its ``softmax`` + ``multinomial`` (``do_sample=True``) samples the guided
distribution. The rewards come from a :class:`~pargs.decoding.scorer.Scorer`, as in pargs' own engine:
:class:`~pargs.decoding.cached_scorer.CachedCausalScorer` keeps the reward model's KV cache across
steps, :class:`~pargs.decoding.text_scorer.TextScorer` scores texts with any reward.

How the processor follows ``generate`` (it only ever sees ``input_ids`` and the scores):

- **A new batch** starts when ``input_ids`` is not the previous call's ``input_ids`` plus one column
  (a new ``generate`` call starts from its prompts, which differ from the last sequences in width or
  contents), or after :meth:`~GuidedLogitsProcessor.prepare`. One processor can thus serve many
  ``generate`` calls, one at a time. (Prompts that are exactly the last sequences plus one token would
  continue the old batch: the same rewards for a causal RM, whose input is prompt + response as one
  sequence; ``prepare`` makes the start explicit.)
- **The prompt mask** is the one given to :meth:`~GuidedLogitsProcessor.prepare` (the robust way: the same
  ``attention_mask`` that ``generate`` gets). Without it, leading pad tokens are taken as left padding,
  which is only unambiguous when the pad token is neither EOS nor BOS; otherwise the processor refuses.
- **The chosen token** of the previous step is the last column of ``input_ids``. When every row's
  token is one of its candidates, the scorer keeps it (no extra forward). Otherwise (``generate`` pads
  finished rows with the pad token, which is never a candidate; or a processor placed after this one
  changed the choice) the scorer drops the candidates and appends the actual tokens
  (:meth:`~pargs.decoding.scorer.Scorer.advance_outside`: one more reward-model forward of one token per
  row in such steps). A scorer that cannot do that fails loudly instead of scoring the wrong sequence.
- **Finished rows** stay in ``generate``'s batch, padded: the reward model's cache keeps growing for
  them until the whole batch ends (pargs' engine drops them instead), and from the first finished row
  on every step pays the extra one-token forward above.
- **Suppressed tokens**: like the engine (``Stopping.for_models`` in :mod:`pargs.decoding.engine`), the
  tokenizer's padding and unknown tokens (unless they are EOS) never become candidates.
- **The scores it gets** are the policy's float32 logits after the processors ``generate`` builds from
  its config (``min_new_tokens``, repetition penalty, bad words ...), which run before any processor
  passed in ``logits_processor`` and so shape ``pi_ref`` here as in plain decoding; the rule takes their
  log-softmax, so raw or shifted logits give the same result. The sampling warpers run after it.

Greedy rules (``greedy=True``) give the engine's tokens exactly (tested in float32 on CPU). Sampling
draws with ``generate``'s ``torch.multinomial`` on the global RNG, not the engine's counter-based
per-row noise, so the tokens differ while the distribution over the ``k`` candidates is the same.
``generate``'s own warpers would reshape it (``top_k`` keeps the 50 best by default, which cuts
candidates when ``k > 50``; ``temperature`` and ``top_p`` rescale or cut them):
:meth:`~GuidedLogitsProcessor.generate_kwargs` switches them off, and the method's ``temperature`` is
applied here instead.

Not supported: beam search and assisted (speculative) decoding, whose calls do not follow one
sequence per row and step (beam reordering would look like a new batch at every step: correct
rewards, at the price of a full re-scoring each step).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor
from transformers import LogitsProcessor, PreTrainedTokenizerBase

from pargs.decoding.scorer import Scorer
from pargs.errors import ConfigError


def _as_ids(value) -> set[int]:
    if value is None:
        return set()
    return {value} if isinstance(value, int) else set(value)


class GuidedLogitsProcessor(LogitsProcessor):
    """``log pi_ref(v) + beta * r(x, y + v)`` over the top-``k`` tokens v, ``-inf`` elsewhere.

    Args:
        scorer: the reward scorer (its state follows the batch; one processor per concurrent ``generate``).
        tokenizer: the policy's tokenizer (pad / unknown / EOS / BOS ids, and prompt texts for a text scorer).
        k: candidate tokens scored per step.
        beta: reward weight (the paper's beta, ARGS's w).
        greedy: the method takes the argmax; only changes :meth:`generate_kwargs` (``generate`` decides).
        temperature: sampling divides the guided scores by this (ignored when ``greedy``).
        suppress_tokens: ids never made candidates; None = the tokenizer's padding and unknown tokens,
            as in the engine.
    """

    supports_continuous_batching = False

    def __init__(
        self,
        scorer: Scorer,
        tokenizer: PreTrainedTokenizerBase,
        k: int = 10,
        beta: float = 1.5,
        greedy: bool = False,
        temperature: float = 1.0,
        suppress_tokens: Sequence[int] | None = None,
    ) -> None:
        if k < 1:
            raise ConfigError(f"GuidedLogitsProcessor: k must be >= 1, got {k}")
        if not math.isfinite(beta) or beta < 0:
            raise ConfigError(f"GuidedLogitsProcessor: beta must be a finite number >= 0, got {beta}")
        if not math.isfinite(temperature) or temperature <= 0:
            raise ConfigError(f"GuidedLogitsProcessor: temperature must be a finite number > 0, got {temperature}")
        self.scorer = scorer
        self.tokenizer = tokenizer
        self.k, self.beta, self.greedy, self.temperature = k, float(beta), greedy, float(temperature)
        eos = _as_ids(tokenizer.eos_token_id)
        if suppress_tokens is None:  # the engine's rule (pargs/decoding/engine.py, Stopping.for_models)
            suppress_tokens = {tokenizer.pad_token_id, tokenizer.unk_token_id} - eos - {None}
        self.suppress_ids = sorted(suppress_tokens)
        self._pad = tokenizer.pad_token_id
        # a leading pad token is only surely padding when no prompt could start with it
        self._pad_ambiguous = self._pad is None or self._pad in eos | _as_ids(tokenizer.bos_token_id)
        self._pending: tuple[Tensor | None, list[str] | None] | None = None
        self._seen: Tensor | None = None  # input_ids of the last call
        self._candidates: Tensor | None = None  # [B, k] candidates of the last call

    @classmethod
    def from_method(cls, method, scorer: Scorer, tokenizer: PreTrainedTokenizerBase, **kwargs) -> GuidedLogitsProcessor:
        """The processor of a guided :class:`~pargs.decoding.methods.DecodeMethod` (k, beta, greedy, temperature)."""
        if method.kind != "guided":
            raise ConfigError(
                f"method {method.name!r} is {method.kind!r}; only 'guided' methods (PARGS, PARGS-G, "
                "ARGS, CD-FUDGE) are logits processors"
            )
        beta = getattr(method, "beta", None)
        if beta is None:
            beta = method.weight  # the field's older name
        return cls(
            scorer, tokenizer, k=method.k, beta=beta, greedy=method.greedy, temperature=method.temperature, **kwargs
        )

    def generate_kwargs(self) -> dict:
        """The ``generate`` arguments under which it applies this rule and nothing else."""
        if self.greedy:
            return {"do_sample": False}
        return {"do_sample": True, "top_k": 0, "top_p": 1.0, "temperature": 1.0}

    def prepare(
        self, attention_mask: Tensor | None = None, prompts: Sequence[str] | None = None
    ) -> GuidedLogitsProcessor:
        """Declare the batch the next ``generate`` call starts; returns the processor itself.

        Args:
            attention_mask: ``[B, P]`` the prompt mask given to ``generate`` (left padding). With
                ``num_return_sequences=n`` pass the ``B`` prompts' mask; it is repeated like the rows.
            prompts: the prompt texts (a text scorer's input); None = decoded from the prompt ids.
        """
        self._pending = (attention_mask, None if prompts is None else list(prompts))
        return self

    def reset(self) -> None:
        """Forget the current batch (the next call starts a new one)."""
        self._seen = self._candidates = None

    @torch.no_grad()
    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:
        if self._starts_batch(input_ids):
            self._begin(input_ids)
        else:
            self._advance(input_ids[:, -1])
        if self.k > scores.shape[-1]:
            raise ConfigError(f"GuidedLogitsProcessor: k={self.k} is larger than the vocabulary ({scores.shape[-1]})")
        logits = scores.float().clone()
        if self.suppress_ids:
            logits[:, self.suppress_ids] = float("-inf")
        lp, cand = torch.log_softmax(logits, dim=-1).topk(self.k, dim=-1)
        guided = lp + self.beta * self.scorer.score_candidates(cand).to(lp.dtype)
        if not self.greedy and self.temperature != 1.0:
            guided = guided / self.temperature
        self._seen, self._candidates = input_ids, cand
        return torch.full_like(logits, float("-inf")).scatter_(1, cand, guided)

    def _starts_batch(self, input_ids: Tensor) -> bool:
        seen = self._seen
        if self._pending is not None or seen is None or self._candidates is None:
            return True
        if input_ids.shape != (seen.shape[0], seen.shape[1] + 1) or input_ids.device != seen.device:
            return True
        return not torch.equal(input_ids[:, :-1], seen)

    def _begin(self, input_ids: Tensor) -> None:
        mask, prompts = self._pending or (None, None)
        self._pending = None
        rows = input_ids.shape[0]
        if mask is None:
            mask = self._derived_mask(input_ids)
        else:
            given, mask = tuple(mask.shape), mask.to(input_ids.device)
            if mask.shape[0] != rows and mask.shape[0] and rows % mask.shape[0] == 0:  # num_return_sequences
                mask = mask.repeat_interleave(rows // mask.shape[0], dim=0)
            if mask.shape != input_ids.shape:
                raise ConfigError(
                    f"GuidedLogitsProcessor: the attention mask given to prepare() has shape "
                    f"{given} but generate() started with input_ids of shape "
                    f"{tuple(input_ids.shape)}; pass the mask of this generate() call's prompts"
                )
        if bool((mask[:, 1:] < mask[:, :-1]).any()):
            raise ConfigError(
                "GuidedLogitsProcessor: the prompts are right-padded; decoder-only generation needs "
                "left padding (tokenizer.padding_side = 'left')"
            )
        if prompts is None:
            prompts = [
                self.tokenizer.decode(row[m.bool()].tolist(), skip_special_tokens=True)
                for row, m in zip(input_ids, mask)
            ]
        elif len(prompts) != rows:
            if not prompts or rows % len(prompts):
                raise ConfigError(f"GuidedLogitsProcessor: {len(prompts)} prompt texts for {rows} rows")
            prompts = [p for p in prompts for _ in range(rows // len(prompts))]
        self.scorer.begin(prompts, input_ids, mask.long())

    def _derived_mask(self, input_ids: Tensor) -> Tensor:
        if self._pad_ambiguous:
            raise ConfigError(
                f"GuidedLogitsProcessor: the pad token ({self._pad!r}) is also EOS/BOS (or missing), so the prompts' "
                "padding cannot be read from input_ids; call processor.prepare(attention_mask) with generate()'s "
                "attention mask before each generate() call"
            )
        real = input_ids != self._pad
        if bool((~real[:, -1]).any()):
            raise ConfigError(
                "GuidedLogitsProcessor: a prompt ends with the pad token: right padding? Decoder-only "
                "generation needs left padding (tokenizer.padding_side = 'left'), or call "
                "processor.prepare(attention_mask)"
            )
        return real.long().cummax(dim=1).values  # 0 up to the first real token, 1 from there on

    def _advance(self, tokens: Tensor) -> None:
        match = self._candidates == tokens.unsqueeze(1)
        if bool(match.any(dim=1).all()):
            self.scorer.advance(match.long().argmax(dim=1), tokens)
            return
        try:
            self.scorer.advance_outside(tokens)
        except NotImplementedError as err:
            raise ConfigError(
                f"GuidedLogitsProcessor: generate() continued a row with a token that was not one of its candidates "
                f"(a padded finished row, or a processor after this one changed the choice), and "
                f"{type(self.scorer).__name__} cannot take in such a token ({err}); use a scorer that implements "
                "advance_outside (CachedCausalScorer, TextScorer)"
            ) from err
