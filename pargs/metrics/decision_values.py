"""The value of each candidate of one decoding step, by Monte Carlo: a ground truth for decoding decisions.

At each step a guided decoder (ARGS, PARGS, CD-FUDGE) takes the reference LM's k most likely next tokens and
ranks them with a scorer. Which order is right? The value of candidate v in state (x, y) is::

    Q(x, y, v) = E_{y' ~ pi_ref(. | x, y + v)} [ R(x, y + v + y') ]

the task's evaluation reward (the synthetic oracle in the study) expected when pi_ref finishes the response
after v; an EOS candidate ends the response, so its value is the complete response's reward. Unlike the
prefix ground truth (:mod:`pargs.metrics.prefix_values`), which compares the prefixes of two different
responses, this compares siblings: anything the k candidates share (the prompt, the prefix y) cancels.

- **States** (:func:`draw_states`): state i takes prompt ``i mod P`` (its draw ``i div P``), samples a response
  from pi_ref (plain ancestral sampling, as the ground truth's completions) and cuts it at a step t drawn
  uniformly from its tokens: the prefix is its first t tokens (t = 0, the first step, included).
- **Candidates** (:func:`candidates`): pi_ref's k most likely next tokens there and their log-probabilities,
  padding and unknown tokens excluded, exactly as the guided rule takes them.
- **Values** (:func:`decision_values`): m completions per candidate from pi_ref, by the prefix-value sampler
  (:func:`pargs.metrics.prefix_values.sample_completions`: the same batching, noise and reward handling). Every
  candidate of a state has the state's key, so completion j of each candidate draws with the same seed: the
  Gumbel noise of (seed, step, token) is shared (:mod:`pargs.decoding.noise`), and two candidates whose
  continuations are alike draw alike completions. These common random numbers leave each value's distribution
  as it is, but make the differences between siblings, which is what a ranking reads, far less noisy;
  :attr:`Decision.se_diff` gives the standard error of each candidate's difference to the state's best one,
  paired by completion.
- **Scores** (:func:`candidate_scores`): any decoding scorer (:mod:`pargs.decoding.scorer`) scores the
  candidates the way guided decoding does: it starts on the prompt, takes in the prefix one token at a time,
  then scores the k candidates.

How a scorer's order agrees with the values: :mod:`pargs.metrics.rank_agreement`.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from pargs.decoding.engine import Stopping, generate
from pargs.decoding.noise import stable_seed
from pargs.decoding.scorer import Scorer
from pargs.decoding.text_reward import TextReward
from pargs.errors import ConfigError
from pargs.metrics.prefix_values import Completions, Prefix, PrefixValue, pi_ref, sample_completions, summarise
from pargs.models.encoding import encode_prompt, pad_batch
from pargs.models.reward_model import position_ids_from_mask


@dataclass(frozen=True)
class DecisionState:
    """A decoding state: a prompt and the response so far (a pi_ref response cut at a random step)."""

    key: str  #: names the state in seeds and results: ``<prompt id>/<draw>``
    prompt_id: str  #: the prompt record's id
    prompt: str  #: prompt text (the reward reads it)
    prompt_ids: tuple[int, ...]  #: the prompt's ids (:func:`pargs.models.encoding.encode_prompt`)
    prefix: tuple[int, ...]  #: the response so far (empty at the first step); never ends with EOS


@dataclass(frozen=True)
class Decision:
    """A state's candidates in pi_ref's order (most likely first) and their Monte Carlo values."""

    state: DecisionState
    tokens: tuple[int, ...]  #: the candidates' token ids
    logp: tuple[float, ...]  #: log pi_ref(v | x, y), padding and unknown tokens excluded
    eos: tuple[bool, ...]  #: whether each candidate ends the response
    values: tuple[PrefixValue, ...]  #: the value of y + v (its own reward, SE 0, when v ends the response)
    #: SE of (value of v - value of the state's best candidate), from the completion-by-completion differences
    #: (common random numbers); 0 for the best candidate itself
    se_diff: tuple[float, ...]

    @property
    def means(self) -> list[float]:
        return [v.mean for v in self.values]


def _eos_ids(policy: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> set[int]:
    return {int(t) for t in Stopping.for_models(policy, tokenizer, "cpu", 1).eos_ids.tolist()}


@torch.no_grad()
def draw_states(
    policy: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Mapping],
    n_states: int,
    seed: int = 0,
    max_new_tokens: int = 32,
    batch_size: int = 512,
) -> list[DecisionState]:
    """``n_states`` states on prompt records ``{"id", "prompt"}`` (module docstring: how each is drawn).

    State i's response samples with ``stable_seed("decision-state", seed, id, draw)`` and its cut with
    ``stable_seed("decision-cut", seed, id, draw)``, so a state depends on neither the batch nor the others.
    """
    if not prompts:
        raise ConfigError("decision states need at least one prompt")
    if n_states < 1:
        raise ConfigError(f"the number of decision states must be >= 1, got {n_states}")
    ids = [str(r.get("id", i)) for i, r in enumerate(prompts)]
    if len(set(ids)) != len(ids):
        raise ConfigError("the prompts of the decision states share ids; the seeds need distinct ids")
    picks = [(i % len(prompts), i // len(prompts)) for i in range(n_states)]
    states = []
    for start in range(0, n_states, batch_size):
        chunk = picks[start : start + batch_size]
        seeds = torch.tensor([stable_seed("decision-state", seed, ids[p], d) for p, d in chunk])
        texts = [prompts[p]["prompt"] for p, _ in chunk]
        gen = generate(policy, tokenizer, texts, pi_ref(), seeds, max_new_tokens=max_new_tokens)
        for (p, d), response in zip(chunk, gen.token_ids):
            t = random.Random(stable_seed("decision-cut", seed, ids[p], d)).randrange(len(response))
            text = prompts[p]["prompt"]
            prompt_ids = tuple(encode_prompt(tokenizer, text))
            states.append(DecisionState(f"{ids[p]}/{d}", ids[p], text, prompt_ids, tuple(response[:t])))
    return states


@torch.no_grad()
def candidates(
    policy: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    states: Sequence[DecisionState],
    k: int = 10,
    batch_size: int = 64,
) -> tuple[Tensor, Tensor]:
    """``(tokens, logp)``, each ``[S, k]``: pi_ref's k most likely next tokens in each state, most likely first.

    As the guided rule takes them: the top k of ``log_softmax`` of the policy's last logits with padding and
    unknown tokens masked out (:class:`pargs.decoding.engine.Stopping`).
    """
    device = next(policy.parameters()).device
    stop = Stopping.for_models(policy, tokenizer, device, max_new_tokens=1)
    vocab = policy.config.get_text_config().vocab_size
    if not 1 <= k <= vocab - stop.suppress_ids.numel():
        raise ConfigError(
            f"k = {k} candidates do not fit a vocabulary of {vocab} tokens (padding and unknown excluded)"
        )
    tokens, logps = [], []
    for start in range(0, len(states), batch_size):
        chunk = states[start : start + batch_size]
        ids, mask = pad_batch([[*s.prompt_ids, *s.prefix] for s in chunk], tokenizer.pad_token_id, side="left")
        ids, mask = ids.to(device), mask.to(device)
        out = policy(input_ids=ids, attention_mask=mask, position_ids=position_ids_from_mask(mask), logits_to_keep=1)
        logp = torch.log_softmax(stop.mask_logits(out.logits[:, -1], 0), dim=-1)
        lp, cand = logp.topk(k, dim=-1)
        tokens.append(cand.cpu())
        logps.append(lp.double().cpu())
    return torch.cat(tokens), torch.cat(logps)


def _paired_se(a: Completions, b: Completions, m: int) -> float:
    """SE of mean(a - b) with completion k of a paired with completion k of b (an exact value repeats)."""
    ra = a.rewards if a.sampled else a.rewards * m
    rb = b.rewards if b.sampled else b.rewards * m
    if not (a.sampled or b.sampled):
        return 0.0
    d = torch.tensor([x - y for x, y in zip(ra, rb)], dtype=torch.float64)
    return float(d.std(correction=1)) / math.sqrt(len(d))


@torch.no_grad()
def decision_values(
    policy: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    states: Sequence[DecisionState],
    reward: TextReward,
    k: int = 10,
    m: int = 32,
    seed: int = 0,
    max_new_tokens: int = 32,
    batch_size: int = 512,
    join: str = " ",
) -> list[Decision]:
    """Each state's k candidates (:func:`candidates`) with their Monte Carlo values (module docstring).

    Args:
        policy: pi_ref, which proposes the candidates and completes them.
        tokenizer: its tokenizer (it must round-trip words: :mod:`pargs.metrics.prefix_values`).
        states: the decoding states (:func:`draw_states`).
        reward: the evaluation reward of ``(prompts, responses, complete)``.
        k: candidates per state.
        m: completions per candidate (>= 2); completion j of every candidate of a state shares its seed,
            ``stable_seed("prefix-value", seed, "decision", state key, j)``.
        seed: the run's seed.
        max_new_tokens: the most tokens of a whole response (prefix + candidate + completion), as in decoding.
        batch_size: completion rows per call of the decoder.
        join: text between the prompt and the decoded prefix (:mod:`pargs.metrics.prefix_values`).
    """
    eos = _eos_ids(policy, tokenizer)
    for s in states:
        if s.prefix and s.prefix[-1] in eos:
            raise ConfigError(f"state {s.key}: its prefix already ends the response; there is no decision to make")
        if len(s.prefix) >= max_new_tokens:
            raise ConfigError(f"state {s.key}: its prefix fills max_new_tokens = {max_new_tokens}; no token is left")
    tokens, logp = candidates(policy, tokenizer, states, k)
    prefixes = [
        Prefix(s.prompt, s.prompt_ids, (*s.prefix, v), ("decision", s.key))
        for s, row in zip(states, tokens.tolist())
        for v in row
    ]
    done = sample_completions(policy, tokenizer, prefixes, reward, m, seed, max_new_tokens, None, batch_size, join)
    out = []
    for i, s in enumerate(states):
        own = done[i * k : (i + 1) * k]
        values = tuple(summarise(c) for c in own)
        best = max(range(k), key=lambda j: (values[j].mean, -j))  # the first of the best on a tie
        se_diff = tuple(0.0 if j == best else _paired_se(own[j], own[best], m) for j in range(k))
        row = tokens[i].tolist()
        out.append(Decision(s, tuple(row), tuple(logp[i].tolist()), tuple(v in eos for v in row), values, se_diff))
    return out


@torch.no_grad()
def candidate_scores(
    scorer: Scorer,
    tokenizer: PreTrainedTokenizerBase,
    decisions: Sequence[Decision],
    batch_size: int = 64,
    device: torch.device | str = "cpu",
) -> Tensor:
    """``[S, k]`` float64: the scorer's r(x, y + v) of each decision's candidates, as guided decoding gets them.

    States with prefixes of one length go through the scorer together: :meth:`~pargs.decoding.scorer.Scorer.begin`
    on the prompts (``tokenizer`` is the policy's), the prefix's tokens one step at a time (each scored as the
    only candidate and kept), then the k candidates.
    """
    groups: dict[int, list[int]] = defaultdict(list)
    for i, d in enumerate(decisions):
        groups[len(d.state.prefix)].append(i)
    k = len(decisions[0].tokens) if decisions else 0
    out = torch.empty(len(decisions), k, dtype=torch.float64)
    for length in sorted(groups):
        for start in range(0, len(groups[length]), batch_size):
            rows = groups[length][start : start + batch_size]
            chunk = [decisions[i] for i in rows]
            ids, mask = pad_batch([d.state.prompt_ids for d in chunk], tokenizer.pad_token_id, side="left")
            scorer.begin([d.state.prompt for d in chunk], ids.to(device), mask.to(device))
            prefix = torch.tensor([d.state.prefix for d in chunk], dtype=torch.long, device=device)
            first = torch.zeros(len(chunk), dtype=torch.long, device=device)
            for t in range(length):  # the empty prefix (the first step) has no column to take in
                scorer.score_candidates(prefix[:, t : t + 1])
                scorer.advance(first, prefix[:, t])
            cand = torch.tensor([d.tokens for d in chunk], dtype=torch.long, device=device)
            out[rows] = scorer.score_candidates(cand).double().cpu()
    return out
