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

A config names a preset and changes what it needs, e.g. ``{preset: pargs, beta: 2.0, name: pargs-b2}``;
a field left out takes the preset's value, or without a preset the default in its comment.

A fine-tuned policy (DPO, PPO) is decoded with ``sample`` under its own name by pointing the
prediction module's ``policies`` at its checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import InitVar, dataclass, field, fields

from pargs.decoding.registry import kinds, rule_for
from pargs.errors import ConfigError


def _unset(default):
    """A field left out (None) takes the preset's value, or else ``default``."""
    return field(default=None, metadata={"default": default})


@dataclass
class DecodeMethod:
    """One decoding method and its parameters (a row of the results table).

    Once built, every field holds its value and ``preset`` is None: two methods with equal fields
    decode the same tokens.
    """

    name: str | None = None  #: label in outputs and tables, e.g. "pargs" (default: the preset's name)
    preset: str | None = None  #: start from PRESETS[preset]; the fields given here override it
    kind: str | None = _unset("sample")  #: the rule: sample | best_of_n | guided (module docstring) or a registered one
    greedy: bool | None = _unset(False)  #: argmax instead of sampling
    top_k: int | None = _unset(0)  #: sample: keep the k most likely tokens (0 = all)
    top_p: float | None = _unset(1.0)  #: sample: nucleus mass to keep (1 = all)
    temperature: float | None = _unset(1.0)  #: divides the logits (sample) or the guided scores (guided)
    k: int | None = _unset(10)  #: guided: number of candidate tokens scored per step
    beta: float | None = _unset(1.5)  #: guided: reward weight (the paper's beta, ARGS's w)
    n: int | None = _unset(10)  #: best_of_n: responses drawn per sample
    scorer: str | None = _unset(None)  #: name of the reward scorer (guided, best_of_n)
    policy: str | None = _unset("reference")  #: name of the policy model to decode from
    samples: int | None = _unset(1)  #: responses per prompt (10 for the diversity metric)
    #: what each row's random noise derives from (with the run seed, prompt id and sample): methods with one key
    #: draw the same noise, so variants of a method (another beta, another k) are compared on common random
    #: numbers (default: the preset's name, else ``name``)
    noise_key: str | None = None
    weight: InitVar[float | None] = None  #: the old name of ``beta``; giving it is an error that says so

    def __post_init__(self, weight: float | None) -> None:
        label = self.name or self.preset
        where = f"decoding method {label!r}:" if label else "decoding method:"
        if weight is not None:
            raise ConfigError(f"{where} `weight` was renamed to `beta`; write beta: {weight}")
        if self.preset is not None and self.preset not in PRESETS:
            raise ConfigError(f"{where} unknown preset {self.preset!r}; known: {sorted(PRESETS)}")
        base = PRESETS.get(self.preset, {})
        if self.name is None:
            if self.preset is None:
                raise ConfigError("a decoding method needs a `name` (or a `preset`, whose name it then takes)")
            self.name = self.preset
        if self.noise_key is None:
            self.noise_key = self.preset or self.name
        for f in fields(self):
            if f.metadata and getattr(self, f.name) is None:
                setattr(self, f.name, base.get(f.name, f.metadata["default"]))
        self.preset = None  # resolved: the fields alone say what the method decodes
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
    return DecodeMethod(preset=name, scorer=scorer, **overrides)


#: The paper's methods (k = 10, beta = 1.5 as in its main experiments; N = 10 for Best-of-N), and ARGS's
#: full-sequence RM with PARGS's sampling rule (``args-sampled``), which separates the RM's effect from the rule's.
PRESETS: dict[str, dict] = {
    "greedy": {"kind": "sample", "greedy": True},
    "top-k": {"kind": "sample", "top_k": 10},
    "best-of-n": {"kind": "best_of_n", "top_k": 10, "n": 10, "scorer": "full"},
    "args": {"kind": "guided", "k": 10, "beta": 1.5, "greedy": True, "scorer": "full"},
    "args-sampled": {"kind": "guided", "k": 10, "beta": 1.5, "scorer": "full"},
    "pargs": {"kind": "guided", "k": 10, "beta": 1.5, "scorer": "partial"},
    "pargs-g": {"kind": "guided", "k": 10, "beta": 1.5, "greedy": True, "scorer": "partial"},
    "cd-fudge": {"kind": "guided", "k": 10, "beta": 1.5, "scorer": "value"},
}
