"""Decoding invariants, checked against independent computations (a slow reference decoder, exact
probabilities), for every method and both scorers."""

import math

import pytest
import torch

from pargs.decoding.cached_scorer import CachedCausalScorer
from pargs.decoding.engine import generate
from pargs.decoding.methods import DecodeMethod, preset
from pargs.decoding.noise import stable_seed
from pargs.decoding.text_reward import ModelReward
from pargs.decoding.text_scorer import TextScorer
from pargs.models.encoding import encode_prompt
from tests.decoding.reference_decoder import reference_guided_decode

PROMPTS = [
    "write a review of the hotel about the staff :",
    "write a short review of the phone about the price :",
    "write a detailed review of the movie about the plot :",
    "write a review of the gym about the showers :",
]
SCORERS = ["cached", "text"]


def _scorer(kind, rm, tokenizer):
    return CachedCausalScorer(rm) if kind == "cached" else TextScorer(ModelReward(rm, tokenizer), tokenizer)


def _seeds(n, salt="x"):
    return torch.tensor([stable_seed(0, i, salt) for i in range(n)])


def _greedy_reference(lm, tokenizer, prompt, max_new_tokens):
    ids = encode_prompt(tokenizer, prompt)
    out = []
    for _ in range(max_new_tokens):
        logits = lm(input_ids=torch.tensor([ids + out])).logits[0, -1]
        logits[[tokenizer.pad_token_id, tokenizer.unk_token_id]] = float("-inf")
        out.append(int(logits.argmax()))
        if out[-1] == tokenizer.eos_token_id:
            break
    return out


@pytest.mark.parametrize("scorer_kind", SCORERS)
def test_k1_guided_is_greedy_decoding_of_the_reference_lm(lm, rm, tokenizer, scorer_kind):
    method = DecodeMethod("k1", kind="guided", k=1, beta=5.0, greedy=False, scorer="rm")
    gen = generate(
        lm, tokenizer, PROMPTS, method, _seeds(4), scorer=_scorer(scorer_kind, rm, tokenizer), max_new_tokens=10
    )
    assert gen.token_ids == [_greedy_reference(lm, tokenizer, p, 10) for p in PROMPTS]


@pytest.mark.parametrize("scorer_kind", SCORERS)
def test_pargs_g_with_beta_zero_is_greedy(lm, rm, tokenizer, scorer_kind):
    gen = generate(
        lm,
        tokenizer,
        PROMPTS,
        preset("pargs-g", scorer="rm", beta=0.0),
        _seeds(4),
        scorer=_scorer(scorer_kind, rm, tokenizer),
        max_new_tokens=10,
    )
    assert gen.token_ids == [_greedy_reference(lm, tokenizer, p, 10) for p in PROMPTS]


@pytest.mark.parametrize("greedy", [True, False])
@pytest.mark.parametrize("scorer_kind", SCORERS)
def test_guided_decoding_matches_the_slow_reference(lm, rm, tokenizer, scorer_kind, greedy):
    seeds = _seeds(4)
    method = DecodeMethod("pargs", kind="guided", k=5, beta=2.0, greedy=greedy, scorer="rm")
    gen = generate(lm, tokenizer, PROMPTS, method, seeds, scorer=_scorer(scorer_kind, rm, tokenizer), max_new_tokens=12)
    expected = [
        reference_guided_decode(lm, rm, tokenizer, p, int(s), 5, 2.0, greedy, 12) for p, s in zip(PROMPTS, seeds)
    ]
    assert gen.token_ids == expected
    assert len({tuple(t) for t in gen.token_ids}) > 1  # not a degenerate case


def test_pargs_with_beta_zero_draws_exactly_what_top_k_sampling_draws(lm, rm, tokenizer):
    seeds = _seeds(4)
    top_k = generate(lm, tokenizer, PROMPTS, preset("top-k"), seeds, max_new_tokens=12)
    pargs0 = generate(
        lm,
        tokenizer,
        PROMPTS,
        preset("pargs", scorer="rm", beta=0.0),
        seeds,
        scorer=CachedCausalScorer(rm),
        max_new_tokens=12,
    )
    assert pargs0.token_ids == top_k.token_ids


@pytest.mark.parametrize("method_name", ["top-k", "pargs-beta0"])
def test_first_token_distribution_is_the_top_k_softmax(lm, rm, tokenizer, method_name):
    """Over many seeds, the first token's frequencies match softmax over the reference LM's top 10."""
    prompt = PROMPTS[0]
    logits = lm(input_ids=torch.tensor([encode_prompt(tokenizer, prompt)])).logits[0, -1]
    logits[[tokenizer.pad_token_id, tokenizer.unk_token_id]] = float("-inf")
    top, ids = logits.topk(10)
    probs = dict(zip(ids.tolist(), top.softmax(-1).tolist()))
    n = 4000
    if method_name == "top-k":
        method, scorer = preset("top-k"), None
    else:
        method, scorer = preset("pargs", scorer="rm", beta=0.0), CachedCausalScorer(rm)
    gen = generate(lm, tokenizer, [prompt] * n, method, _seeds(n, "dist"), scorer=scorer, max_new_tokens=1)
    counts = {}
    for t in gen.token_ids:
        counts[t[0]] = counts.get(t[0], 0) + 1
    assert set(counts) <= set(probs)
    chi2 = sum((counts.get(t, 0) - n * p) ** 2 / (n * p) for t, p in probs.items())
    assert chi2 < 27.9  # chi-square, 9 degrees of freedom, p = 0.001


