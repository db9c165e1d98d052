"""The embedded synthetic task: a small review language with a hidden oracle reward.

A prompt asks for a review of a product, an aspect to discuss and sometimes a length::

    write a short review of the hotel about the staff :

A response is a sequence of clauses joined by ``and`` / ``but`` / ``,`` and closed by ``.``::

    the room was not very clean but the staff was really wonderful .

The oracle scores a *complete* response, and several of its terms are only settled at the end, so
a prefix says little about the final score (the situation the paper studies):

- sentiment (a good review is a favourable one): each clause's adjective valence, scaled by an intensifier
  and flipped-and-damped by ``not`` (``not bad`` is mildly positive); every ``but`` halves the
  weight of all clauses before it, so a later clause can overturn an earlier one; the weighted sum
  is divided by sqrt(number of clauses), so piling up clauses is not free;
- +1 if the requested aspect is discussed in a well-formed clause, -1 otherwise;
- -1 per clause about an aspect of another product, -1 per malformed clause, -0.5 per aspect
  discussed twice;
- -1 if the requested length is missed (short: at most 2 clauses, detailed: at least 3);
- -2 if the response does not end with ``.`` (unfinished).

The generator that writes the SFT corpus and the preference pairs is a noisy writer: it writes
favourably, about the requested aspect and at the requested length only part of the time, so a
reference LM trained on it leaves room that reward guidance can use. The task was fixed before any
decoding method was run on it. (A first version also asked for a positive *or* negative tone; the
tiny reward models of the quickstart could not learn the tone x valence interaction within the
quickstart's CPU budget, plateauing at chance, so the tone was dropped before any decoding run.)
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from pargs.errors import ConfigError

TOPICS: dict[str, tuple[str, ...]] = {
    "hotel": ("room", "staff", "breakfast", "pool", "location"),
    "movie": ("plot", "acting", "music", "ending", "dialogue"),
    "restaurant": ("food", "service", "dessert", "wine", "menu"),
    "phone": ("battery", "screen", "camera", "speaker", "price"),
    "book": ("story", "characters", "writing", "cover", "pacing"),
    "concert": ("band", "sound", "crowd", "venue", "setlist"),
    "laptop": ("keyboard", "display", "fan", "trackpad", "charger"),
    "museum": ("exhibits", "guide", "cafe", "tickets", "garden"),
    "game": ("graphics", "controls", "levels", "soundtrack", "story"),
    "bike": ("frame", "brakes", "saddle", "gears", "tires"),
    "airline": ("seats", "crew", "meals", "boarding", "legroom"),
    "gym": ("equipment", "trainers", "showers", "classes", "lockers"),
    "cafe": ("coffee", "pastries", "barista", "music", "seating"),
    "car": ("engine", "interior", "mileage", "steering", "trunk"),
    "headphones": ("bass", "comfort", "battery", "cable", "case"),
    "zoo": ("animals", "paths", "playground", "shop", "parking"),
    "course": ("lectures", "teacher", "homework", "exams", "slides"),
    "tent": ("zipper", "poles", "floor", "rainfly", "stakes"),
    "bakery": ("bread", "croissants", "cakes", "staff", "prices"),
    "podcast": ("host", "guests", "episodes", "audio", "topics"),
    "printer": ("ink", "setup", "speed", "paper", "noise"),
    "spa": ("massage", "sauna", "towels", "therapists", "pool"),
    "train": ("seats", "wifi", "conductor", "schedule", "toilets"),
    "festival": ("lineup", "food", "stages", "tickets", "camping"),
}
ADJECTIVES: dict[str, float] = {
    "good": 1.0,
    "nice": 1.0,
    "pleasant": 1.0,
    "great": 2.0,
    "excellent": 2.0,
    "amazing": 2.0,
    "wonderful": 2.0,
    "bad": -1.0,
    "poor": -1.0,
    "dull": -1.0,
    "awful": -2.0,
    "terrible": -2.0,
    "horrible": -2.0,
    "disappointing": -1.5,
    "okay": 0.0,
    "average": 0.0,
}
INTENSIFIERS: dict[str, float] = {"very": 1.5, "really": 1.5, "quite": 1.25, "slightly": 0.5, "somewhat": 0.5}
NEGATION_FACTOR = -0.5
ORACLE_NAME = "synthetic oracle reward"  #: how reports and figures name :func:`oracle_reward`
LENGTHS = ("short", "", "detailed")
CONNECTIVES = ("and", "but", ",")
END = "."

_ASPECT_TOPIC: dict[str, set[str]] = {}
for _topic, _aspects in TOPICS.items():
    for _a in _aspects:
        _ASPECT_TOPIC.setdefault(_a, set()).add(_topic)


@dataclass(frozen=True)
class Prompt:
    """One request: the product, the aspect to discuss and the length ('' for any)."""

    topic: str
    aspect: str
    length: str = ""

    @property
    def text(self) -> str:
        size = f"{self.length} " if self.length else ""
        return f"write a {size}review of the {self.topic} about the {self.aspect} :"

    @classmethod
    def parse(cls, text: str) -> Prompt:
        words = text.split()
        try:
            assert words[:2] == ["write", "a"] and words[-1] == ":"
            rest = words[2:-1]
            length = rest.pop(0) if rest[0] in ("short", "detailed") else ""
            review, of, the, topic, about, the2, aspect = rest
            assert (review, of, the, about, the2) == ("review", "of", "the", "about", "the")
            assert topic in TOPICS and aspect in TOPICS[topic]
        except (AssertionError, ValueError, IndexError):
            raise ConfigError(f"not a prompt of the synthetic task: {text!r}") from None
        return cls(topic, aspect, length)


def all_prompts() -> list[Prompt]:
    """Every prompt of the task, in a fixed order (24 topics x 5 aspects x 3 lengths = 360)."""
    return [
        Prompt(topic, aspect, length) for topic, aspects in TOPICS.items() for aspect in aspects for length in LENGTHS
    ]


def vocabulary() -> list[str]:
    """Every word the task's prompts and responses can contain, sorted."""
    words = {"write", "a", "review", "of", "the", "about", ":", "was", "not", "it", END, *CONNECTIVES}
    words.update(("short", "detailed"), TOPICS, ADJECTIVES, INTENSIFIERS)
    for aspects in TOPICS.values():
        words.update(aspects)
    return sorted(words)


