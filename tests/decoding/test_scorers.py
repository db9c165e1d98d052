"""Every scorer gives the rewards of scoring each candidate sequence from scratch, over a whole decode."""

import copy

import pytest
import torch
from transformers import (
    AutoModelForSequenceClassification,
    GPTNeoConfig,
    GPTNeoForSequenceClassification,
    LlamaConfig,
    LlamaForSequenceClassification,
    MistralConfig,
    MistralForSequenceClassification,
)

from pargs.decoding.build import RewardSpec, build_scorer
from pargs.decoding.cached_scorer import CachedCausalScorer
from pargs.decoding.engine import encode_prompts
from pargs.decoding.scorer import Responses
from pargs.decoding.stream import why_no_candidate_chunks
from pargs.decoding.text_reward import ModelReward, OracleReward
from pargs.decoding.text_scorer import TextScorer
from pargs.errors import ConfigError
from pargs.models.encoding import decode_response, encode_prompt, encode_response
from pargs.models.loading import ModelSpec, load_tokenizer
from pargs.models.reward_model import sequence_rewards
from pargs.tasks.synthetic import oracle_reward
from tests.conftest import make_rm

PROMPTS = [
    "write a review of the hotel about the staff :",
    "write a short review of the phone about the price :",
    "write a detailed review of the book about the story :",
]  # different lengths: real left padding


def _from_scratch(rm, tokenizer, prompt, prefix, candidates):
    seqs = torch.tensor([encode_prompt(tokenizer, prompt) + prefix + [v] for v in candidates])
    return sequence_rewards(rm, seqs, torch.ones_like(seqs))


def _walk(scorer, tokenizer, reference, steps=8, k=6):
    """Drive ``scorer`` through a decode with random candidates and choices; compare every step."""
    g = torch.Generator().manual_seed(0)
    ids, mask = encode_prompts(tokenizer, PROMPTS)
    scorer.begin(PROMPTS, ids, mask)
    rows, prefixes = list(range(len(PROMPTS))), [[] for _ in PROMPTS]
    words = [i for i in range(3, len(tokenizer))]
    for step in range(steps):
        cand = torch.tensor([[words[int(j)] for j in torch.randint(len(words), (k,), generator=g)] for _ in rows])
        if step == 5:
            cand[0, 1] = tokenizer.eos_token_id  # an EOS candidate: the complete response is scored
        got = scorer.score_candidates(cand)
        for i, row in enumerate(rows):
            expected = reference(PROMPTS[row], prefixes[row], cand[i].tolist())
            torch.testing.assert_close(got[i].double(), expected.double(), atol=1e-5, rtol=1e-5)
        chosen = torch.randint(k, (len(rows),), generator=g)
        tokens = cand.gather(1, chosen.unsqueeze(1)).squeeze(1)
        scorer.advance(chosen, tokens)
        for i, row in enumerate(rows):
            prefixes[row].append(int(tokens[i]))
        if step == 3:  # the middle row finishes and leaves the batch
            keep = torch.tensor([0, 2])
            scorer.keep_rows(keep)
            rows = [rows[i] for i in keep.tolist()]


def test_cached_scorer_equals_from_scratch(rm, tokenizer):
    _walk(CachedCausalScorer(rm), tokenizer, lambda p, prefix, c: _from_scratch(rm, tokenizer, p, prefix, c))


def _decoder_rm(tokenizer, config_cls, model_cls, **kw):
    """A tiny rotary / grouped-query-attention decoder RM (not GPT-2), score head widened like conftest's."""
    torch.manual_seed(3)
    config = config_cls(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=96,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **kw,
    )
    model = model_cls(config).eval()
    with torch.no_grad():
        model.score.weight.normal_(0, 1.0)
    return model


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_cached_scorer_with_a_llama_rm_equals_from_scratch(tokenizer, attention):
    """Eager attention adds the mask to the scores, so a boolean candidate mask would mask nothing there."""
    rm = _decoder_rm(tokenizer, LlamaConfig, LlamaForSequenceClassification, attn_implementation=attention)
    assert rm.config._attn_implementation == attention
    _walk(CachedCausalScorer(rm), tokenizer, lambda p, prefix, c: _from_scratch(rm, tokenizer, p, prefix, c))


def test_cached_scorer_with_eager_gpt2_equals_from_scratch(tokenizer):
    rm = make_rm(tokenizer, attn_implementation="eager")
    assert rm.config._attn_implementation == "eager"
    _walk(CachedCausalScorer(rm), tokenizer, lambda p, prefix, c: _from_scratch(rm, tokenizer, p, prefix, c))


