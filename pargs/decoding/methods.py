"""What a decoding method is: one small config whose ``kind`` names the rule that decodes it.

=========  =====================================================================================
kind       rule at each step (one module each under ``pargs/decoding/rules/``)
=========  =====================================================================================
sample     sample from the reference LM (``temperature``, ``top_k``, ``top_p``); ``greedy`` = argmax
best_of_n  ``n`` samples as above, the ``scorer`` picks the one with the highest complete-response
           reward
guided     take the ``k`` most likely tokens v of the reference LM and score each with
           ``log pi_ref(v | x, y) + beta * r(x, y + v)`` from the ``scorer``; sample from the
           softmax of the scores (divided by ``temperature``) or take the argmax (``greedy``)
=========  =====================================================================================

Other kinds can be registered (``pargs/decoding/registry.py`` says how).

The paper's methods are presets of these (see :data:`PRESETS`): ARGS is ``guided`` with a
full-sequence RM, PARGS / PARGS-G with a partial-sequence RM, CD-FUDGE with a prefix value model.
ARGS's reference code adds ``beta * r`` to the raw logits rather than to log-probabilities; the two
differ by a constant per row (the log normaliser), so they pick the same token and sample the same
distribution over the k candidates.

A fine-tuned policy (DPO, PPO) is decoded with ``sample`` under its own name by pointing the
prediction module's ``policies`` at its checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import InitVar, dataclass

from pargs.decoding.registry import kinds, rule_for
from pargs.errors import ConfigError


@dataclass
class DecodeMethod:
    """One decoding method and its parameters (a row of the results table)."""

    name: str  #: label in outputs and tables, e.g. "pargs"
    kind: str = "sample"  #: the rule: sample | best_of_n | guided (module docstring) or a registered one
    greedy: bool = False  #: argmax instead of sampling
    top_k: int = 0  #: sample: keep the k most likely tokens (0 = all)
    top_p: float = 1.0  #: sample: nucleus mass to keep (1 = all)
    temperature: float = 1.0  #: divides the logits (sample) or the guided scores (guided)
    k: int = 10  #: guided: number of candidate tokens scored per step
    beta: float = 1.5  #: guided: reward weight (the paper's beta, ARGS's w)
    n: int = 10  #: best_of_n: responses drawn per sample
    scorer: str | None = None  #: name of the reward scorer (guided, best_of_n)
    policy: str = "reference"  #: name of the policy model to decode from
    samples: int = 1  #: responses per prompt (10 for the diversity metric)
    weight: InitVar[float | None] = None  #: the old name of ``beta``; giving it is an error that says so

    def __post_init__(self, weight: float | None) -> None:
        if weight is not None:
            raise ConfigError(f"decoding method {self.name!r}: `weight` was renamed to `beta`; write beta: {weight}")
        self.validate()

    @property
    def rule(self):
        """The rule that decodes this method (:mod:`pargs.decoding.registry`)."""
        return rule_for(self.kind)

    @property
    def uses_scorer(self) -> bool:
        """Whether decoding reads ``scorer`` (guided and Best-of-N do; sampling does not)."""
        return self.rule.uses_scorer

    def validate(self, vocab_size: int | None = None) -> None:
        """Raise a :class:`ConfigError` naming the field when a parameter is out of range."""
        where = f"decoding method {self.name!r}:"
        if self.kind not in kinds():
            raise ConfigError(f"{where} kind must be one of {kinds()}, got {self.kind!r}")
        if not math.isfinite(self.beta) or self.beta < 0:
            raise ConfigError(f"{where} beta must be a finite number >= 0, got {self.beta}")
        if not math.isfinite(self.temperature) or self.temperature <= 0:
            raise ConfigError(f"{where} temperature must be a finite number > 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"{where} top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ConfigError(f"{where} top_k must be >= 0 (0 keeps all tokens), got {self.top_k}")
        if self.k < 1:
            raise ConfigError(f"{where} k must be >= 1, got {self.k}")
        if self.n < 1 or self.samples < 1:
            raise ConfigError(f"{where} n and samples must be >= 1, got n={self.n}, samples={self.samples}")
        if self.uses_scorer and not self.scorer:
            raise ConfigError(f"{where} kind {self.kind!r} needs a `scorer`")
        if vocab_size is not None and self.top_k > vocab_size:
            raise ConfigError(f"{where} top_k={self.top_k} is larger than the vocabulary ({vocab_size} tokens)")
        self.rule.check(self, vocab_size)

    @property
    def samples_stochastic(self) -> bool:
        """Whether repeated samples of one prompt can differ."""
        return not self.greedy


def preset(name: str, scorer: str | None = None, **overrides) -> DecodeMethod:
    """A method from :data:`PRESETS` with optional overrides, e.g. ``preset("pargs", scorer="partial")``."""
    if name not in PRESETS:
        raise ConfigError(f"unknown method preset {name!r}; known: {sorted(PRESETS)}")
    fields = dict(PRESETS[name], name=name, **overrides)
    if scorer is not None:
        fields["scorer"] = scorer
    return DecodeMethod(**fields)


#: The paper's methods (k = 10, beta = 1.5 as in its main experiments; N = 10 for Best-of-N).
PRESETS: dict[str, dict] = {
    "greedy": {"kind": "sample", "greedy": True},
    "top-k": {"kind": "sample", "top_k": 10},
    "best-of-n": {"kind": "best_of_n", "top_k": 10, "n": 10, "scorer": "full"},
    "args": {"kind": "guided", "k": 10, "beta": 1.5, "greedy": True, "scorer": "full"},
    "pargs": {"kind": "guided", "k": 10, "beta": 1.5, "scorer": "partial"},
    "pargs-g": {"kind": "guided", "k": 10, "beta": 1.5, "greedy": True, "scorer": "partial"},
    "cd-fudge": {"kind": "guided", "k": 10, "beta": 1.5, "scorer": "value"},
}