# --------------------------------------------------------------------------------------- oracle
@dataclass(frozen=True)
class Clause:
    """A parsed clause: ``[the ASPECT | it] was [not] [INTENSIFIER] ADJECTIVE``; aspect None for 'it'."""

    aspect: str | None
    value: float


def _parse_clause(words: list[str]) -> Clause | None:
    if words[:1] == ["it"]:
        aspect, rest = None, words[1:]
    elif len(words) >= 2 and words[0] == "the" and words[1] in _ASPECT_TOPIC:
        aspect, rest = words[1], words[2:]
    else:
        return None
    if rest[:1] != ["was"]:
        return None
    rest = rest[1:]
    factor = 1.0
    if rest[:1] == ["not"]:
        factor, rest = NEGATION_FACTOR, rest[1:]
    if rest[:1] and rest[0] in INTENSIFIERS:
        factor, rest = factor * INTENSIFIERS[rest[0]], rest[1:]
    if len(rest) != 1 or rest[0] not in ADJECTIVES:
        return None
    return Clause(aspect, factor * ADJECTIVES[rest[0]])


def _segments(words: list[str]) -> list[tuple[list[str], int]]:
    """The non-empty segments between connectives, each with the number of 'but's that follow it."""
    segments: list[list[str]] = [[]]
    buts_after: list[int] = [0]
    for w in words:
        if w in CONNECTIVES or w == END:
            if w == "but":
                buts_after = [b + 1 for b in buts_after]
            segments.append([])
            buts_after.append(0)
        else:
            segments[-1].append(w)
    return [(seg, b) for seg, b in zip(segments, buts_after) if seg]


def _sentiment(words: list[str]) -> float:
    """The oracle's weighted sentiment of ``words`` (malformed clauses count 0), before the sqrt(n) scaling."""
    total = 0.0
    for seg, buts in _segments(words):
        clause = _parse_clause(seg)
        if clause is not None:
            total += clause.value * 0.5**buts
    return total


def but_contrast(response: str) -> bool:
    """Whether a later 'but' overturns the earlier clauses of ``response`` (a "but"-contrast case).

    True when the sentiment of the words before the response's last ``but`` and the sentiment of the
    whole response, both weighted as the oracle weighs them, have strictly opposite signs: a prefix
    cut before that ``but`` leans the other way than the finished response. A response without
    ``but``, or whose final sentiment is 0, is not a contrast case.
    """
    words = response.split()
    if "but" not in words:
        return False
    last = len(words) - 1 - words[::-1].index("but")
    return _sentiment(words[:last]) * _sentiment(words) < 0


def oracle_reward(prompt: str | Prompt, response: str) -> float:
    """The hidden reward of a complete ``response`` to ``prompt`` (see the module docstring)."""
    request = prompt if isinstance(prompt, Prompt) else Prompt.parse(prompt)
    words = response.split()
    complete = bool(words) and words[-1] == END
    pairs = _segments(words)  # segments between connectives, with how many 'but's follow each
    if not pairs:
        return -4.0 if not complete else -2.0
    sentiment, malformed, off_topic, repeated, mentioned = 0.0, 0, 0, 0, False
    seen: set[str] = set()
    for seg, buts in pairs:
        clause = _parse_clause(seg)
        if clause is None:
            malformed += 1
            continue
        sentiment += clause.value * 0.5**buts
        if clause.aspect is None:
            continue
        if request.topic not in _ASPECT_TOPIC[clause.aspect]:
            off_topic += 1
        if clause.aspect in seen:
            repeated += 1
        seen.add(clause.aspect)
        mentioned |= clause.aspect == request.aspect
    n = len(pairs)
    reward = sentiment / math.sqrt(n)
    reward += 1.0 if mentioned else -1.0
    reward -= off_topic + malformed + 0.5 * repeated
    if (request.length == "short" and n > 2) or (request.length == "detailed" and n < 3):
        reward -= 1.0
    if not complete:
        reward -= 2.0
    return reward


