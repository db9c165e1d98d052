"""The guided rule as a Hugging Face logits processor: the engine's tokens (greedy), the guided distribution
(sampling), checked against the engine and against scoring every candidate sequence from scratch."""

from types import SimpleNamespace

import pytest
import torch
from transformers import LogitsProcessor

from pargs.decoding.cached_scorer import CachedCausalScorer
from pargs.decoding.engine import Stopping, encode_prompts, generate
from pargs.decoding.hf_processor import GuidedLogitsProcessor
from pargs.decoding.methods import preset
from pargs.decoding.scorer import Scorer
from pargs.decoding.text_reward import ModelReward
from pargs.decoding.text_scorer import TextScorer
from pargs.errors import ConfigError
from pargs.models.encoding import encode_prompt
from pargs.models.reward_model import sequence_rewards
from tests.conftest import make_lm

PROMPTS = [
    "write a review of the hotel about the staff :",
    "write a short review :",
    "the phone",
    "write a detailed review of the book about the story and the cover :",
    "write about the price :",
]
BETA, K = 1.5, 6


def _scorer(kind, rm, tokenizer):
    return CachedCausalScorer(rm) if kind == "cached" else TextScorer(ModelReward(rm, tokenizer), tokenizer)


@torch.no_grad()
def _rule_from_scratch(lm, rm, tokenizer, seq: list[int], k: int = K):
    """Top-k candidates of ``seq``'s next token and their ``log pi_ref + beta * r``, every sequence run alone."""
    logits = lm(input_ids=torch.tensor([seq])).logits[0, -1].float()
    logits[[tokenizer.pad_token_id, tokenizer.unk_token_id]] = float("-inf")
    lp, cand = torch.log_softmax(logits, -1).topk(k)
    seqs = torch.tensor([seq + [v] for v in cand.tolist()])
    return cand, lp + BETA * sequence_rewards(rm, seqs, torch.ones_like(seqs))


def _hf_generate(policy, proc, ids, mask, n, **kw):
    return policy.generate(
        input_ids=ids, attention_mask=mask, logits_processor=[proc], max_new_tokens=n, pad_token_id=0, **kw
    )


def _cut(row: list[int], eos: set[int]) -> list[int]:
    end = next((i for i, t in enumerate(row) if t in eos), None)
    return row if end is None else row[: end + 1]


def _policy_ending_at_different_steps(tokenizer, rm, n):
    """A policy with a second EOS: a token the greedy PARGS decode first produces at different steps per row.

    Making a token EOS does not change the decode before it appears, so rows end at those steps.
    """
    lm = make_lm(tokenizer)
    gen = generate(
        lm,
        tokenizer,
        PROMPTS,
        preset("pargs-g", scorer="rm", k=K),
        torch.zeros(len(PROMPTS)).long(),
        scorer=CachedCausalScorer(rm),
        max_new_tokens=n,
    )
    for token in sorted({t for row in gen.token_ids for t in row}):
        firsts = [row.index(token) if token in row else None for row in gen.token_ids]
        ends = {f for f in firsts if f is not None}
        if len(ends) >= 2 and None in firsts and min(ends) < n - 2:
            lm.generation_config.eos_token_id = [tokenizer.eos_token_id, token]
            return lm, firsts
    pytest.fail("no token ends the rows at different steps; change the prompts")


@pytest.mark.parametrize("kind", ["cached", "text"])
def test_greedy_generate_gives_the_engines_tokens(rm, tokenizer, kind):
    """Left-padded prompts of different lengths, rows ending at different steps (then padded by generate)."""
    n = 14
    lm, firsts = _policy_ending_at_different_steps(tokenizer, rm, n)
    method = preset("pargs-g", scorer="rm", k=K)
    engine = generate(
        lm,
        tokenizer,
        PROMPTS,
        method,
        torch.zeros(len(PROMPTS)).long(),
        scorer=_scorer(kind, rm, tokenizer),
        max_new_tokens=n,
    )
    assert engine.num_tokens == [n if f is None else f + 1 for f in firsts]  # the rows do end apart
    ids, mask = encode_prompts(tokenizer, PROMPTS)
    proc = GuidedLogitsProcessor.from_method(method, _scorer(kind, rm, tokenizer), tokenizer)
    out = _hf_generate(lm, proc.prepare(mask), ids, mask, n, **proc.generate_kwargs())
    eos = set(lm.generation_config.eos_token_id)
    assert [_cut(row, eos) for row in out[:, ids.shape[1] :].tolist()] == engine.token_ids