def _windowed_mistral(tokenizer):
    return _decoder_rm(tokenizer, MistralConfig, MistralForSequenceClassification, sliding_window=4)


def _windowed_gpt_neo(tokenizer):
    """GPT-Neo's local layers keep their window in the attention module, not in the cache layer types."""
    torch.manual_seed(3)
    config = GPTNeoConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_layers=2,
        num_heads=4,
        attention_types=[[["global", "local"], 1]],
        window_size=4,
        max_position_embeddings=96,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return GPTNeoForSequenceClassification(config).eval()


@pytest.mark.parametrize("build", [_windowed_mistral, _windowed_gpt_neo], ids=["mistral", "gpt-neo"])
def test_a_windowed_rm_is_scored_on_the_text_path(tokenizer, build):
    """The cached scorer's candidate mask sees the whole prefix, so a windowed RM must not get it."""
    rm = build(tokenizer)
    with pytest.raises(ConfigError, match="cannot use the cached scorer: it has .*(sliding-window|local)"):
        CachedCausalScorer(rm)
    with pytest.raises(ConfigError, match="cannot use the cached scorer"):
        build_scorer(RewardSpec(model=ModelSpec(path="in-memory"), mode="cached"), rm, tokenizer, tokenizer)
    scorer = build_scorer(RewardSpec(model=ModelSpec(path="in-memory")), rm, tokenizer, tokenizer)
    assert isinstance(scorer, TextScorer)  # auto mode falls back to the text path, which is exact
    _walk(scorer, tokenizer, lambda p, prefix, c: _from_scratch(rm, tokenizer, p, prefix, c))


def test_attention_that_ignores_custom_masks_is_refused(rm):
    config = copy.deepcopy(rm.config)
    config._attn_implementation = "flash_attention_2"
    assert "ignores custom 4D masks" in why_no_candidate_chunks(config)
    assert why_no_candidate_chunks(rm.config) is None


def test_text_scorer_with_a_reward_model_equals_from_scratch(rm, tokenizer):
    _walk(
        TextScorer(ModelReward(rm, tokenizer), tokenizer),
        tokenizer,
        lambda p, prefix, c: _from_scratch(rm, tokenizer, p, prefix, c),
    )


def test_text_scorer_with_an_encoder_rm_of_another_tokenizer_equals_from_scratch(tokenizer, encoder_dir):
    """The general path: candidates detokenized with the policy's tokenizer, re-encoded with the RM's own."""
    rm = AutoModelForSequenceClassification.from_pretrained(encoder_dir).eval()
    rm_tok = load_tokenizer(ModelSpec(path=str(encoder_dir)))
    assert rm_tok.convert_tokens_to_ids("staff") != tokenizer.convert_tokens_to_ids("staff")  # ids do differ

    def reference(prompt, prefix, candidates):
        rows = []
        for v in candidates:
            text = decode_response(tokenizer, prefix + [v])
            complete = v == tokenizer.eos_token_id
            rows.append(encode_prompt(rm_tok, prompt) + encode_response(rm_tok, text, add_eos=complete))
        return torch.cat(
            [sequence_rewards(rm, torch.tensor([r]), torch.ones(1, len(r), dtype=torch.long)) for r in rows]
        )

    _walk(TextScorer(ModelReward(rm, rm_tok), tokenizer), tokenizer, reference)


def test_text_scorer_with_the_oracle_equals_the_oracle_on_the_text(tokenizer):
    def reference(prompt, prefix, candidates):
        return torch.tensor([oracle_reward(prompt, decode_response(tokenizer, prefix + [v])) for v in candidates])

    _walk(TextScorer(OracleReward(), tokenizer), tokenizer, reference)


@pytest.mark.parametrize("kind", ["cached", "text"])
def test_whole_responses_score_like_sequences(rm, tokenizer, kind):
    ids, mask = encode_prompts(tokenizer, PROMPTS)
    responses = [
        [tokenizer.convert_tokens_to_ids(w) for w in text.split()]
        for text in ("the staff was great .", "it was bad", "the story was dull but the cover was nice .")
    ]
    responses[0].append(tokenizer.eos_token_id)
    complete = [True, False, False]
    texts = [decode_response(tokenizer, r) for r in responses]
    scorer = CachedCausalScorer(rm) if kind == "cached" else TextScorer(ModelReward(rm, tokenizer), tokenizer)
    got = scorer.score_responses(Responses(PROMPTS, ids, mask, responses, texts, complete))
    expected = torch.cat([_from_scratch(rm, tokenizer, p, r[:-1], r[-1:]) for p, r in zip(PROMPTS, responses)])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