# ------------------------------------------------------------------------------------ generator
@dataclass(frozen=True)
class WriterConfig:
    """How the noisy writer deviates from the request (probabilities)."""

    favourable: float = 0.55  #: the response is meant to be favourable (else unfavourable or mixed)
    mixed_tone: float = 0.2  #: of the rest, the share of mixed-tone responses
    mention_aspect: float = 0.6  #: the requested aspect appears in some clause
    follow_length: float = 0.6  #: the clause count honours the length request
    off_topic: float = 0.08  #: a clause talks about another product's aspect
    use_it: float = 0.05  #: a clause says 'it' instead of naming an aspect
    flip: float = 0.15  #: a clause's sign is flipped from the response's tone
    negate: float = 0.25  #: a sign is expressed by negating the opposite adjective
    neutral: float = 0.1  #: the adjective is neutral
    intensify: float = 0.3  #: an intensifier is used


def _clause_count(length: str, follow: bool, rng: random.Random) -> int:
    if length == "short":
        return rng.choice((1, 2)) if follow else rng.choice((3, 4))
    if length == "detailed":
        return rng.choice((3, 4)) if follow else rng.choice((1, 2))
    return rng.choices((1, 2, 3, 4), weights=(0.2, 0.35, 0.3, 0.15))[0]


def write_response(prompt: Prompt, rng: random.Random, cfg: WriterConfig = WriterConfig()) -> str:
    """Sample one response from the noisy writer."""
    n = _clause_count(prompt.length, rng.random() < cfg.follow_length, rng)
    aspects = list(TOPICS[prompt.topic])
    rng.shuffle(aspects)
    if rng.random() < cfg.mention_aspect:
        aspects.remove(prompt.aspect)
        aspects.insert(rng.randrange(n), prompt.aspect)
    else:
        aspects.remove(prompt.aspect)
    u = rng.random()
    mixed_below = cfg.favourable + (1 - cfg.favourable) * cfg.mixed_tone
    tone = 1.0 if u < cfg.favourable else None if u < mixed_below else -1.0
    positive = [a for a, v in ADJECTIVES.items() if v > 0]
    negative = [a for a, v in ADJECTIVES.items() if v < 0]
    neutral = [a for a, v in ADJECTIVES.items() if v == 0]
    words: list[str] = []
    for i in range(n):
        if i:
            words.append(rng.choices(CONNECTIVES, weights=(0.6, 0.3, 0.1))[0])
        r = rng.random()
        if r < cfg.use_it:
            words.append("it")
        elif r < cfg.use_it + cfg.off_topic:
            other = rng.choice([t for t in TOPICS if t != prompt.topic])
            words += ["the", rng.choice([a for a in TOPICS[other] if prompt.topic not in _ASPECT_TOPIC[a]])]
        else:
            words += ["the", aspects[i % len(aspects)]]
        words.append("was")
        sign = tone if tone is not None else rng.choice((1.0, -1.0))
        if rng.random() < cfg.flip:
            sign = -sign
        if rng.random() < cfg.neutral:
            adjective, negated = rng.choice(neutral), False
        else:
            negated = rng.random() < cfg.negate
            pool = positive if (sign > 0) != negated else negative
            adjective = rng.choice(pool)
        if negated:
            words.append("not")
        if rng.random() < cfg.intensify:
            words.append(rng.choice(list(INTENSIFIERS)))
        words.append(adjective)
    words.append(END)
    return " ".join(words)


def split_prompts(seed: int, n_heldout: int) -> tuple[list[Prompt], list[Prompt]]:
    """Split all prompts into (train, held-out) deterministically; held-out prompts are never trained on."""
    prompts = all_prompts()
    if not 0 < n_heldout < len(prompts):
        raise ConfigError(f"n_heldout must be in 1..{len(prompts) - 1}, got {n_heldout}")
    random.Random(seed).shuffle(prompts)
    return prompts[n_heldout:], prompts[:n_heldout]


def bradley_terry_label(reward_a: float, reward_b: float, temperature: float, rng: random.Random) -> bool:
    """Draw 'a preferred over b' with probability sigmoid((reward_a - reward_b) / temperature)."""
    p = 1.0 / (1.0 + math.exp(-(reward_a - reward_b) / temperature))
    return rng.random() < p