@pytest.mark.parametrize(
    "method,scorer_kind",
    [
        (preset("greedy"), "cached"),
        (preset("top-k"), "cached"),
        (DecodeMethod("nucleus", top_p=0.7, temperature=0.8), "cached"),
        *(
            (m, kind)
            for kind in SCORERS
            for m in (
                preset("args", scorer="rm"),
                preset("pargs", scorer="rm"),
                preset("pargs-g", scorer="rm"),
                DecodeMethod("bon", kind="best_of_n", n=3, top_k=10, scorer="rm"),
            )
        ),
    ],
    ids=lambda x: x.name if isinstance(x, DecodeMethod) else x,
)
def test_results_do_not_depend_on_batch_size(lm, rm, tokenizer, method, scorer_kind):
    seeds = _seeds(4)
    whole = generate(
        lm, tokenizer, PROMPTS, method, seeds, scorer=_scorer(scorer_kind, rm, tokenizer), max_new_tokens=12
    )
    one_by_one = [
        generate(
            lm, tokenizer, [p], method, seeds[i : i + 1], scorer=_scorer(scorer_kind, rm, tokenizer), max_new_tokens=12
        )
        for i, p in enumerate(PROMPTS)
    ]
    assert whole.token_ids == [g.token_ids[0] for g in one_by_one]
    reordered = generate(
        lm,
        tokenizer,
        PROMPTS[::-1],
        method,
        seeds.flip(0),
        scorer=_scorer(scorer_kind, rm, tokenizer),
        max_new_tokens=12,
    )
    assert reordered.token_ids[::-1] == whole.token_ids


@pytest.mark.parametrize("scorer_kind", SCORERS)
def test_best_of_n_returns_the_candidate_the_reward_model_prefers(lm, rm, tokenizer, scorer_kind):
    from pargs.decoding.noise import child_seeds

    seeds = _seeds(2)
    n = 4
    bon = generate(
        lm,
        tokenizer,
        PROMPTS[:2],
        DecodeMethod("bon", kind="best_of_n", n=n, top_k=10, scorer="rm"),
        seeds,
        scorer=_scorer(scorer_kind, rm, tokenizer),
        max_new_tokens=10,
    )
    # the n candidates are top-k samples with the child seeds; score each one independently
    cands = generate(
        lm,
        tokenizer,
        [p for p in PROMPTS[:2] for _ in range(n)],
        preset("top-k"),
        child_seeds(seeds, n),
        max_new_tokens=10,
    )
    reward = ModelReward(rm, tokenizer)
    scores = reward([p for p in PROMPTS[:2] for _ in range(n)], cands.texts, cands.complete).view(2, n)
    for i in range(2):
        best = int(scores[i].argmax())
        assert bon.token_ids[i] == cands.token_ids[i * n + best]
        assert bon.scores[i].item() == pytest.approx(scores[i].max().item(), abs=1e-5)


def test_stopping_per_row(lm, tokenizer):
    gen = generate(lm, tokenizer, PROMPTS, preset("top-k"), _seeds(4), max_new_tokens=7, stop_strings=["was"])
    for ids, text, reason in zip(gen.token_ids, gen.texts, gen.stop_reasons):
        assert len(ids) <= 7
        if reason == "stop":
            assert text.endswith("was")
        elif reason == "eos":
            assert ids[-1] == tokenizer.eos_token_id
        else:
            assert len(ids) == 7 and "was" not in text


def test_bad_parameters_fail_with_the_field_named(lm, tokenizer):
    with pytest.raises(ValueError, match="beta"):
        DecodeMethod("x", kind="guided", beta=-1.0, scorer="rm")
    with pytest.raises(ValueError, match="beta"):
        DecodeMethod("x", kind="guided", beta=math.inf, scorer="rm")
    with pytest.raises(ValueError, match="larger than the vocabulary"):
        generate(
            lm,
            tokenizer,
            PROMPTS[:1],
            DecodeMethod("x", kind="guided", k=10_000, scorer="rm"),
            _seeds(1),
            scorer=object(),
            max_new_tokens=2,
        )
    with pytest.raises(ValueError, match="max_prompt_length"):
        generate(lm, tokenizer, PROMPTS[:1], preset("greedy"), _seeds(1), max_new_tokens=2, max_prompt_length=3)
