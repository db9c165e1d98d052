"""The decoding loop: a batch of prompts, one method, per-row stopping.

:func:`generate` encodes the prompts, looks up the method's rule once (:mod:`pargs.decoding.registry`)
and lets it decode the batch. Rules that pick one token per step (sample, guided) run
:func:`decode_tokens`; Best-of-N runs it on n copies of each row and keeps the best response.

Each row carries its own seed; all randomness is counter-based noise keyed by (seed, step, token),
so outputs do not depend on batch size or order (see :mod:`pargs.decoding.noise`).

Two token loops (``path``):

- **eager** (:func:`decode_tokens`): finished rows leave the batch (their KV-cache rows are dropped),
  so a batch costs what its live rows cost, and the host checks stopping after every step. Any rule,
  scorer and stop string. The reference.
- **static** / **graphs** / **compiled** (:mod:`pargs.decoding.static_loop`): preallocated caches and
  one fixed-shape step with no host synchronisation, run as it is, captured as a CUDA graph, or
  compiled with ``torch.compile`` (and captured, on CUDA). For GPUs, where the eager loop is bound by
  kernel launches. It needs a rule with a static step, a scorer that can follow it (the cached scorer;
  not the text scorer, which scores on the host) and no stop strings (they are matched in the text).

``auto`` takes ``eager`` on CPU: there the compiled step takes 0.74-0.82x the eager time but compiling costs
minutes per shape, which pays off only after tens of calls of that shape (``benchmarks/results/decoding.md``).
On CUDA, where the method allows the static path (else ``eager``, with a log line saying why), it takes the
loop of the fewest estimated seconds for the calls of this shape the caller expects (``calls``: ``pargs
predict`` counts them; 1 for a lone call, which then compiles only for ~10,000 new tokens or more), from the
costs measured on an H200 (:mod:`pargs.decoding.path_costs`, :func:`auto_path`).

Guided decoding here keeps the reward model's KV cache in step with the chosen tokens (the cached
scorer), 14-49x faster than re-scoring the k candidate sequences from scratch as the reference
implementations do (``official-style`` in ``benchmarks/results/decoding.md``), at 2.5-2.9x the time of
plain sampling. The same scorer also runs inside Hugging Face ``generate`` as a ``LogitsProcessor``
(:mod:`pargs.decoding.hf_processor`), at 1.0-1.1x this loop's time on CPU
(``benchmarks/results/hf_processor.md``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from pargs.decoding.methods import DecodeMethod
from pargs.decoding.noise import child_seeds
from pargs.decoding.path_costs import cheapest, run_seconds
from pargs.decoding.scorer import Scorer
from pargs.decoding.stream import CausalStream, why_no_candidate_chunks
from pargs.errors import ConfigError
from pargs.models.encoding import decode_response, encode_prompt, pad_batch

log = logging.getLogger(__name__)

#: the token loops :func:`generate` can run (module docstring); ``auto`` picks one
PATHS = ("auto", "eager", "static", "graphs", "compiled")


@dataclass
class Generation:
    """Decoded responses, one per input row."""

    token_ids: list[list[int]]  #: generated ids (EOS included when the response ended with it)
    texts: list[str]  #: response texts (special tokens dropped, cut after a stop string)
    stop_reasons: list[str]  #: "eos", "stop" (a stop string) or "length" (max_new_tokens reached)
    seconds: float = 0.0  #: wall time of the whole call
    scores: Tensor | None = None  #: Best-of-N: the scorer's reward of each chosen response
    tokens_generated: int = 0  #: tokens generated in total (Best-of-N counts every candidate)
    path: str = "eager"  #: the token loop that ran (eager, static, graphs or compiled)
    compile_seconds: float = 0.0  #: of ``seconds``, compiling and capturing the step (a shape's first call)

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
    def for_models(
        cls,
        policy: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        device,
        max_new_tokens: int,
        min_new_tokens: int = 0,
        stop_strings: Sequence[str] = (),
        suppress_tokens: Sequence[int] | None = None,
    ) -> Stopping:
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
            raise ConfigError(
                f"need 1 <= max_new_tokens and 0 <= min_new_tokens <= max_new_tokens, got "
                f"{max_new_tokens} and {min_new_tokens}"
            )
        return cls(as_tensor(eos), as_tensor(suppress_tokens), max_new_tokens, min_new_tokens, tuple(stop_strings))

    def mask_logits(self, logits: Tensor, step: int) -> Tensor:
        logits = logits.float()
        if self.suppress_ids.numel():
            logits[:, self.suppress_ids] = float("-inf")
        if step < self.min_new_tokens:
            logits[:, self.eos_ids] = float("-inf")
        return logits


@dataclass
class Prompts:
    """A batch of prompts as a rule decodes it, on the policy's device."""

    texts: list[str]  #: prompt texts
    ids: Tensor  #: ``[R, P]`` left-padded prompt ids
    mask: Tensor  #: ``[R, P]`` their attention mask
    seeds: Tensor  #: ``[R]`` int64 seed per row
    path: str = "eager"  #: the token loop to run: eager, static, graphs or compiled (module docstring)

    def repeat(self, n: int) -> Prompts:
        """Each row ``n`` times in a row, each copy with its own seed (:func:`pargs.decoding.noise.child_seeds`)."""
        return Prompts(
            [t for t in self.texts for _ in range(n)],
            self.ids.repeat_interleave(n, 0),
            self.mask.repeat_interleave(n, 0),
            child_seeds(self.seeds, n),
            self.path,
        )


