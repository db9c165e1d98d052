"""The value of a response prefix under the reference policy, by Monte Carlo: a ground truth for prefixes.

Which of two partial responses is better? The label of a preference pair only ranks the complete
responses, and it is what the partial RM was trained on, so agreement with it is partly circular
(issue 14). An independent answer is the value of a prefix under the reference policy::

    V(x, y_1..i) = E_{y ~ pi_ref(. | x, y_1..i)} [ R_oracle(x, y) ]

the oracle's expected final reward when pi_ref finishes the response. pi_ref is the policy that
every decoding method of the paper samples around, so this is how good the prefix is for what
decoding will most plausibly do with it. It is estimated from ``m`` completions per prefix, drawn by
plain ancestral sampling from pi_ref (temperature 1, no top-k / top-p): any other rule estimates the
value of another policy. The rule is a parameter for that experiment, but pi_ref is the default. As
in all decoding, padding and unknown tokens are never drawn (pi_ref renormalised without them).

Completions come from the decoding engine (:func:`pargs.decoding.engine.generate`) with one
counter-based seed per completion, keyed by (seed, pair id, side, prefix length, completion index),
so the estimate depends on neither batch size nor order. The engine takes prompt texts; a row's text
is ``prompt + join + decoded prefix``, and it must encode to exactly the prompt's ids followed by the
prefix's ids. That holds for the synthetic task's word-level tokenizer (``join=" "``); a BPE tokenizer
generally changes a word's id when a space comes before it, and is rejected with a ConfigError. Each
text is checked before sampling.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from pargs.decoding.engine import generate
from pargs.decoding.methods import DecodeMethod
from pargs.decoding.noise import stable_seed
from pargs.decoding.text_reward import OracleReward, TextReward
from pargs.errors import ConfigError
from pargs.metrics.prefix_agreement import FRACTIONS
from pargs.models.encoding import decode_response, encode_pair, encode_prompt
from pargs.prefixes import PadRule, check_pad_rule, prefix_fraction_lengths


def pi_ref() -> DecodeMethod:
    """Plain ancestral sampling from pi_ref: the rule whose completions define the ground truth.

    A function, not a module constant: a method checks its kind against the registry of decoding rules,
    which is filled only once ``pargs.decoding`` has finished importing (this module is imported during it).
    """
    return DecodeMethod("pi_ref", kind="sample")


@dataclass(frozen=True)
class Prefix:
    """A prompt and a response prefix as token ids; ``key`` names it in the seeds of its completions."""

    prompt: str  #: prompt text (the reward reads it)
    prompt_ids: tuple[int, ...]  #: the prompt's ids, as :func:`pargs.models.encoding.encode_prompt` gives them
    ids: tuple[int, ...]  #: the response prefix's ids; ending with EOS makes it a complete response
    #: seed parts of its completions, which identify it (e.g. pair id, side, length); prefixes that share a key
    #: draw their completions with common random numbers (:func:`sample_completions`)
    key: tuple = ()


@dataclass(frozen=True)
class PrefixValue:
    """The Monte Carlo estimate of a prefix's value."""

    mean: float  #: mean final reward of the completions (the prefix's own reward when n == 0)
    se: float  #: standard error of the mean, std(ddof=1) / sqrt(n); 0 when nothing was sampled
    n: int  #: completions drawn; 0 for a complete prefix or one that fills max_new_tokens (scored as it is)
    truncated: int = 0  #: completions cut at max_new_tokens without EOS (the reward sees them as unfinished)


