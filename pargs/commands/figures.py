"""The figures of ``pargs report`` and ``pargs sweep``, built one way.

Every figure is saved twice, as PNG and as PDF (vector, for a paper); names the reward on its axis or
colorbar; shows +- 1 standard error (error bars, or the SE under each heatmap cell's number); and
carries a note line saying which methods or cells it leaves out and why. The builders return a
matplotlib :class:`~matplotlib.figure.Figure` (no pyplot state), so tests can read its labels and texts.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from pargs.file_names import file_name

#: the formats every figure is written in: raster for a quick look, vector for a paper
FORMATS = ("png", "pdf")
NOTE_FONTSIZE = 7


def _se(values: Sequence[float | None]) -> list[float]:
    """Error-bar half-widths: a missing or undefined SE (one prompt) draws no bar."""
    return [0.0 if v is None or math.isnan(v) else v for v in values]


def add_note(fig: Figure, lines: Sequence[str]) -> None:
    """Write ``lines`` under the axes, wrapped to the figure's width, and make room for them."""
    width = max(30, int(fig.get_figwidth() * 15))  # characters of a 7-point font across the figure
    text = "\n".join(textwrap.fill(line, width) for line in lines if line)
    if not text:
        fig.tight_layout()
        return
    n = text.count("\n") + 1
    fig.text(0.01, 0.01, text, fontsize=NOTE_FONTSIZE, ha="left", va="bottom")
    bottom = min(0.45, (0.08 + 0.12 * n) / fig.get_figheight())  # ~0.12 inch a line
    fig.tight_layout(rect=(0, bottom, 1, 1))


def left_out(names: Sequence[str], why: str) -> str:
    """The note line for methods (or cells) a figure does not show; empty when none."""
    return f"Not shown: {', '.join(names)} ({why})." if names else ""


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    ses: Sequence[float | None],
    ylabel: str,
    title: str,
    notes: Sequence[str] = (),
) -> Figure:
    """One bar per label with +- 1 SE error bars."""
    fig = Figure(figsize=(max(5.0, 0.9 * len(labels) + 2), 4.0))
    ax = fig.subplots()
    ax.bar(list(labels), list(values), yerr=_se(ses), capsize=4, color="tab:blue", ecolor="black")
    ax.axhline(0.0, color="grey", linewidth=0.6)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=30)
    add_note(fig, ["Error bars: ± 1 standard error across prompts.", *notes])
    return fig


def point_chart(
    labels: Sequence[str],
    xs: Sequence[float],
    x_ses: Sequence[float | None],
    ys: Sequence[float],
    y_ses: Sequence[float | None],
    xlabel: str,
    ylabel: str,
    title: str,
    notes: Sequence[str] = (),
) -> Figure:
    """One labelled point per entry with +- 1 SE error bars on both axes."""
    fig = Figure(figsize=(5.5, 4.5))
    ax = fig.subplots()
    for label, x, xe, y, ye in zip(labels, xs, _se(x_ses), ys, _se(y_ses)):
        ax.errorbar(x, y, xerr=xe, yerr=ye, fmt="o", capsize=3)
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(5, 5))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    add_note(fig, ["Error bars: ± 1 standard error across prompts.", *notes])
    return fig


def heatmap(
    values: Sequence[Sequence[float]],
    ses: Sequence[Sequence[float]],
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    xlabel: str,
    ylabel: str,
    title: str,
    colorbar_label: str,
    notes: Sequence[str] = (),
) -> Figure:
    """A grid coloured by ``values`` (nan: blank), each cell printed as ``value`` over ``± SE``."""
    import numpy as np

    grid, err = np.asarray(values, dtype=float), np.asarray(ses, dtype=float)
    fig = Figure(figsize=(4.5 + 0.9 * len(col_labels), 3.5 + 0.5 * len(row_labels)))
    ax = fig.subplots()
    im = ax.imshow(grid, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(col_labels)), list(col_labels))
    ax.set_yticks(range(len(row_labels)), list(row_labels))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    lo, hi = np.nanmin(grid), np.nanmax(grid)
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            if np.isnan(grid[i, j]):
                continue
            light = hi > lo and (grid[i, j] - lo) / (hi - lo) > 0.6  # dark text on the bright end of viridis
            text = f"{grid[i, j]:.2f}" + ("" if np.isnan(err[i, j]) else f"\n± {err[i, j]:.2f}")
            ax.text(j, i, text, ha="center", va="center", color="k" if light else "w", fontsize=8)
    fig.colorbar(im, ax=ax, label=colorbar_label)
    add_note(fig, ["Cells: mean over prompts, ± 1 standard error below.", *notes])
    return fig


def save(fig: Figure, out_dir: str | Path, name: str) -> dict[str, str]:
    """Write ``name.png`` and ``name.pdf``; return ``{name: png path, name + "_pdf": pdf path}``."""
    paths = {}
    for fmt in FORMATS:
        path = Path(out_dir) / f"{file_name(name)}.{fmt}"
        fig.savefig(path, dpi=120)
        paths[name if fmt == "png" else f"{name}_{fmt}"] = str(path)
    return paths