#: ``pick(logp, seeds, step) -> tokens``: the next token of each live row from its ``[R, V]`` log-probabilities
PickTokens = Callable[[Tensor, Tensor, int], Tensor]


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


def lm_forward(model: PreTrainedModel):
    """``forward(ids, mask, positions, cache) -> (last logits [B, 1, V], cache)`` of a causal LM, for a stream."""

    def forward(ids: Tensor, mask: Tensor, positions: Tensor, cache) -> tuple[Tensor, object]:
        out = model(
            input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True, logits_to_keep=1
        )
        return out.logits, out.cache

    return forward


@torch.no_grad()
def decode_tokens(
    policy: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    batch: Prompts,
    pick: PickTokens,
    scorer: Scorer | None,
    stop: Stopping,
) -> tuple[list[list[int]], list[str]]:
    """The token loop: ``pick`` chooses every live row's next token from the policy's log-probabilities.

    A ``scorer`` (None: none) is kept in step with the rows: started on the prompts, shrunk with the
    batch as rows finish; ``pick`` advances it with the chosen token. Returns each row's token ids and
    stop reason.
    """
    n_rows = batch.ids.shape[0]
    stream = CausalStream(lm_forward(policy), policy.config)
    logits = stream.prefill(batch.ids, batch.mask)[:, -1]
    if scorer is not None:
        scorer.begin(batch.texts, batch.ids, batch.mask)
    seeds = batch.seeds
    out: list[list[int]] = [[] for _ in range(n_rows)]
    reasons = ["length"] * n_rows
    live = torch.arange(n_rows)
    eos = stop.eos_ids.cpu()
    for step in range(stop.max_new_tokens):
        logp = torch.log_softmax(stop.mask_logits(logits, step), dim=-1)
        tokens = pick(logp, seeds, step)
        picked = tokens.cpu()  # the step's one copy to the host (on a GPU, one synchronisation)
        done = torch.isin(picked, eos)
        for i, (row, tok) in enumerate(zip(live.tolist(), picked.tolist())):
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
            keep = keep.to(batch.ids.device)
            seeds, tokens = seeds[keep], tokens[keep]
            stream.keep_rows(keep)
            if scorer is not None:
                scorer.keep_rows(keep)
        logits = stream.append(tokens)
    return out, reasons


def finished(
    tokenizer: PreTrainedTokenizerBase, token_ids: list[list[int]], reasons: list[str], stop: Stopping
) -> Generation:
    """A :class:`Generation` of decoded rows: their texts cut after a stop string, the tokens counted."""
    return Generation(
        token_ids,
        _texts(tokenizer, token_ids, stop.stop_strings),
        reasons,
        tokens_generated=sum(len(t) for t in token_ids),
    )


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
    path: str = "auto",
    calls: int = 1,
) -> Generation:
    """Decode one response per prompt with ``method``.

    Args:
        policy: the causal LM to decode from (the reference LM, or a fine-tuned policy).
        tokenizer: its tokenizer (shared with a cached scorer's RM).
        prompts: prompt texts, one per row.
        method: the decoding method.
        seeds: ``[R]`` int64 seed per row (see :func:`pargs.decoding.noise.stable_seed`).
        scorer: the reward scorer, for methods whose rule uses one (guided, Best-of-N).
        max_new_tokens: the most tokens a response may have.
        stop_strings: a response also ends once its text contains one of these (cut after it).
        max_prompt_length: reject longer prompts instead of silently overflowing the context.
        min_new_tokens: EOS cannot be generated before this many tokens.
        suppress_tokens: ids never generated; None = the tokenizer's padding and unknown tokens.
        path: the token loop: ``eager``, ``static``, ``graphs`` (CUDA), ``compiled``, or ``auto`` (eager on CPU;
            on CUDA the cheapest for ``calls`` calls by measured costs, :func:`auto_path`); see the module docstring.
            A path other than eager or auto that cannot run the method fails with a ConfigError saying why.
        calls: how many calls like this one (this method, about this many prompts) the caller will make, this one
            included; ``auto`` weighs a capture's or a compile's one-time cost against the steps they speed up.
            1: this call alone (the safe guess when the run's size is unknown), so ``auto`` compiles only where one
            call's own steps repay compiling (over ~10,000 new tokens) and captures where they repay a capture.
    """
    rule = method.rule
    if rule.uses_scorer and scorer is None:
        raise ConfigError(f"method {method.name!r} ({method.kind}) needs a scorer")
    method.validate(vocab_size=policy.config.get_text_config().vocab_size)
    device = next(policy.parameters()).device
    stop = Stopping.for_models(policy, tokenizer, device, max_new_tokens, min_new_tokens, stop_strings, suppress_tokens)
    start = time.perf_counter()
    prompts = list(prompts)
    ids, mask = encode_prompts(tokenizer, prompts, max_prompt_length)
    path = choose_path(path, method, policy, scorer, stop, device, calls)
    batch = Prompts(prompts, ids.to(device), mask.to(device), seeds.to(device), path)
    gen = rule.decode(method, policy, tokenizer, batch, scorer, stop)
    gen.seconds = time.perf_counter() - start
    gen.path = path
    return gen


