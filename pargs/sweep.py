"""``pargs sweep``: sensitivity of a guided method to beta and k (the paper's Tables 13-14 and a heatmap).

Takes a predict config, replaces its methods by one copy of the chosen guided method per (beta, k)
in the grid, decodes (resumably, like ``pargs predict``), then tabulates average reward +- SE and
self-ROUGE-L +- SE (mean pairwise ROUGE-L among a prompt's samples, lower = more diverse) with beta as
rows and k as columns, as Markdown, CSV, heatmaps (PNG and PDF, :mod:`pargs.commands.figures`) and
TensorBoard scalars.
"""

from __future__ import annotations

import argparse
import csv
import logging
from collections import defaultdict
from pathlib import Path

import yaml

from pargs.commands.lightning_runner import lightning_cli
from pargs.errors import ConfigError

log = logging.getLogger(__name__)

BETAS = (0.5, 1.0, 1.5, 2.0, 2.5)  # the paper's beta range
KS = (5, 10, 15)  # the paper's k range


def grid_name(method: str, beta: float, k: int) -> str:
    """The method name of one grid cell, e.g. ``pargs@b1.5-k10``."""
    return f"{method}@b{beta:g}-k{k}"


def sweep_config(config: dict, method: str, betas, ks, out_dir: Path, limit: int | None) -> dict:
    """A predict config whose methods are the (beta, k) grid of ``method`` and whose predictions go to ``out_dir``."""
    init = config["model"]["init_args"]
    names = [m.get("name", m.get("preset")) for m in init["methods"]]  # a preset's name is the default
    if method not in names:
        raise ConfigError(f"method {method!r} is not in the config's methods {names}")
    from pargs.decoding.methods import DecodeMethod  # imports torch: not at module level (fast --help)

    template = init["methods"][names.index(method)]
    kind = DecodeMethod(**template).kind
    if kind != "guided":
        raise ConfigError(f"method {method!r} is {kind!r}; a beta x k sweep needs a guided one")
    init["methods"] = [dict(template, name=grid_name(method, b, k), beta=b, k=k) for b in betas for k in ks]
    callbacks = [
        c for c in config["trainer"].get("callbacks") or [] if not c["class_path"].endswith("PredictionWriter")
    ]
    callbacks.append(
        {"class_path": "pargs.lit.JsonlPredictionWriter", "init_args": {"output_dir": str(out_dir / "predictions")}}
    )
    config["trainer"]["callbacks"] = callbacks
    if limit:
        config["data"]["init_args"]["limit"] = limit
    return config


def tabulate(records: list[dict], method: str, betas, ks) -> dict[tuple[float, int], dict]:
    """``{(beta, k): {"reward", "reward_se", "self_rouge_l", "self_rouge_l_se", "ms_per_token"}}``."""
    # imported here, not above: importing pargs.metrics imports torch, and `pargs sweep --help` should not wait
    from pargs.metrics.diversity import diversity
    from pargs.metrics.reward_stats import per_prompt_means, reward_summary
    from pargs.metrics.runtime import time_per_token

    by_name = defaultdict(list)
    for r in records:
        by_name[r["method"]].append(r)
    cells = {}
    for b in betas:
        for k in ks:
            recs = by_name.get(grid_name(method, b, k))
            if not recs:
                continue
            cell = {}
            scored = [(r["id"], r["reward"]) for r in recs if r["reward"] is not None]
            if scored:
                cell["reward"], cell["reward_se"], _ = reward_summary(per_prompt_means(scored))
            samples = defaultdict(list)
            for r in recs:
                samples[r["id"]].append(r["response"])
            if any(len(v) >= 2 for v in samples.values()):
                cell["self_rouge_l"], cell["self_rouge_l_se"], _ = diversity(samples)
            cell["ms_per_token"] = 1000 * time_per_token(recs)
            cells[(b, k)] = cell
    return cells


def _table(cells, betas, ks, key: str) -> list[str]:
    lines = ["| beta \\ k | " + " | ".join(str(k) for k in ks) + " |", "|---|" + "---:|" * len(ks)]
    for b in betas:
        row = []
        for k in ks:
            c = cells.get((b, k), {})
            row.append(f"{c[key]:.3f} ± {c[key + '_se']:.3f}" if key in c else "-")
        lines.append(f"| {b:g} | " + " | ".join(row) + " |")
    return lines


