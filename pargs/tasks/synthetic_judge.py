"""A judge for the embedded synthetic task: the response with the higher oracle reward is the better one.

``pargs judge RUN --judge pargs.tasks.synthetic_judge:judge`` gives the paper's pairwise win / tie / lose
table (its GPT-4 evaluation) for the quickstart's predictions, with the task's hidden oracle
(:func:`pargs.tasks.synthetic.oracle_reward`) as an independent, exact judge instead of a language model.
Rewards within ``tie_margin`` of each other are a tie. The verdict does not depend on the order the two
responses are shown in, so the both-orders protocol of ``pargs judge`` never turns a verdict into a tie.
"""

from __future__ import annotations

from pargs.errors import ConfigError
from pargs.tasks.synthetic import oracle_reward

#: rewards closer than this are a tie; the oracle's smallest terms are 0.25 (a damped clause) and 0.5
TIE_MARGIN = 0.1


class OracleJudge:
    """``judge(prompt, first, second) -> "A" | "B" | "tie"`` by the synthetic oracle's reward.

    Args:
        tie_margin: rewards that differ by at most this much are a tie.
    """

    def __init__(self, tie_margin: float = TIE_MARGIN) -> None:
        if not tie_margin >= 0:
            raise ConfigError(f"tie_margin must be >= 0, got {tie_margin!r}")
        self.tie_margin = tie_margin

    def __call__(self, prompt: str, first: str, second: str) -> str:
        a, b = oracle_reward(prompt, first), oracle_reward(prompt, second)  # ConfigError for a foreign prompt
        if abs(a - b) <= self.tie_margin:
            return "tie"
        return "A" if a > b else "B"


#: the judge to name on the command line: ``--judge pargs.tasks.synthetic_judge:judge``
judge = OracleJudge()