_told: set[str] = set()


def _once(level: int, message: str) -> None:
    """Log ``message`` once per process (a run decodes many batches of the same method and shape)."""
    if message not in _told:
        _told.add(message)
        log.log(level, message)


def choose_path(
    path: str,
    method: DecodeMethod,
    policy: PreTrainedModel,
    scorer: Scorer | None,
    stop: Stopping,
    device: torch.device,
    calls: int = 1,
) -> str:
    """The token loop that decodes ``method``: ``path`` itself, or for ``auto`` the one that suits the regime
    (:func:`auto_path`, which weighs ``calls`` calls of this shape)."""
    if path not in PATHS:
        raise ConfigError(f"decoding path must be one of {list(PATHS)}, got {path!r}")
    if path == "eager" or (path == "auto" and device.type != "cuda"):
        return "eager"
    reason = why_not_static(method, policy, scorer, stop)
    if path == "auto":
        if reason:
            _once(logging.WARNING, f"decoding method {method.name!r} runs on the eager path: {reason}")
            return "eager"
        return auto_path(method, policy, scorer, stop, calls)
    if reason:
        raise ConfigError(
            f"decoding path {path!r} cannot run method {method.name!r}: {reason}; use path 'eager' "
            "(or 'auto', which falls back to it)"
        )
    if path == "graphs" and device.type != "cuda":
        raise ConfigError(
            f"decoding path 'graphs' captures CUDA graphs and needs a CUDA device, not {device.type}; "
            "use 'static' or 'compiled' there"
        )
    return path


def auto_path(
    method: DecodeMethod, policy: PreTrainedModel, scorer: Scorer | None, stop: Stopping, calls: int = 1
) -> str:
    """``eager``, ``graphs`` or ``compiled`` for a method that can run on the static path, on CUDA: the cheapest
    for ``calls`` calls of this shape of ``max_new_tokens`` steps each, by the measured costs of
    :mod:`pargs.decoding.path_costs` (eager: a fixed host overhead per step plus one per layer; graphs: the weights'
    read plus small kernels, after a capture of ~1 s; compiled: fewer small kernels, after 10-60 s of compiling).

    The layers and weights are the policy's, plus the reward model's for a rule that runs it every step (guided
    rules, not Best-of-N). ``calls`` is how many calls of this shape the caller will make in all: ``pargs predict``
    counts them from its prompts, samples and ``rows_per_call``; a lone ``generate`` call passes 1, so it compiles
    only where that call's own steps repay the compile (some 10,000 new tokens) and captures where they repay a
    capture (a 7B model decoding 128 tokens: graphs; the quickstart's two-layer models decoding 32: eager).
    """
    models = [policy]
    if method.rule.uses_scorer and hasattr(method.rule, "step") and scorer is not None:  # scored at every step
        models.append(getattr(scorer, "static_key", None))
    layers = sum(_layers(m) for m in models)
    weight_bytes = sum(_weight_bytes(m) for m in models)
    seconds = run_seconds(layers, weight_bytes, stop.max_new_tokens, calls)
    path = cheapest(seconds)
    estimates = ", ".join(f"{p} ~{s:.1f} s" for p, s in seconds.items())
    _once(
        logging.INFO,
        f"decoding method {method.name!r}, {calls} call(s) of {stop.max_new_tokens} steps, {layers} layers: "
        f"{estimates}; path {path}",
    )
    return path


def _weight_bytes(model) -> int:
    """Bytes of a model's parameters (0 for anything that is not a torch module)."""
    if not isinstance(model, torch.nn.Module):
        return 0
    return sum(p.numel() * p.element_size() for p in model.parameters())


def _layers(model) -> int:
    """Transformer layers of a Hugging Face model (0 for anything else, e.g. a scorer without a model)."""
    config = getattr(model, "config", None)
    if config is None:
        return 0
    return int(getattr(config.get_text_config(), "num_hidden_layers", 0) or 0)


def why_not_static(method: DecodeMethod, policy: PreTrainedModel, scorer: Scorer | None, stop: Stopping) -> str | None:
    """Why ``method`` cannot run on the static path (:mod:`pargs.decoding.static_loop`), or None when it can."""
    if stop.stop_strings:
        return "stop strings are matched in the decoded text, on the host"
    reason = why_no_candidate_chunks(policy.config)  # the static caches pass their own 4D masks, like the chunks
    if reason:
        return f"the policy cannot use static caches: {reason}"
    return method.rule.why_not_static(method, scorer)
