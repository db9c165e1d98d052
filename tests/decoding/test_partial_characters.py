"""The text path with byte-level BPE: tokens that hold part of a multibyte character (emoji, CJK, accents).

A byte-level BPE tokenizer is trained here on a small multibyte corpus. A reward model sharing the
policy's vocabulary must read the generated ids (compared with scoring them from scratch); one with
another tokenizer must read the text up to the last finished character (compared with the bytes of
the tokens, learnt from the tokenizer's own pre-tokenizer, and Python's UTF-8 decoder); guided decoding
through the text path must pick the tokens the cached scorer picks.
"""

import functools

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

from pargs.decoding.build import RewardSpec, build_scorer
from pargs.decoding.cached_scorer import CachedCausalScorer
from pargs.decoding.engine import encode_prompts, generate
from pargs.decoding.methods import preset
from pargs.decoding.noise import stable_seed
from pargs.decoding.scorer import Responses
from pargs.decoding.text_reward import ModelReward
from pargs.decoding.text_scorer import TextScorer
from pargs.models.encoding import decode_response, encode_prompt, encode_response
from pargs.models.loading import ModelSpec
from pargs.models.reward_model import sequence_rewards
from tests.conftest import make_lm, make_rm

CORPUS = [
    "the café serves crème brûlée and a naïve résumé 😀 at 5 €",
    "東京の日本語 text with 🎉 emoji and 中文 characters 👍",
    "über straße, señor, façade ✓ 😀 東京 café",
    "a review of the hotel: the staff was great 🎉 and the room was clean",
]
PROMPTS = ["a review of the café 😀 :", "東京 hotel, 5 € ✓ :", "a naïve résumé of 中文 :"]
TARGETS = ["😀 日本 café ✓ €", "中文 € ✓ naïve 🎉", "🎉🎉 über 東京 👍"]  # responses walked token by token
UNFINISHED = "\ufffd"
SPEC = ModelSpec(path="in-memory")  # the models themselves are passed to build_scorer


def byte_level_bpe(vocab_size: int) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        special_tokens=["<|endoftext|>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS * 10, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>", pad_token="<pad>"
    )


@pytest.fixture(scope="module")
def bpe():
    return byte_level_bpe(320)


@pytest.fixture(scope="module")
def other_bpe():
    """Another byte-level BPE (fewer merges): a reward model's own tokenizer, with other ids."""
    return byte_level_bpe(290)


def reference_bytes(tokenizer):
    """token id -> the bytes it stands for, learnt by pre-tokenizing single characters that cover every
    byte of UTF-8 text (special tokens stand for nothing; ids outside the table are left out)."""
    chars = [chr(c) for c in range(0x800)]  # 1 and 2 bytes: every continuation byte and the leads C2-DF
    chars += [chr(max(0x800, 0x1000 * i)) for i in range(16)]  # leads E0-EF
    chars += [chr(c) for c in (0x10000, 0x40000, 0x80000, 0xC0000, 0x100000)]  # leads F0-F4
    byte_of = {}
    for c in chars:
        spelled = "".join(piece for piece, _ in tokenizer.backend_tokenizer.pre_tokenizer.pre_tokenize_str(c))
        assert len(spelled) == len(c.encode())
        byte_of.update(zip(spelled, c.encode()))
    table = {i: b"" for i in tokenizer.all_special_ids}
    for token, i in tokenizer.get_vocab().items():
        if i not in table and all(ch in byte_of for ch in token):
            table[i] = bytes(byte_of[ch] for ch in token)
    return table


def _decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@functools.cache
def _finishable(rest: bytes) -> bool:
    """Whether appending continuation bytes can make ``rest`` a character."""
    return any(_decodes(rest + bytes([c]) * m) for c in range(0x80, 0xC0) for m in (1, 2, 3))


def finished(data: bytes) -> str | None:
    """The longest prefix of ``data`` that is whole UTF-8 characters, when what follows it (at most 3 bytes)
    can still become a character; None when ``data`` holds bytes that no continuation could finish."""
    for cut in range(len(data), max(-1, len(data) - 4), -1):
        if _decodes(data[:cut]) and (cut == len(data) or _finishable(data[cut:])):
            return data[:cut].decode("utf-8")
    return None


def from_scratch(rm, ids_rows):
    return torch.cat(
        [sequence_rewards(rm, torch.tensor([r]), torch.ones(1, len(r), dtype=torch.long)) for r in ids_rows]
    )


