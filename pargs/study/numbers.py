"""How the study's report writes numbers: fixed digits, p-values, mean ± SE, and a dash for a missing value."""

from __future__ import annotations

import math

from pargs.metrics.reward_stats import mean_se


def f(x: float | None, digits: int = 3, sign: bool = False) -> str:
    """``x`` with ``digits`` decimals (a sign when asked); "–" for None or NaN."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def p(value: float) -> str:
    """A p-value: three decimals, or two significant digits in scientific notation below 0.001."""
    return f"{value:.1e}" if value < 1e-3 else f"{value:.3f}"


def ms(values: list[float]) -> str:
    """``mean ± SE`` of ``values`` ("– ± –" for none)."""
    mean, se = mean_se(values) if values else (math.nan, math.nan)
    return f"{f(mean)} ± {f(se)}"