def sweep_figures(cells, method: str, betas, ks, reward_name: str = "evaluation reward") -> dict:
    """The heatmaps by file name (matplotlib Figures), one per metric that some cell has."""
    import math

    from pargs.commands.figures import heatmap, left_out

    labels = {
        "reward": (f"average {reward_name}", f"{method}: average {reward_name}"),
        "self_rouge_l": ("self-ROUGE-L (lower = more diverse)", f"{method}: self-ROUGE-L"),
    }
    figures = {}
    for key, (label, title) in labels.items():
        if not any(key in c for c in cells.values()):
            continue
        values = [[cells.get((b, k), {}).get(key, math.nan) for k in ks] for b in betas]
        ses = [[cells.get((b, k), {}).get(f"{key}_se", math.nan) for k in ks] for b in betas]
        blank = [f"beta {b:g} k {k}" for b in betas for k in ks if key not in cells.get((b, k), {})]
        why = (
            "one sample per prompt: no self-ROUGE-L, or no predictions"
            if key == "self_rouge_l"
            else "no scored predictions"
        )
        figures[f"heatmap_{key}"] = heatmap(
            values,
            ses,
            [f"{b:g}" for b in betas],
            [str(k) for k in ks],
            "k",
            "beta",
            title,
            label,
            [left_out(blank, why)],
        )
    return figures


def write_sweep(
    cells,
    method: str,
    betas,
    ks,
    out_dir: Path,
    tensorboard_dir: Path | None = None,
    reward_name: str = "evaluation reward",
) -> dict[str, str]:
    """Markdown (Table 13/14 views), CSV, heatmaps (PNG and PDF) and TensorBoard scalars of a finished grid."""
    from pargs.commands.figures import save

    out_dir.mkdir(parents=True, exist_ok=True)
    md = [
        f"# {method}: beta x k",
        "",
        f"## Average reward ± SE (Table 13 view; reward: {reward_name})",
        "",
        *_table(cells, betas, ks, "reward"),
        "",
        "## self-ROUGE-L ± SE: mean pairwise ROUGE-L among a prompt's samples, lower = more diverse (Table 14 view)",
        "",
        *_table(cells, betas, ks, "self_rouge_l"),
        "",
    ]
    paths = {"markdown": str(out_dir / "sweep.md"), "csv": str(out_dir / "sweep.csv")}
    Path(paths["markdown"]).write_text("\n".join(md))
    fields = ["beta", "k", "reward", "reward_se", "self_rouge_l", "self_rouge_l_se", "ms_per_token"]
    with open(paths["csv"], "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for (b, k), c in sorted(cells.items()):
            writer.writerow({"beta": b, "k": k, **c})
    for name, fig in sweep_figures(cells, method, betas, ks, reward_name).items():
        paths.update(save(fig, out_dir, name))
    if tensorboard_dir is not None:
        from torch.utils.tensorboard import SummaryWriter

        with SummaryWriter(str(tensorboard_dir)) as tb:
            for (b, k), c in cells.items():
                for key in ("reward", "self_rouge_l", "ms_per_token"):
                    if key in c:
                        tb.add_scalar(f"sweep/{key}/k={k}", c[key], int(round(b * 100)))
            tb.add_text("sweep", "\n".join(md), 0)
        paths["tensorboard"] = str(tensorboard_dir)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pargs sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "-c", "--config", required=True, help="a predict config (e.g. lightning_configs/quickstart/predict.yaml)"
    )
    parser.add_argument("--method", default="pargs", help="the guided method of the config to sweep")
    parser.add_argument("--betas", type=float, nargs="+", default=list(BETAS))
    parser.add_argument("--ks", type=int, nargs="+", default=list(KS))
    parser.add_argument("--out", required=True, help="output directory (predictions, tables, heatmaps)")
    parser.add_argument("--limit", type=int, help="decode only the first N prompts")
    parser.add_argument(
        "--reward-name",
        help="what the reward is, for the tables and heatmaps, where the lines do not say (default: the reward_name "
        "the prediction lines carry)",
    )
    parser.add_argument(
        "--on_change",
        choices=("refuse", "restart", "adopt"),
        help="predictions already in --out that the config would not write: refuse (default), "
        "restart (decode them again) or adopt (see pargs predict --help)",
    )
    ns = parser.parse_args(argv)
    out = Path(ns.out)
    config = sweep_config(yaml.safe_load(Path(ns.config).read_text()), ns.method, ns.betas, ns.ks, out, ns.limit)
    derived = out / "sweep_predict.yaml"
    out.mkdir(parents=True, exist_ok=True)
    derived.write_text(
        f"# pargs predict -c {derived}\n# written by pargs sweep from {ns.config}\n"
        + yaml.safe_dump(config, sort_keys=False)
    )
    lightning_cli(["predict", "-c", str(derived), *(["--on_change", ns.on_change] if ns.on_change else [])])
    from pargs.report import load_predictions, reward_name_of

    records, _ = load_predictions([out / "predictions"])
    cells = tabulate(records, ns.method, ns.betas, ns.ks)
    reward_name = reward_name_of(records, ns.reward_name)
    paths = write_sweep(cells, ns.method, ns.betas, ns.ks, out, out / "tensorboard", reward_name)
    print(Path(paths["markdown"]).read_text())
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0