def walk(scorer, tokenizer, reference, k=6, steps=8):
    """Drive ``scorer`` along TARGETS (the true next token is always a candidate and always chosen); the
    other candidates are random tokens that leave no bytes that could never become a character. Returns
    how many candidates ended inside a character."""
    table = reference_bytes(tokenizer)
    g = torch.Generator().manual_seed(0)
    ids, mask = encode_prompts(tokenizer, PROMPTS)
    scorer.begin(PROMPTS, ids, mask)
    targets = [encode_response(tokenizer, t, add_eos=False) for t in TARGETS]
    assert min(map(len, targets)) > steps
    rows, unfinished = [0, 1, 2], 0
    for step in range(steps):
        cands = []
        for row in rows:
            prefix = targets[row][:step]
            data = b"".join(table[t] for t in prefix)
            pool = [
                v
                for v in table
                if v not in tokenizer.all_special_ids
                and v != targets[row][step]
                and finished(data + table[v]) is not None
            ]
            picks = torch.randperm(len(pool), generator=g)[: k - 1].tolist()
            cands.append([targets[row][step]] + [pool[j] for j in picks])
            unfinished += sum(
                finished(data + table[v]) != (data + table[v]).decode("utf-8", "replace") for v in cands[-1]
            )
        if step == 5:
            cands[0][1] = tokenizer.eos_token_id  # an EOS candidate: the complete response is scored
        got = scorer.score_candidates(torch.tensor(cands))
        for i, row in enumerate(rows):
            expected = reference(PROMPTS[row], targets[row][:step], cands[i])
            torch.testing.assert_close(got[i].double(), expected.double(), atol=1e-5, rtol=1e-5)
        scorer.advance(torch.zeros(len(rows), dtype=torch.long), torch.tensor([targets[r][step] for r in rows]))
        if step == 3:  # the middle row finishes and leaves the batch
            scorer.keep_rows(torch.tensor([0, 2]))
            rows = [0, 2]
    return unfinished


def encoder_rm(tokenizer):
    torch.manual_seed(5)
    cfg = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=96,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = BertForSequenceClassification(cfg).eval()
    with torch.no_grad():
        model.classifier.weight.normal_(0, 5.0)
    return model


@pytest.mark.parametrize("how", ["text scorer", "mode text", "encoder, auto"])
def test_a_reward_model_sharing_the_vocabulary_reads_the_ids(bpe, how):
    """Fails before the ids way: the text path re-encoded the decoded text, whose U+FFFD are other ids."""
    rm = encoder_rm(bpe) if how.startswith("encoder") else make_rm(bpe)
    if how == "text scorer":
        scorer = TextScorer(ModelReward(rm, bpe), bpe)
    else:
        scorer = build_scorer(RewardSpec(model=SPEC, mode="text" if how == "mode text" else "auto"), rm, bpe, bpe)
    assert isinstance(scorer, TextScorer) and scorer.reads_ids

    def reference(prompt, prefix, candidates):
        return from_scratch(rm, [encode_prompt(bpe, prompt) + prefix + [v] for v in candidates])

    assert walk(scorer, bpe, reference) > 5  # candidates ending inside a character were scored


class SpyReward(ModelReward):
    """A ModelReward that keeps every response text it is asked to score."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen = []

    def __call__(self, prompts, responses, complete=None):
        self.seen.extend(responses)
        return super().__call__(prompts, responses, complete)


def test_a_reward_model_with_another_tokenizer_reads_finished_characters(bpe, other_bpe):
    """The RM never sees the U+FFFD of an unfinished character; a candidate that finishes no character
    gets its prefix's reward. Fails before the fix: the texts ended in U+FFFD."""
    rm = make_rm(other_bpe)
    built = build_scorer(RewardSpec(model=SPEC, mode="auto"), rm, other_bpe, bpe)
    assert isinstance(built, TextScorer) and not built.reads_ids  # the vocabularies differ
    reward = SpyReward(rm, other_bpe)
    scorer = TextScorer(reward, bpe)
    table = reference_bytes(bpe)
    held_back = []

    def reference(prompt, prefix, candidates):
        data = b"".join(table[t] for t in prefix)
        rows = []
        for v in candidates:
            text = finished(data + table[v])
            if text == finished(data) and v != bpe.eos_token_id:
                held_back.append(v)  # finishes no character: scored as the prefix's text, i.e. its reward
            rows.append(
                encode_prompt(other_bpe, prompt) + encode_response(other_bpe, text, add_eos=v == bpe.eos_token_id)
            )
        return from_scratch(rm, rows)

    assert walk(scorer, bpe, reference) > 5
    assert len(held_back) > 5
    assert reward.seen and not any(UNFINISHED in text for text in reward.seen)


def test_response_texts_end_at_the_last_finished_character(bpe):
    table = reference_bytes(bpe)
    ids = encode_response(bpe, "".join(TARGETS) + "x\ufffd", add_eos=False)  # a real U+FFFD at the end stays
    cut_inside = 0
    for n in range(len(ids) + 1):
        data = b"".join(table[t] for t in ids[:n])
        assert decode_response(bpe, ids[:n]) == finished(data)
        assert decode_response(bpe, ids[:n] + [bpe.eos_token_id]) == finished(data)
        cut_inside += finished(data) != data.decode("utf-8", "replace")
    assert cut_inside > 5
    assert decode_response(bpe, ids).endswith("x\ufffd")