def _eos_ids(policy: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> set[int]:
    eos = {tokenizer.eos_token_id} - {None}
    extra = getattr(policy.generation_config, "eos_token_id", None)
    eos.update([extra] if isinstance(extra, int) else extra or ())
    return eos


def _row_text(tokenizer: PreTrainedTokenizerBase, prefix: Prefix, join: str) -> str:
    """The prompt text of a completion row, checked to encode to exactly the prompt + prefix ids."""
    text = prefix.prompt + join + decode_response(tokenizer, prefix.ids)
    got = encode_prompt(tokenizer, text)
    if got != [*prefix.prompt_ids, *prefix.ids]:
        raise ConfigError(
            f"prefix {prefix.key}: the text {text!r} does not encode back to the prompt's ids followed by the "
            "prefix's ids, so the decoder would continue another sequence; the Monte Carlo values need a "
            f"tokenizer that round-trips words (the synthetic task's word tokenizer does) and the right `join` "
            f"(now {join!r})"
        )
    return text


@dataclass(frozen=True)
class Completions:
    """The final rewards of one prefix's completions, before they are summarised (:func:`summarise`)."""

    rewards: tuple[float, ...]  #: completion k's reward at index k; the prefix's own reward alone when not sampled
    sampled: bool  #: False for a complete prefix or one that fills max_new_tokens (scored as it is)
    truncated: int = 0  #: completions cut at max_new_tokens without EOS


def summarise(c: Completions) -> PrefixValue:
    """The mean, its standard error and the counts of one prefix's completions."""
    if not c.sampled:
        return PrefixValue(c.rewards[0], 0.0, 0)
    t = torch.tensor(c.rewards, dtype=torch.float64)
    return PrefixValue(float(t.mean()), float(t.std(correction=1)) / math.sqrt(len(t)), len(t), c.truncated)


@torch.no_grad()
def monte_carlo_values(
    policy: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prefixes: Sequence[Prefix],
    reward: TextReward,
    m: int = 16,
    seed: int = 0,
    max_new_tokens: int = 32,
    method: DecodeMethod | None = None,
    batch_size: int = 512,
    join: str = " ",
) -> list[PrefixValue]:
    """Estimate each prefix's value: the mean reward of ``m`` completions drawn with ``method`` from ``policy``.

    Args:
        policy: pi_ref, the causal LM that completes the prefixes.
        tokenizer: its tokenizer.
        prefixes: what to estimate.
        reward: scores ``(prompts, responses, complete)``; the response is the prefix and its completion.
        m: completions per prefix (>= 2, for a standard error).
        seed: the run's seed; completion k of a prefix samples with ``stable_seed("prefix-value", seed, *key, k)``.
        max_new_tokens: the most tokens a whole response (prefix + completion) may have, as in decoding;
            a prefix that already has this many tokens is scored as it is, unfinished.
        method: the sampling rule (module docstring: keep pi_ref's own distribution for the ground truth).
        batch_size: completion rows per call of the decoder (rows with the same token budget share a call).
        join: text between the prompt and the decoded prefix (see the module docstring).

    A prefix that ends with EOS is a complete response: its value is its own reward, with SE 0.
    """
    completions = sample_completions(
        policy, tokenizer, prefixes, reward, m, seed, max_new_tokens, method, batch_size, join
    )
    return [summarise(c) for c in completions]


@torch.no_grad()
def sample_completions(
    policy: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prefixes: Sequence[Prefix],
    reward: TextReward,
    m: int = 16,
    seed: int = 0,
    max_new_tokens: int = 32,
    method: DecodeMethod | None = None,
    batch_size: int = 512,
    join: str = " ",
) -> list[Completions]:
    """The reward of every completion of every prefix, in completion order (arguments: :func:`monte_carlo_values`).

    Completion k of two prefixes with the same ``key`` draws with the same noise (the same seed, steps counted
    from the prefix's end): common random numbers, which :mod:`pargs.metrics.decision_values` pairs by k.
    """
    method = method or pi_ref()
    if m < 2:
        raise ConfigError(f"m (completions per prefix) must be >= 2 for a standard error, got {m}")
    if method.kind != "sample":
        raise ConfigError(f"the completions are sampled from the policy; method {method.name!r} is {method.kind!r}")
    eos = _eos_ids(policy, tokenizer)
    context = getattr(policy.config.get_text_config(), "max_position_embeddings", None)
    scored_as_is, budgets = [], {}
    for j, p in enumerate(prefixes):
        if not p.ids:
            raise ConfigError(f"prefix {p.key} is empty: a prefix has at least one response token")
        budget = max_new_tokens - len(p.ids)
        if p.ids[-1] in eos or budget <= 0:
            scored_as_is.append(j)
            continue
        if context is not None and len(p.prompt_ids) + max_new_tokens - 1 > context:
            raise ConfigError(
                f"prefix {p.key}: prompt ({len(p.prompt_ids)} tokens) + max_new_tokens "
                f"({max_new_tokens}) do not fit the policy's context of {context} positions"
            )
        budgets.setdefault(budget, []).append(j)
    prompts, responses, complete, owner = [], [], [], []
    cut = [0] * len(prefixes)
    for budget in sorted(budgets):
        rows = [(j, k) for j in budgets[budget] for k in range(m)]
        texts = {j: _row_text(tokenizer, prefixes[j], join) for j in budgets[budget]}
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            seeds = torch.tensor([stable_seed("prefix-value", seed, *prefixes[j].key, k) for j, k in chunk])
            gen = generate(policy, tokenizer, [texts[j] for j, _ in chunk], method, seeds, max_new_tokens=budget)
            for (j, _), new, why in zip(chunk, gen.token_ids, gen.stop_reasons):
                prompts.append(prefixes[j].prompt)
                responses.append(decode_response(tokenizer, [*prefixes[j].ids, *new]))
                complete.append(why != "length")
                owner.append(j)
                cut[j] += why == "length"
    for j in scored_as_is:
        p = prefixes[j]
        prompts.append(p.prompt)
        responses.append(decode_response(tokenizer, p.ids))
        complete.append(p.ids[-1] in eos)
        owner.append(j)
    rewards = reward(prompts, responses, complete).to(torch.float64).cpu() if prompts else torch.zeros(0)
    per_prefix: list[list[float]] = [[] for _ in prefixes]
    for j, r in zip(owner, rewards.tolist()):
        per_prefix[j].append(r)
    exact = set(scored_as_is)
    return [Completions(tuple(rs), j not in exact, cut[j]) for j, rs in enumerate(per_prefix)]


@dataclass(frozen=True)
class PrefixComparison:
    """The ground truth of one pair at one fraction of its length: which prefix has the higher value."""

    pair_id: str  #: the pair's ``id`` (its index in the list when it has none)
    fraction: float  #: fraction of the pair's length (25 % -> 0.25)
    length_w: int  #: tokens in the chosen response's prefix (the whole response when shorter)
    length_l: int  #: tokens in the rejected response's prefix
    chosen: PrefixValue  #: value of the chosen response's prefix
    rejected: PrefixValue  #: value of the rejected response's prefix

    @property
    def diff(self) -> float:
        return self.chosen.mean - self.rejected.mean

    @property
    def z(self) -> float:
        """``diff / sqrt(se_w^2 + se_l^2)``; +-inf when both values are exact and differ, 0 when equal."""
        if self.diff == 0:
            return 0.0
        se = math.hypot(self.chosen.se, self.rejected.se)
        return self.diff / se if se > 0 else math.copysign(math.inf, self.diff)

    @property
    def preferred(self) -> int:
        """1 if the chosen response's prefix has the higher value, -1 if the rejected one's, 0 on a tie."""
        return (self.diff > 0) - (self.diff < 0)


@dataclass(frozen=True)
class GroundTruth:
    """Ground-truth prefix preferences of a list of pairs (:func:`prefix_values`), and how they were made."""

    comparisons: list[PrefixComparison]  #: one per (pair, fraction), pairs in input order
    m: int  #: completions per prefix
    seed: int  #: the seed of the completions
    max_new_tokens: int  #: the most tokens of a completed response
    pad_rule: str  #: how prefix lengths were set (:mod:`pargs.prefixes`)
    max_length: int | None = None  #: the pairs' truncation (:func:`pargs.models.encoding.encode_pair`)
    method: dict = field(default_factory=lambda: asdict(pi_ref()))  #: the sampling rule

    @property
    def fractions(self) -> list[float]:
        return sorted({c.fraction for c in self.comparisons})

    def mean_se(self) -> dict[float, float]:
        """Per fraction: the mean SE of the prefix values that were sampled (NaN where none was)."""
        out = {}
        for f in self.fractions:
            ses = [v.se for c in self.comparisons if c.fraction == f for v in (c.chosen, c.rejected) if v.n]
            out[f] = sum(ses) / len(ses) if ses else math.nan
        return out

    def to_dict(self) -> dict:
        """Plain JSON-ready data; :meth:`from_dict` reads it back."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> GroundTruth:
        comparisons = [
            PrefixComparison(**{**c, "chosen": PrefixValue(**c["chosen"]), "rejected": PrefixValue(**c["rejected"])})
            for c in data["comparisons"]
        ]
        return cls(**{**data, "comparisons": comparisons})


def pair_id(record: Mapping, index: int) -> str:
    """A pair's name in seeds and results: its ``id``, or its index in the list when it has none."""
    return str(record.get("id", index))


def prefix_values(
    policy: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    pairs: Sequence[Mapping],
    fractions: Sequence[float] = FRACTIONS,
    m: int = 16,
    seed: int = 0,
    reward: TextReward | None = None,
    max_new_tokens: int = 32,
    pad_rule: PadRule = "longest",
    max_length: int | None = None,
    method: DecodeMethod | None = None,
    batch_size: int = 512,
    join: str = " ",
) -> GroundTruth:
    """The ground-truth preference of each pair's prefixes at each fraction of its length.

    Prefixes are cut as :func:`pargs.metrics.prefix_agreement.prefix_agreement` cuts them (``ceil(f * L)``
    tokens, L per ``pad_rule``, a shorter response whole), from the ids of
    :func:`pargs.models.encoding.encode_pair`. Each distinct prefix is estimated once by
    :func:`monte_carlo_values` (``reward`` defaults to the synthetic task's oracle): two fractions that give
    the same prefix share its estimate, and when both responses of a pair have the same prefix the
    ground truth is a tie (their values are equal, whatever the sampling noise would say).
    """
    check_pad_rule(pad_rule)
    reward = reward or OracleReward()
    method = method or pi_ref()
    prefixes: list[Prefix] = []
    index: dict[tuple, int] = {}
    names: dict[str, int] = {}
    cuts = []  # per pair and fraction: (pair id, fraction, length_w, length_l, prefix index w, prefix index l)
    for n, record in enumerate(pairs):
        name = pair_id(record, n)
        p, w, lo, _ = encode_pair(tokenizer, record["prompt"], record["chosen"], record["rejected"], max_length)
        if name in names:
            raise ConfigError(f"pairs {names[name]} and {n} share the id {name!r}; the seeds need distinct ids")
        names[name] = n
        for f in fractions:
            i = int(prefix_fraction_lengths(torch.tensor([len(w)]), torch.tensor([len(lo)]), f, pad_rule)[0])
            ids_w, ids_l = tuple(w[:i]), tuple(lo[:i])
            key_w = (name, "chosen", len(ids_w))
            key_l = key_w if ids_l == ids_w else (name, "rejected", len(ids_l))
            for key, ids in ((key_w, ids_w), (key_l, ids_l)):
                if key not in index:
                    index[key] = len(prefixes)
                    prefixes.append(Prefix(record["prompt"], tuple(p), ids, key))
            cuts.append((name, f, len(ids_w), len(ids_l), index[key_w], index[key_l]))
    values = monte_carlo_values(policy, tokenizer, prefixes, reward, m, seed, max_new_tokens, method, batch_size, join)
    comparisons = [PrefixComparison(name, f, lw, ll, values[jw], values[jl]) for name, f, lw, ll, jw, jl in cuts]
    return GroundTruth(comparisons, m, seed, max_new_tokens, pad_rule, max_length, asdict(method))
