"""A scorer that returns NaN stops :func:`pargs.decoding.engine.generate` naming exactly the rows that met one, on the
eager loop (where rows leave the batch as they finish) and on the static path (pargs/decoding/finite.py)."""

from __future__ import annotations

import pytest
import torch

from pargs.decoding import static_loop
from pargs.decoding.cached_scorer import CachedCausalScorer
from pargs.decoding.engine import generate
from pargs.decoding.finite import NonFiniteScores
from pargs.decoding.methods import DecodeMethod
from pargs.decoding.scorer import Scorer
from pargs.decoding.text_reward import ModelReward
from pargs.decoding.text_scorer import TextScorer
from tests.conftest import make_rm

PROMPTS = [
    "write a review of the hotel about the staff :",
    "write a short review of the phone about the price :",
    "write a detailed review of the movie about the plot :",
    "write a review of the gym about the showers :",
]


class _ByPrompt(Scorer):
    """Rewards by row: row ``early`` rewards EOS so much that it ends at step 0 (and leaves the batch); row ``bad``
    gets NaN from step 1 on, when it is no longer at its first index; every other reward is 0."""

    def __init__(self, eos: int, early: int, bad: int) -> None:
        self.eos, self.early, self.bad = eos, early, bad

    def begin(self, prompts, prompt_ids, prompt_mask):
        self.rows, self.step = list(range(len(prompts))), 0

    def score_candidates(self, candidates):
        rewards = torch.zeros(candidates.shape)
        for b, row in enumerate(self.rows):
            if row == self.early:
                rewards[b] = 100.0 * (candidates[b] == self.eos)
            elif row == self.bad and self.step >= 1:
                rewards[b] = float("nan")
        self.step += 1
        return rewards

    def advance(self, chosen, tokens):
        pass

    def keep_rows(self, rows):
        self.rows = [self.rows[i] for i in rows.tolist()]

    def score_responses(self, responses):
        raise NotImplementedError


def test_the_rows_named_are_those_of_the_call_after_rows_left_the_batch(lm, tokenizer):
    vocab = lm.config.vocab_size - 2  # every candidate but the suppressed padding and unknown tokens
    method = DecodeMethod("pargs-g", kind="guided", k=vocab, beta=1.0, greedy=True, scorer="rm")
    scorer = _ByPrompt(tokenizer.eos_token_id, early=0, bad=2)
    with pytest.raises(NonFiniteScores) as caught:
        generate(lm, tokenizer, PROMPTS, method, torch.arange(4), scorer=scorer, max_new_tokens=4, path="eager")
    assert scorer.rows == [1, 2, 3]  # row 0 did leave the batch before row 2's NaN
    assert caught.value.rows == [2]
    assert str(caught.value).startswith("decoding method 'pargs-g': its scorer returned a non-finite reward")


@pytest.mark.parametrize(
    "scorer_kind, path", [("cached", "eager"), ("cached", "static"), ("cached", "compiled"), ("text", "eager")]
)
def test_an_rm_that_is_nan_on_some_prompts_names_those_rows(lm, tokenizer, monkeypatch, scorer_kind, path):
    """The RM's embedding of the unknown token is NaN: rows whose prompt holds an unknown word score NaN at every
    step; the others never meet it (the unknown token is never a candidate). ``compiled``: the flags inside a
    step that torch.compile traces as one graph (fullgraph; the cheap aot_eager backend)."""
    monkeypatch.setattr(static_loop, "COMPILE_BACKEND", "aot_eager")
    rm = make_rm(tokenizer)
    with torch.no_grad():
        rm.transformer.wte.weight[tokenizer.unk_token_id] = float("nan")
    prompts = [p.replace("staff", "xyzzy") if i in (0, 3) else p for i, p in enumerate(PROMPTS)]
    prompts[3] = prompts[3].replace("gym", "xyzzy")
    assert [tokenizer.unk_token_id in tokenizer(p)["input_ids"] for p in prompts] == [True, False, False, True]
    scorer = CachedCausalScorer(rm) if scorer_kind == "cached" else TextScorer(ModelReward(rm, tokenizer), tokenizer)
    method = DecodeMethod("pargs", kind="guided", k=4, beta=1.5, scorer="rm")
    with pytest.raises(NonFiniteScores) as caught:
        generate(lm, tokenizer, prompts, method, torch.arange(4), scorer=scorer, max_new_tokens=5, path=path)
    assert caught.value.rows == [0, 3]