def byte_fallback_tokenizer():
    """A sentencepiece-style vocabulary with byte fallback (Llama-2, Mistral): tokens <0x00> ... <0xFF>."""
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{f"<0x{b:02X}>": 3 + b for b in range(256)}}
    for piece in ["▁", "a", "é", "▁a"]:
        vocab[piece] = len(vocab)
    tok = Tokenizer(models.BPE(vocab, [], byte_fallback=True, unk_token="<unk>"))
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>", bos_token="<s>", unk_token="<unk>")


def test_byte_fallback_texts_end_at_the_last_finished_character():
    tok = byte_fallback_tokenizer()
    pieces = ["a", "▁", "<0xE2>", "<0x82>", "<0xAC>", "é", "▁", "<0xF0>", "<0x9F>", "<0x98>", "<0x80>", "</s>"]
    ids = tok.convert_tokens_to_ids(pieces)
    expected = ["a", "a ", "a ", "a ", "a €", "a €é", "a €é ", "a €é ", "a €é ", "a €é ", "a €é 😀", "a €é 😀"]
    assert [tok.decode(ids[:n]) for n in (3, 4)] == ["a \ufffd", "a \ufffd\ufffd"]  # what decoding alone gives
    assert [decode_response(tok, ids[:n]) for n in range(1, len(ids) + 1)] == expected
    assert decode_response(tok, ids[:3] + [2]) == "a "  # an EOS after an unfinished character


def _prefix_of(bpe, text):
    """The ids of ``text`` up to and including its first token that ends inside a character."""
    ids = encode_response(bpe, text, add_eos=False)
    n = next(n for n in range(1, len(ids)) if bpe.decode(ids[:n]).endswith(UNFINISHED))
    return ids[:n]


@pytest.mark.parametrize("same", [True, False], ids=["same tokenizer", "other tokenizer"])
def test_a_response_cut_inside_a_character_scores_like_its_last_candidate(bpe, other_bpe, same):
    """A response cut at max_new_tokens after the first bytes of an emoji: Best-of-N and evaluation score
    what the scorer gave its last token during decoding."""
    rm_tok = bpe if same else other_bpe
    rm = make_rm(rm_tok)
    scorer = build_scorer(RewardSpec(model=SPEC, mode="text"), rm, rm_tok, bpe)
    assert scorer.reads_ids == same
    prompt, cut = PROMPTS[0], _prefix_of(bpe, TARGETS[0])
    ids, mask = encode_prompts(bpe, [prompt])
    scorer.begin([prompt], ids, mask)
    for t in cut:
        last = scorer.score_candidates(torch.tensor([[t]]))
        scorer.advance(torch.tensor([0]), torch.tensor([t]))
    text = decode_response(bpe, cut)
    assert not text.endswith(UNFINISHED)
    got = scorer.score_responses(Responses([prompt], ids, mask, [cut], [text], [False]))
    torch.testing.assert_close(got, last[0], atol=1e-5, rtol=1e-5)
    if same:  # the cached scorer reads the same ids
        cached = CachedCausalScorer(rm).score_responses(Responses([prompt], ids, mask, [cut], [text], [False]))
        torch.testing.assert_close(got, cached, atol=1e-5, rtol=1e-5)
        expected = from_scratch(rm, [encode_prompt(bpe, prompt) + cut])
    else:  # evaluation reads the response text: the prefix's finished text
        expected = from_scratch(rm, [encode_prompt(rm_tok, prompt) + encode_response(rm_tok, text, add_eos=False)])
        evaluation = ModelReward(rm, rm_tok)([prompt], [text], [False])
        torch.testing.assert_close(evaluation, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["args", "pargs"])
def test_guided_decoding_on_the_text_path_picks_the_cached_scorers_tokens(bpe, name):
    """The issue measured 0 of 16 matching runs before the fix."""
    lm, rm = make_lm(bpe), make_rm(bpe)
    prompts = [p + s for p in PROMPTS for s in ("", " ✓", " 😀")]
    seeds = torch.tensor([stable_seed(0, i) for i in range(len(prompts))])
    method = preset(name, scorer="rm", beta=2.0)
    runs = {}
    for mode in ("cached", "text"):
        scorer = build_scorer(RewardSpec(model=SPEC, mode=mode), rm, bpe, bpe)
        runs[mode] = generate(lm, bpe, prompts, method, seeds, scorer=scorer, max_new_tokens=10)
    assert isinstance(scorer, TextScorer) and scorer.reads_ids
    assert runs["text"].token_ids == runs["cached"].token_ids
    assert runs["text"].texts == runs["cached"].texts
    inside = [
        ids
        for ids in runs["text"].token_ids
        if any(bpe.decode(ids[:n]).endswith(UNFINISHED) for n in range(1, len(ids) + 1))
    ]
    assert len(inside) >= len(prompts) // 2  # responses that passed through unfinished characters
