"""Decision values (the Monte Carlo value of each candidate of a decoding step) against exact expectations over every
completion of a tiny LM, common random numbers, and the candidates' scores against scoring from scratch."""

import math

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from pargs.decoding.cached_scorer import CachedCausalScorer
from pargs.decoding.text_reward import ModelReward
from pargs.decoding.text_scorer import TextScorer
from pargs.errors import ConfigError
from pargs.metrics.decision_values import DecisionState, candidate_scores, decision_values, draw_states
from pargs.models.encoding import decode_response, encode_prompt, pad_batch
from pargs.models.reward_model import sequence_rewards
from tests.conftest import make_lm, make_rm
from tests.metrics.test_prefix_values import EOS, LM, TOK, A, B, _next_probs, exact_moments, text_reward

PROMPT = [A, B]  # "a b"


def state(prefix, key="s") -> DecisionState:
    return DecisionState(key, "p", "a b", tuple(PROMPT), tuple(prefix))


def exact_value(prefix: list[int], budget: int) -> tuple[float, float]:
    """Mean and variance of the reward of ``prefix`` completed by the tiny LM, by enumerating every completion."""
    if prefix[-1] == EOS:
        text = TOK.decode(prefix, skip_special_tokens=True)
        return float(text_reward(None, [text], [True])[0]), 0.0
    return exact_moments(PROMPT, prefix, budget)


def test_values_logp_and_order_match_the_exact_expectations():
    m, max_new = 2000, 5  # prefix [b] + candidate + at most 3 completion tokens
    (d,) = decision_values(LM, TOK, [state([B])], text_reward, k=3, m=m, seed=1, max_new_tokens=max_new)
    probs = _next_probs(PROMPT + [B], uniform=False)
    # every token but padding and unknown is a candidate, most likely first, with its exact log-probability
    assert list(d.tokens) == sorted(probs, key=probs.get, reverse=True)
    assert d.logp == pytest.approx([math.log(probs[v]) for v in d.tokens], abs=1e-5)
    assert d.eos == tuple(v == EOS for v in d.tokens)
    for v, value in zip(d.tokens, d.values):
        mean, var = exact_value([B, v], max_new - 2)
        if v == EOS:  # the candidate ends the response: its own reward, exactly
            assert (value.mean, value.se, value.n) == (pytest.approx(mean), 0.0, 0)
            continue
        sd = math.sqrt(var / m)
        assert value.n == m
        assert abs(value.mean - mean) < 4 * sd  # unbiased within its standard error
        assert value.se == pytest.approx(sd, rel=0.15)


def test_common_random_numbers_shrink_the_variance_of_differences():
    m, max_new = 2000, 5
    (d,) = decision_values(LM, TOK, [state([A])], text_reward, k=3, m=m, seed=3, max_new_tokens=max_new)
    at = {v: x for x, v in enumerate(d.tokens)}
    (mean_a, var_a), (mean_b, var_b) = exact_value([A, A], max_new - 2), exact_value([A, B], max_new - 2)
    # 'a' is the best candidate (exact values 3.24, EOS 2.5, 'b' 1.79); the differences are taken to it
    assert max(d.means) == d.values[at[A]].mean and d.se_diff[at[A]] == 0.0
    assert d.se_diff[at[EOS]] == pytest.approx(d.values[at[A]].se)  # against an exact value pairing changes nothing
    se = d.se_diff[at[B]]
    assert abs(d.values[at[A]].mean - d.values[at[B]].mean - (mean_a - mean_b)) < 4 * se  # unbiased within its SE
    # paired by completion, the variance of the difference is far below that of independent draws, var_a + var_b
    # (exact; measured 0.17 against 0.95)
    assert se**2 * m < 0.5 * (var_a + var_b)
    assert se < math.hypot(d.values[at[A]].se, d.values[at[B]].se) / 2


def context_free_lm() -> GPT2LMHeadModel:
    """An LM whose next-token distribution is the same after every context: all weights zero but the final layer
    norm's bias and the output layer, so every hidden state is that bias."""
    torch.manual_seed(0)
    cfg = GPT2Config(
        n_layer=1, n_embd=8, n_head=2, n_positions=16, vocab_size=len(TOK), pad_token_id=0, eos_token_id=EOS,
        bos_token_id=EOS, tie_word_embeddings=False,
    )  # fmt: skip
    model = GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.transformer.ln_f.bias.normal_(0, 1.0)
        model.lm_head.weight.normal_(0, 1.0)
    return model