def test_sampling_scores_are_the_guided_distribution(lm, rm, tokenizer):
    """softmax of the processed scores = softmax((log pi_ref + beta r) / T) over the top-k, zero elsewhere."""
    temperature, n, copies = 0.7, 5, 2
    prompts = PROMPTS[:3]
    ids, mask = encode_prompts(tokenizer, prompts)
    proc = GuidedLogitsProcessor(CachedCausalScorer(rm), tokenizer, k=K, beta=BETA, temperature=temperature)
    torch.manual_seed(0)
    out = _hf_generate(
        lm,
        proc.prepare(mask),
        ids,
        mask,
        n,
        num_return_sequences=copies,
        output_scores=True,
        return_dict_in_generate=True,
        **proc.generate_kwargs(),
    )
    assert len(out.scores) == n
    width = ids.shape[1]
    for row, seq in enumerate(out.sequences.tolist()):
        prompt = encode_prompt(tokenizer, prompts[row // copies])
        assert seq[width - len(prompt) : width] == prompt
        for step in range(n):
            cand, guided = _rule_from_scratch(lm, rm, tokenizer, prompt + seq[width : width + step])
            got = out.scores[step][row]
            finite = got.isfinite().nonzero().squeeze(1)
            assert sorted(finite.tolist()) == sorted(cand.tolist())  # -inf outside the top-k
            torch.testing.assert_close(got.softmax(-1)[cand], (guided / temperature).softmax(-1), atol=1e-5, rtol=0)
            assert seq[width + step] in cand.tolist()
    assert len({tuple(s) for s in out.sequences.tolist()}) > len(prompts)  # the copies are sampled apart


class _Override(LogitsProcessor):
    """After the guided processor: records its scores, and at one step forces a row onto a non-candidate."""

    def __init__(self, step: int, row: int) -> None:
        self.step, self.row, self.seen, self.forced = step, row, [], None

    def __call__(self, input_ids, scores):
        self.seen.append(scores.clone())
        if len(self.seen) - 1 == self.step:
            self.forced = int((~scores[self.row].isfinite()).nonzero()[5])  # not a candidate (nor suppressed)
            scores = scores.clone()
            scores[self.row] = float("-inf")
            scores[self.row, self.forced] = 0.0
        return scores


@pytest.mark.parametrize("kind", ["cached", "text"])
def test_a_token_outside_the_candidates_is_scored_from_there(lm, rm, tokenizer, kind):
    """Every step's scores equal the rule from scratch on the sequence generate actually built."""
    n, prompts = 5, PROMPTS[:3]
    ids, mask = encode_prompts(tokenizer, prompts)
    proc = GuidedLogitsProcessor(_scorer(kind, rm, tokenizer), tokenizer, k=K, beta=BETA, greedy=True)
    override = _Override(step=2, row=1)
    out = lm.generate(
        input_ids=ids,
        attention_mask=mask,
        logits_processor=[proc.prepare(mask), override],
        max_new_tokens=n,
        do_sample=False,
        pad_token_id=0,
    )
    width = ids.shape[1]
    assert out[1, width + 2] == override.forced
    for row, seq in enumerate(out.tolist()):
        prompt = encode_prompt(tokenizer, prompts[row])
        for step in range(n):
            cand, guided = _rule_from_scratch(lm, rm, tokenizer, prompt + seq[width : width + step])
            torch.testing.assert_close(override.seen[step][row, cand], guided, atol=1e-4, rtol=1e-5)


class _CandidatesOnly(Scorer):
    """A scorer that can only continue with one of its candidates (no advance_outside)."""

    def begin(self, prompts, prompt_ids, prompt_mask):
        pass

    def score_candidates(self, candidates):
        return torch.zeros(candidates.shape)

    def advance(self, chosen, tokens):
        pass

    def keep_rows(self, rows):
        pass

    def score_responses(self, responses):
        return torch.zeros(len(responses.prompts))


def test_a_scorer_that_cannot_take_the_token_fails_loudly(lm, tokenizer):
    ids, mask = encode_prompts(tokenizer, PROMPTS[:2])
    proc = GuidedLogitsProcessor(_CandidatesOnly(), tokenizer, k=K, beta=BETA, greedy=True)
    with pytest.raises(ConfigError, match="not one of its candidates.*_CandidatesOnly cannot take in"):
        lm.generate(
            input_ids=ids,
            attention_mask=mask,
            logits_processor=[proc, _Override(step=1, row=0)],
            max_new_tokens=4,
            do_sample=False,
            pad_token_id=0,
        )


def test_one_processor_serves_successive_generate_calls(lm, rm, tokenizer):
    """Each call starts a new batch by itself (no prepare: the mask is read from the left padding)."""
    proc = GuidedLogitsProcessor(CachedCausalScorer(rm), tokenizer, k=K, beta=BETA, greedy=True)
    batches = [PROMPTS[:3], PROMPTS[3:], PROMPTS[:3], PROMPTS[1:4]]
    last_width = 0  # of the input_ids the processor saw last
    for n, prompts in zip([6, 4, 6, 6], batches):
        ids, mask = encode_prompts(tokenizer, prompts)
        if prompts == PROMPTS[1:4]:  # one column wider than the last call's input_ids: only the contents differ
            extra = last_width + 1 - ids.shape[1]
            assert extra > 0
            ids = torch.cat([torch.zeros(len(prompts), extra, dtype=torch.long), ids], dim=1)
            mask = torch.cat([torch.zeros(len(prompts), extra, dtype=torch.long), mask], dim=1)
        got = _hf_generate(lm, proc, ids, mask, n, do_sample=False)[:, ids.shape[1] :].tolist()
        last_width = ids.shape[1] + n - 1
        engine = generate(
            lm,
            tokenizer,
            prompts,
            preset("pargs-g", scorer="rm", k=K),
            torch.zeros(len(prompts)).long(),
            scorer=CachedCausalScorer(rm),
            max_new_tokens=n,
        )
        assert got == engine.token_ids


def test_advance_outside_scores_like_from_scratch(rm, tokenizer):
    """Both scorers, mixing kept candidates and tokens from outside them, against each sequence run alone."""
    g = torch.Generator().manual_seed(0)
    ids, mask = encode_prompts(tokenizer, PROMPTS)
    scorers = [_scorer(kind, rm, tokenizer) for kind in ("cached", "text")]
    for s in scorers:
        s.begin(PROMPTS, ids, mask)
    seqs = [encode_prompt(tokenizer, p) for p in PROMPTS]
    for step in range(6):
        cand = torch.randint(3, len(tokenizer), (len(PROMPTS), K), generator=g)
        expected = torch.stack(
            [
                sequence_rewards(rm, torch.tensor([s + [v] for v in c]), torch.ones(K, len(s) + 1, dtype=torch.long))
                for s, c in zip(seqs, cand.tolist())
            ]
        )
        chosen = torch.randint(K, (len(PROMPTS),), generator=g)
        tokens = cand.gather(1, chosen.unsqueeze(1)).squeeze(1)
        if step % 2:  # one row continues with a word that is not among its candidates
            row = step % len(PROMPTS)
            tokens[row] = min(set(range(3, len(tokenizer))) - set(cand[row].tolist()))
        for s in scorers:
            torch.testing.assert_close(s.score_candidates(cand), expected, atol=1e-5, rtol=1e-5)
            if step % 2:
                s.advance_outside(tokens)
            else:
                s.advance(chosen, tokens)
        seqs = [s + [t] for s, t in zip(seqs, tokens.tolist())]


def _call_once(proc, ids):
    return proc(ids, torch.zeros(ids.shape[0], 40))


def test_prompt_masks(tokenizer):
    proc = GuidedLogitsProcessor(_CandidatesOnly(), tokenizer, k=K, beta=BETA)
    left, mask = encode_prompts(tokenizer, PROMPTS[:2])
    with pytest.raises(ConfigError, match="has shape \\(1, .*input_ids of shape \\(2, "):
        _call_once(proc.prepare(mask[:1, :3]), left)
    assert not mask[1].all()
    right = torch.stack([left[0], left[1].roll(int((mask[1] == 0).sum()))])
    with pytest.raises(ConfigError, match="right padding\\?.*padding_side = 'left'"):
        _call_once(proc, right)
    with pytest.raises(ConfigError, match="right-padded"):
        _call_once(proc.prepare(mask.flip(1)), left)
    pad_is_eos = SimpleNamespace(pad_token_id=2, eos_token_id=2, bos_token_id=2, unk_token_id=1)
    ambiguous = GuidedLogitsProcessor(_CandidatesOnly(), pad_is_eos, k=K, beta=BETA)
    with pytest.raises(ConfigError, match="also EOS/BOS.*prepare\\(attention_mask\\)"):
        _call_once(ambiguous, left)
    _call_once(ambiguous.prepare(mask, prompts=PROMPTS[:2]), left)  # with the mask it goes


def test_from_method_and_generate_kwargs(lm, tokenizer):
    proc = GuidedLogitsProcessor.from_method(preset("pargs-g", scorer="rm", k=7), None, tokenizer)
    assert (proc.k, proc.beta, proc.greedy) == (7, 1.5, True)  # the preset's beta (field weight or beta)
    assert proc.generate_kwargs() == {"do_sample": False}
    renamed = SimpleNamespace(name="p", kind="guided", k=3, beta=0.5, greedy=False, temperature=0.9)  # after `weight`
    proc = GuidedLogitsProcessor.from_method(renamed, None, tokenizer)
    assert (proc.k, proc.beta, proc.greedy, proc.temperature) == (3, 0.5, False, 0.9)
    assert proc.generate_kwargs() == {"do_sample": True, "top_k": 0, "top_p": 1.0, "temperature": 1.0}
    with pytest.raises(ConfigError, match="only 'guided' methods"):
        GuidedLogitsProcessor.from_method(preset("top-k"), None, tokenizer)
    engine_rule = Stopping.for_models(lm, tokenizer, "cpu", max_new_tokens=1)
    assert proc.suppress_ids == engine_rule.suppress_ids.tolist()  # the engine never generates these either
