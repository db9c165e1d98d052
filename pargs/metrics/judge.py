"""Pairwise judging: win / tie / lose rates of method A against method B, position bias cancelled.

A judge is any callable ``judge(prompt, first, second) -> "A" | "B" | "tie"`` naming the better of
the two responses *as shown*. Each pair is judged twice, with A shown first and then second; A wins
only if it wins both times (likewise B), anything else is a tie. This is the paper's GPT-4 protocol
made pluggable; :class:`LocalLMJudge` uses a local causal LM and never calls a network service.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from pargs.errors import ConfigError
from pargs.models.loading import context_length

Judge = Callable[[str, str, str], str]

DEFAULT_TEMPLATE = (
    "Which response answers the prompt better?\n\nPrompt: {prompt}\n\nResponse A: {first}\n\n"
    "Response B: {second}\n\nThe better response is"
)


@dataclass(frozen=True)
class WinTie:
    """Rates of method A against method B over n prompts."""

    win: float
    tie: float
    lose: float
    n: int

    @property
    def win_or_tie(self) -> float:
        return self.win + self.tie


def win_tie_rate(
    judge: Judge, prompts: Sequence[str], responses_a: Sequence[str], responses_b: Sequence[str]
) -> WinTie:
    """Judge every prompt in both orders; a method wins a prompt only when both orders agree."""
    if not (len(prompts) == len(responses_a) == len(responses_b)) or not prompts:
        raise ValueError("need as many responses of each method as prompts, and at least one prompt")
    win = lose = 0
    for prompt, a, b in zip(prompts, responses_a, responses_b):
        first, second = judge(prompt, a, b), judge(prompt, b, a)
        for verdict in (first, second):
            if verdict not in ("A", "B", "tie"):
                raise ValueError(f"a judge must answer 'A', 'B' or 'tie', got {verdict!r}")
        a_wins = first == "A" and second == "B"
        b_wins = first == "B" and second == "A"
        win += a_wins
        lose += b_wins
    n = len(prompts)
    return WinTie(win / n, (n - win - lose) / n, lose / n, n)


def answer_token_ids(tokenizer) -> list[int]:
    """The ids of " A" and " B" (first token of each); fails if they are missing or the same."""
    ids = [tokenizer(x, add_special_tokens=False)["input_ids"][:1] for x in (" A", " B")]
    unk = getattr(tokenizer, "unk_token_id", None)
    if any(not t or t[0] == unk for t in ids) or ids[0] == ids[1]:
        raise ConfigError(
            "the judge's tokenizer has no distinct tokens for ' A' and ' B': every verdict would be a tie"
        )
    return [t[0] for t in ids]


class LocalLMJudge:
    """Ask a local causal LM: compare the log-probabilities of " A" and " B" after the rendered template.

    Args:
        model: a causal LM (``AutoModelForCausalLM``), already loaded.
        tokenizer: its tokenizer.
        template: a format string with ``{prompt}``, ``{first}`` and ``{second}``.
        tie_margin: answers within this log-probability margin count as a tie.
    """

    def __init__(self, model, tokenizer, template: str = DEFAULT_TEMPLATE, tie_margin: float = 0.0) -> None:
        self.model, self.tokenizer, self.template, self.tie_margin = model, tokenizer, template, tie_margin
        self.answer_ids = answer_token_ids(tokenizer)
        self.context = context_length(model)

    @torch.no_grad()
    def __call__(self, prompt: str, first: str, second: str) -> str:
        text = self.template.format(prompt=prompt, first=first, second=second)
        ids = self.tokenizer(text)["input_ids"]
        if self.context is not None and len(ids) > self.context:
            raise ConfigError(
                f"the judge prompt has {len(ids)} tokens but the judge model takes at most "
                f"{self.context}: use a shorter template or a judge with a longer context"
            )
        ids = torch.tensor([ids], device=next(self.model.parameters()).device)
        logp = torch.log_softmax(self.model(input_ids=ids).logits[0, -1].float(), -1)
        a, b = (float(logp[i]) for i in self.answer_ids)
        if abs(a - b) <= self.tie_margin:
            return "tie"
        return "A" if a > b else "B"