def test_completion_j_of_every_candidate_draws_the_same_tokens():
    # with a context-free LM, common random numbers make completion j the same sequence after every candidate, so
    # the candidates' rewards (additive in the tokens) differ by their own token's reward alone, in every completion
    lm = context_free_lm()
    (d,) = decision_values(lm, TOK, [state([A])], text_reward, k=3, m=50, seed=0, max_new_tokens=6)
    own = {A: 1.0, B: -0.5}
    (i, vi), (j, vj) = [(x, v) for x, v in enumerate(d.tokens) if v != EOS]
    assert d.values[i].mean - d.values[j].mean == pytest.approx(own[vi] - own[vj])
    assert d.values[i].se > 0.02  # the completions themselves vary
    # 'a' is the best candidate; paired with it, b's difference is the same in every completion: SE 0
    assert max(d.means) == d.values[d.tokens.index(A)].mean
    assert d.se_diff[d.tokens.index(B)] == pytest.approx(0.0, abs=1e-12)


def test_states_are_cuts_of_reference_responses_and_do_not_depend_on_the_batch(tokenizer):
    lm = make_lm(tokenizer)
    prompts = [{"id": "x", "prompt": "good movie"}, {"id": "y", "prompt": "bad plot"}, {"id": "z", "prompt": "fine"}]
    states = draw_states(lm, tokenizer, prompts, n_states=7, seed=4, max_new_tokens=8)
    assert draw_states(lm, tokenizer, prompts, n_states=7, seed=4, max_new_tokens=8, batch_size=2) == states
    assert [s.key for s in states] == ["x/0", "y/0", "z/0", "x/1", "y/1", "z/1", "x/2"]
    assert draw_states(lm, tokenizer, prompts, n_states=7, seed=5, max_new_tokens=8) != states
    for s in states:
        assert s.prompt_ids == tuple(encode_prompt(tokenizer, s.prompt))
        assert len(s.prefix) < 8 and tokenizer.eos_token_id not in s.prefix
    assert len({len(s.prefix) for s in states}) > 1  # the cuts vary
    with pytest.raises(ConfigError, match="share ids"):
        draw_states(lm, tokenizer, [prompts[0], prompts[0]], 2)


def test_candidate_scores_equal_scoring_each_sequence_from_scratch(tokenizer):
    lm, rm = make_lm(tokenizer), make_rm(tokenizer)
    prompts = [{"id": str(i), "prompt": p} for i, p in enumerate(["good movie", "bad plot but fine", "dull"])]
    states = draw_states(lm, tokenizer, prompts, n_states=6, seed=0, max_new_tokens=6)
    decisions = decision_values(lm, tokenizer, states, lambda p, r, c: torch.zeros(len(p)), k=4, m=2, max_new_tokens=6)
    rows = [[*d.state.prompt_ids, *d.state.prefix, v] for d in decisions for v in d.tokens]
    ids, mask = pad_batch(rows, tokenizer.pad_token_id, side="right")
    want = sequence_rewards(rm, ids, mask).double().reshape(len(decisions), 4)
    for scorer in (CachedCausalScorer(rm), TextScorer(ModelReward(rm, tokenizer), tokenizer)):
        got = candidate_scores(scorer, tokenizer, decisions, batch_size=2)
        assert got.shape == (6, 4)
        assert torch.allclose(got, want, atol=1e-5)
    assert any(d.state.prefix for d in decisions) and decode_response(tokenizer, decisions[0].tokens)


def test_states_without_a_decision_are_rejected():
    with pytest.raises(ConfigError, match="already ends the response"):
        decision_values(LM, TOK, [state([A, EOS])], text_reward, k=3, m=2, max_new_tokens=5)
    with pytest.raises(ConfigError, match="fills max_new_tokens"):
        decision_values(LM, TOK, [state([A, A])], text_reward, k=3, m=2, max_new_tokens=2)
    with pytest.raises(ConfigError, match="do not fit a vocabulary"):
        decision_values(LM, TOK, [state([A])], text_reward, k=4, m=2, max_new_tokens=5)
