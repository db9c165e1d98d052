"""The Monte Carlo prefix values against exact expectations over every completion of a tiny LM."""

import math

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from pargs.errors import ConfigError
from pargs.metrics.prefix_values import GroundTruth, Prefix, monte_carlo_values, prefix_values
from pargs.tasks.word_tokenizer import build_word_tokenizer

TOK = build_word_tokenizer(["a", "b"])  # <pad> 0, <unk> 1, <eos> 2, a 3, b 4
EOS, A, B = 2, 3, 4


def tiny_lm(seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    cfg = GPT2Config(
        n_layer=1,
        n_embd=8,
        n_head=2,
        n_positions=16,
        vocab_size=len(TOK),
        pad_token_id=0,
        eos_token_id=EOS,
        bos_token_id=EOS,
        tie_word_embeddings=False,
    )
    model = GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():  # an output layer large enough that next-token distributions are far from uniform
        model.lm_head.weight.normal_(0, 0.5)
    return model


LM = tiny_lm()


def text_reward(prompts, responses, complete):
    """A reward of the text: +1 per 'a', -0.5 per 'b', +1.5 when finished with EOS, -1 when cut off."""
    return torch.tensor(
        [r.split().count("a") - 0.5 * r.split().count("b") + (1.5 if c else -1.0) for r, c in zip(responses, complete)]
    )


def _next_probs(ids: list[int], uniform: bool) -> dict[int, float]:
    """pi_ref(. | ids) from a full forward pass (no cache), padding and unknown excluded as the decoder does."""
    if uniform:
        return {t: 1 / 3 for t in (EOS, A, B)}
    with torch.no_grad():
        logits = LM(torch.tensor([ids])).logits[0, -1].double()
    probs = torch.softmax(logits[[EOS, A, B]], dim=0)
    return dict(zip((EOS, A, B), probs.tolist()))


def exact_moments(prompt_ids: list[int], prefix: list[int], budget: int, uniform: bool = False) -> tuple[float, float]:
    """Mean and variance of the reward over every completion of at most ``budget`` tokens, by enumeration."""
    leaves = []  # (probability, response ids, complete)

    def walk(response: list[int], prob: float, left: int) -> None:
        if left == 0:
            leaves.append((prob, response, False))
            return
        for tok, p in _next_probs(prompt_ids + response, uniform).items():
            if tok == EOS:
                leaves.append((prob * p, response + [tok], True))
            else:
                walk(response + [tok], prob * p, left - 1)

    walk(list(prefix), 1.0, budget)
    assert math.isclose(sum(p for p, _, _ in leaves), 1.0)
    texts = [TOK.decode(r, skip_special_tokens=True) for _, r, _ in leaves]
    rewards = text_reward(None, texts, [c for _, _, c in leaves]).double().tolist()
    mean = sum(p * r for (p, _, _), r in zip(leaves, rewards))
    return mean, sum(p * (r - mean) ** 2 for (p, _, _), r in zip(leaves, rewards))


def test_mean_and_se_match_the_exact_expectation():
    prompt, prefix, m = [A, B], [B], 2000
    mean, var = exact_moments(prompt, prefix, budget=3)
    sd = math.sqrt(var / m)
    # the test can tell pi_ref from another sampling rule: uniform sampling has a far-off expectation
    assert abs(exact_moments(prompt, prefix, budget=3, uniform=True)[0] - mean) > 10 * sd
    (value,) = monte_carlo_values(
        LM, TOK, [Prefix("a b", tuple(prompt), tuple(prefix), ("p",))], text_reward, m=m, seed=1, max_new_tokens=1 + 3
    )
    assert value.n == m
    assert abs(value.mean - mean) < 4 * sd
    assert value.se == pytest.approx(sd, rel=0.15)  # the SE estimate itself varies by about 3 % at m = 2000
    assert 0 < value.truncated < m  # some completions run into the budget, and are scored as unfinished


def test_complete_prefixes_and_full_budgets_are_scored_as_they_are():
    done = Prefix("a b", (A, B), (A, B, EOS), ("done",))
    full = Prefix("a b", (A, B), (A, A, B, B), ("full",))  # max_new_tokens = 4 leaves no room
    got = monte_carlo_values(LM, TOK, [done, full], text_reward, m=8, max_new_tokens=4)
    assert got[0].mean == pytest.approx(1 - 0.5 + 1.5) and (got[0].se, got[0].n) == (0.0, 0)
    assert got[1].mean == pytest.approx(2 - 1 - 1.0) and (got[1].se, got[1].n) == (0.0, 0)


def test_estimates_depend_on_the_seed_only():
    prefixes = [Prefix("a b", (A, B), (B,), ("x",)), Prefix("a", (A,), (A, A), ("y",))]
    one = monte_carlo_values(LM, TOK, prefixes, text_reward, m=40, seed=5, max_new_tokens=6, batch_size=7)
    other = monte_carlo_values(LM, TOK, prefixes[::-1], text_reward, m=40, seed=5, max_new_tokens=6, batch_size=512)
    assert one == other[::-1]
    assert monte_carlo_values(LM, TOK, prefixes, text_reward, m=40, seed=6, max_new_tokens=6) != one


def test_prefix_values_of_a_pair_against_exact_expectations():
    # chosen "b a" -> [b, a, eos] (3 tokens), rejected "b b a" -> [b, b, a, eos] (4): L = 4 (rule "longest")
    pair = {"id": "p0", "prompt": "a b", "chosen": "b a", "rejected": "b b a"}
    m, budget = 1000, 5
    gt = prefix_values(LM, TOK, [pair], m=m, seed=2, reward=text_reward, max_new_tokens=budget)
    by_fraction = {c.fraction: c for c in gt.comparisons}
    assert [(c.length_w, c.length_l) for c in gt.comparisons] == [(1, 1), (2, 2), (3, 3), (3, 4)]
    # 25 %: both prefixes are "b": one estimate, a tie
    c = by_fraction[0.25]
    assert c.chosen is c.rejected and (c.preferred, c.z) == (0, 0.0)
    # 50 %: "b a" vs "b b", and 75 %: the whole chosen response vs "b b a"
    for f, w, lo in ((0.5, [B, A], [B, B]), (0.75, [B, A, EOS], [B, B, A])):
        c = by_fraction[f]
        for value, prefix in ((c.chosen, w), (c.rejected, lo)):
            if prefix[-1] == EOS:
                assert value.n == 0 and value.mean == pytest.approx(1 - 0.5 + 1.5)
                continue
            mean, var = exact_moments([A, B], prefix, budget - len(prefix))
            assert abs(value.mean - mean) < 4 * math.sqrt(var / m)
        exact_diff = (
            c.chosen.mean if c.chosen.n == 0 else exact_moments([A, B], w, budget - len(w))[0]
        ) - exact_moments([A, B], lo, budget - len(lo))[0]
        assert c.preferred == (1 if exact_diff > 0 else -1)
    # 100 %: both complete: exact rewards, an infinitely confident call
    c = by_fraction[1.0]
    assert (c.chosen.mean, c.rejected.mean) == pytest.approx((2.0, 1.5)) and c.z == math.inf
    assert GroundTruth.from_dict(gt.to_dict()) == gt
    assert set(gt.mean_se()) == {0.25, 0.5, 0.75, 1.0} and math.isnan(gt.mean_se()[1.0])


def test_bad_setups_are_rejected_with_a_reason():
    prefix = Prefix("a b", (A, B), (B,), ("x",))
    with pytest.raises(ConfigError, match="does not encode back"):  # "a bb": the decoder would read <unk>
        monte_carlo_values(LM, TOK, [prefix], text_reward, m=2, max_new_tokens=4, join="")
    with pytest.raises(ConfigError, match="do not fit the policy's context of 16"):
        monte_carlo_values(LM, TOK, [prefix], text_reward, m=2, max_new_tokens=32)
    with pytest.raises(ConfigError, match="m .* must be >= 2"):
        monte_carlo_values(LM, TOK, [], text_reward, m=1)
