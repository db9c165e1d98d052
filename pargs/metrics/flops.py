"""FLOPs per generated token from model shapes (Kaplan et al., 2020), and the overhead of guidance.

Non-embedding parameters ``N ~ 12 * n_layers * d_model^2`` and forward FLOPs per token
``C_forward ~ 2 N + 2 * n_layers * n_ctx * d_model``. Scoring k candidate tokens per step with a
reward model costs ``k * C_RM`` on top of the policy's ``C_LM``, so guided decoding costs
``1 + k * C_RM / C_LM`` times plain decoding; the paper (section 5.3) reports the overhead
``k * C_RM / C_LM``: 4.3 for GPT-2 Large + DeBERTa-v3 Large and 0.47 for Llama-2-7B + DeBERTa-v3
Large (k = 10), which :func:`overhead_ratio` reproduces with the context term left out (``n_ctx=0``;
for short contexts it is small next to ``2N``).

The convention (the paper's, one for every method; each decoding rule's ``flops`` in
``pargs/decoding/rules/`` follows it and ``pargs report`` divides by the generated tokens):

- counted: the forward passes that make the generated tokens, each token at its own context length
  (prompt plus the response so far, the ``n_ctx`` term above);
- excluded for every method: the prompt prefill (the forward pass over the prompt before the first
  new token), the policy's and the reward model's alike;
- plain decoding (greedy, top-k, the DPO / PPO policies): ``C_LM`` per token, 1x;
- guided decoding (ARGS, PARGS, PARGS-G, CD-FUDGE): ``C_LM + k C_RM`` per token, ``1 + k C_RM / C_LM``
  times plain, whether the scorer keeps a KV cache or re-encodes the text (that difference is an
  implementation's, and shows in the measured time per token); with the oracle as guide, 1x;
- Best-of-N: N responses by plain decoding, counted at the returned response's length: N times plain
  (an overhead of N - 1, 9x for N = 10). The reward model's one pass over each of the N finished
  responses is excluded too: it is paid once per response, not per token.

:func:`flops_per_token` also gives the cost of re-encoding from scratch (``from_scratch``), the
reference implementations' way, for comparison.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shape:
    """The two numbers Kaplan's estimate needs."""

    n_layers: int
    d_model: int

    @property
    def params(self) -> int:
        """Non-embedding parameters, ``12 * n_layers * d_model^2``."""
        return 12 * self.n_layers * self.d_model**2

    def forward_flops(self, n_ctx: int = 0) -> int:
        """FLOPs of one token's forward pass with ``n_ctx`` tokens of context."""
        return 2 * self.params + 2 * self.n_layers * n_ctx * self.d_model

    def span_flops(self, start: int, count: int) -> int:
        """FLOPs of ``count`` consecutive tokens whose contexts are ``start, start + 1, ...`` tokens long
        (closed form of ``sum(forward_flops(start + t) for t in range(count))``)."""
        return count * 2 * self.params + self.n_layers * self.d_model * count * (2 * start + count - 1)


#: Published shapes of the paper's models.
GPT2_LARGE = Shape(36, 1280)
LLAMA2_7B = Shape(32, 4096)
DEBERTA_V3_LARGE = Shape(24, 1024)


def shape_of(config) -> Shape:
    """Layers and width from a transformers config (GPT-2, Llama, BERT/DeBERTa naming)."""
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    for layers, width in (("num_hidden_layers", "hidden_size"), ("n_layer", "n_embd"), ("num_layers", "d_model")):
        n, d = getattr(config, layers, None), getattr(config, width, None)
        if isinstance(n, int) and isinstance(d, int):
            return Shape(n, d)
    raise ValueError(f"cannot read the number of layers and the width from a {type(config).__name__}")


def shape_or_none(config) -> Shape | None:
    """:func:`shape_of`, or None for a model whose config names its sizes differently."""
    try:
        return shape_of(config)
    except ValueError:
        return None


def overhead_ratio(lm: Shape, rm: Shape, k: int, n_ctx: int = 0) -> float:
    """Extra FLOPs of scoring k candidates with the RM per generated token, relative to the LM's."""
    return k * rm.forward_flops(n_ctx) / lm.forward_flops(n_ctx)


def flops_per_token(lm: Shape, rm: Shape | None, k: int, n_ctx: int, method: str) -> int:
    """FLOPs per generated token at context length ``n_ctx``.

    ``plain``: the policy only. ``cached``: the policy plus k candidate tokens through the RM with its
    KV cache (pargs' cached scorer). ``from_scratch``: the policy plus k whole sequences of length
    ``n_ctx`` re-encoded by the RM every step (the reference implementations' way).
    """
    base = lm.forward_flops(n_ctx)
    if method == "plain" or rm is None:
        return base
    if method == "cached":
        return base + k * rm.forward_flops(n_ctx)
    if method == "from_scratch":
        return base + k * rm.span_flops(0, n_ctx + 1)
    raise ValueError(f"method must be plain, cached or from_scratch, got {method!r}")
