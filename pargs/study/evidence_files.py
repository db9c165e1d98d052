"""What a study's claims are computed from, as compact files: ``<out>/report/evidence/``.

The report (:mod:`pargs.study.report`) is computed from these files alone, both when a study writes it and
when ``pargs study --recompute DIR`` rebuilds it (no models, no predictions, no seed directories): the study
gathers them from its seed directories (:func:`gather`), writes them (:func:`save`), reads them back
(:func:`load`) and only then computes, so a recomputed report equals the original. Layout (every CSV is
gzipped, UTF-8, with a header; floats written in full precision, so they read back bit for bit; an empty
cell is None; the gzip header holds no time stamp, so the same rows give the same bytes):

``manifest.json``
    ``format``, ``seeds``, ``ablation_seeds``, ``plan`` (:class:`pargs.study.plan.StudyPlan`), per seed
    ``tuning`` (its ``tuning.json``) and ``ground_truth`` (the Monte Carlo ground truth's m), per seed and
    step the ``records`` (seconds, load average, CPU count and environment of each step,
    :mod:`pargs.study.ledger`), the training ``budget`` (from seed 0's data and step configs), and ``files``
    (each file's columns).
``rewards.csv.gz``
    One row per seed, test method and prompt: ``samples`` decoded, mean oracle ``reward`` over them,
    ``self_rouge_l`` (mean pairwise ROUGE-L of the samples; empty with one sample), decoding ``seconds`` and
    generated ``tokens`` summed over them.
``ground_truth.csv.gz``
    One row per seed, reward model, preference pair and fraction of the response: the RM's agreement with the
    label and with the Monte Carlo ground truth (:class:`pargs.metrics.ground_truth_agreement.PairOutcome`).
``prefix_values.csv.gz``
    One row per seed, pair and fraction: the Monte Carlo value (mean, SE, completions, truncated ones) of the
    chosen and the rejected response's prefix (:class:`pargs.metrics.prefix_values.PrefixComparison`).
``ablation.csv.gz``
    One row per seed, ablation method and prompt (as ``rewards.csv.gz``, without text metrics); absent
    without the ablation.

``decisions.csv.gz``
    The decision-level values: one row per seed, decoding state and candidate token, ``seed`` and then the
    columns of each seed's own ``decisions.csv.gz`` (:data:`pargs.study.decisions.COLUMNS`: the state, its
    prompt and prefix, the candidate, its Monte Carlo value and every scorer's score); absent for a study from
    before the ``decisions`` step.

The files are written and read by :mod:`pargs.study.csv_gz`.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from pargs.atomic_files import replace_file
from pargs.errors import ConfigError
from pargs.metrics.ground_truth_agreement import PairOutcome
from pargs.study import decisions
from pargs.study.csv_gz import read_csv_gz, write_csv_gz
from pargs.study.evidence import Evidence
from pargs.study.plan import plan_from_dict

FORMAT = 1  #: the layout's version in manifest.json
MANIFEST = "manifest.json"
#: every row file of the layout, with its columns and their types (str, int, float, "bool" or "float?" / "bool?"
#: for a cell that may be empty)
FILES: dict[str, dict[str, object]] = {
    "rewards.csv.gz": {
        "seed": int,
        "method": str,
        "prompt": str,
        "samples": int,
        "reward": float,
        "self_rouge_l": "float?",
        "seconds": float,
        "tokens": int,
    },
    "ground_truth.csv.gz": {
        "seed": int,
        "rm": str,
        "pair_id": str,
        "fraction": float,
        "label": float,
        "truth": float,
        "z": float,
        "contrast": "bool?",
    },
    "prefix_values.csv.gz": {
        "seed": int,
        "pair_id": str,
        "fraction": float,
        "length_w": int,
        "length_l": int,
        **{f"{side}_{k}": t for side in ("chosen", "rejected") for k, t in (("mean", float), ("se", float))},
        **{f"{side}_{k}": int for side in ("chosen", "rejected") for k in ("n", "truncated")},
    },
    "ablation.csv.gz": {"seed": int, "method": str, "prompt": str, "samples": int, "reward": float},
    decisions.FILE: {"seed": int, **decisions.COLUMNS},
}


@dataclass
class Tables:
    """An evidence folder in memory: the manifest and each file's rows (dicts keyed by column)."""

    manifest: dict
    rows: dict[str, list[dict]] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------ writing
def save(tables: Tables, folder: Path) -> dict[str, str]:
    """Write an evidence folder (the files of the layout that have rows, and the manifest); return the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, columns in FILES.items():
        if name in tables.rows:
            write_csv_gz(folder / name, list(columns), tables.rows[name])
            paths[name] = str(folder / name)
        elif (folder / name).is_file():  # a file of an earlier report this study no longer has (e.g. the ablation)
            (folder / name).unlink()
    manifest = {
        **tables.manifest,
        "format": FORMAT,
        "files": {n: list(c) for n, c in FILES.items() if n in tables.rows},
    }
    replace_file(folder / MANIFEST, [(json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()])
    paths[MANIFEST] = str(folder / MANIFEST)
    return paths


# ------------------------------------------------------------------------------------------------ reading
def load_tables(folder: Path) -> Tables:
    """Read an evidence folder written by :func:`save`."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise ConfigError(
            f"{path} is missing: {folder} holds no study evidence (pargs study writes it under <out>/report/evidence)"
        )
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise ConfigError(f"{path}: evidence format {manifest.get('format')!r}, this pargs reads format {FORMAT}")
    rows = {name: read_csv_gz(folder / name, FILES[name]) for name in manifest["files"] if name in FILES}
    return Tables(manifest, rows)


def load(folder: Path) -> Evidence:
    """The :class:`pargs.study.evidence.Evidence` of an evidence folder."""
    return to_evidence(load_tables(folder))


# ------------------------------------------------------------------------------------------------ gathering
def _prediction_rows(folder: Path, seed: int, text_metrics: bool) -> list[dict]:
    """Per method and prompt of one predictions folder: samples, mean reward, self-ROUGE-L, seconds, tokens."""
    from pargs.metrics.diversity import pairwise_rouge_l
    from pargs.report import load_predictions

    records, _ = load_predictions([folder])
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in records:
        groups[(r["method"], r["id"])].append(r)
    rows = []
    for (method, prompt), recs in groups.items():
        rewards = [r["reward"] for r in recs]
        row = {
            "seed": seed,
            "method": method,
            "prompt": prompt,
            "samples": len(recs),
            "reward": sum(rewards) / len(rewards),
        }
        if text_metrics:
            texts = [r["response"] for r in recs]
            row["self_rouge_l"] = pairwise_rouge_l(texts) if len(texts) >= 2 else None
            row["seconds"] = math.fsum(r["decode_seconds"] for r in recs)
            row["tokens"] = sum(r["tokens"] for r in recs)
        rows.append(row)
    return rows


def _ground_truth_rows(path: Path, seed: int) -> tuple[list[dict], list[dict], int]:
    """The outcome rows and the prefix-value rows of one seed's ground_truth.json, and its m."""
    gt = json.loads(path.read_text())
    outcomes = [{"seed": seed, "rm": rm, **o} for rm, rows in gt["outcomes"].items() for o in rows]
    values = []
    for c in gt["ground_truth"]["comparisons"]:
        row = {"seed": seed, **{k: c[k] for k in ("pair_id", "fraction", "length_w", "length_l")}}
        for side in ("chosen", "rejected"):
            row.update({f"{side}_{k}": c[side].get(k, 0) for k in ("mean", "se", "n", "truncated")})
        values.append(row)
    return outcomes, values, gt["ground_truth"]["m"]


def _step_records(folder: Path) -> dict[str, dict]:
    """Per step of one seed: the fields of its record the report uses (pargs/study/ledger.py)."""
    out = {}
    for p in sorted(folder.glob("*.json")):
        rec = json.loads(p.read_text())
        out[p.stem] = {
            "seconds": rec["seconds"],
            "load_average": rec.get("load_average"),
            "cpu_count": rec.get("cpu_count") or os.cpu_count(),
            "environment": rec.get("environment"),
        }
    return out


def _count_lines(paths) -> int:
    total = 0
    for path in paths:
        with open(path) as fh:
            total += sum(1 for _ in fh)
    return total


def training_budget(seed_dir: Path) -> dict:
    """What the models of a seed were trained on, from its data and its step configs (the report's budget table)."""
    recs = {p.stem: json.loads(p.read_text()) for p in sorted((seed_dir / "steps").glob("*.json"))}

    def epochs(step: str) -> int:
        return recs[step]["config"]["trainer"]["max_epochs"]

    def batch(step: str) -> int:
        return recs[step]["config"]["data"]["init_args"]["batch_size"]

    n_pairs = _count_lines([seed_dir / "data" / "pairs_train.jsonl"])
    rollouts = _count_lines(sorted((seed_dir / "rollouts").glob("*.jsonl")))
    held_out = recs["value"]["config"]["data"]["init_args"].get("val_fraction", 0.0)
    ppo = recs["ppo-0"]["config"]
    return {
        "n_pairs": n_pairs,
        "rm_epochs": epochs("reward_full"),
        "rm_steps": math.ceil(n_pairs / batch("reward_full")) * epochs("reward_full"),
        "rollouts": rollouts,
        "rollout_samples": recs["value_rollouts"]["config"]["model"]["init_args"]["methods"][0]["samples"],
        "value_held_out": held_out,
        "value_epochs": epochs("value"),
        "value_steps": math.ceil(rollouts * (1 - held_out) / batch("value")) * epochs("value"),
        "dpo_epochs": epochs("dpo-0"),
        "dpo_steps": math.ceil(n_pairs / batch("dpo-0")) * epochs("dpo-0"),
        "ppo_batch": ppo["data"]["init_args"]["batch_size"],
        "ppo_epochs": epochs("ppo-0"),
        "ppo_updates": ppo["model"]["init_args"]["ppo_epochs"],
    }


def gather(out: Path, seeds: list[int], ablation_seeds: list[int], plan) -> Tables:
    """Read what the claims are computed from out of a study's seed directories (their main steps finished)."""
    manifest: dict = {"seeds": list(seeds), "ablation_seeds": [], "plan": plan.as_dict(), "tuning": {}}
    manifest.update({"ground_truth": {}, "records": {}})
    rows: dict[str, list[dict]] = {"rewards.csv.gz": [], "ground_truth.csv.gz": [], "prefix_values.csv.gz": []}
    for s in seeds:
        d = Path(out) / f"seed-{s}"
        rows["rewards.csv.gz"] += _prediction_rows(d / "predictions" / "test", s, text_metrics=True)
        manifest["tuning"][str(s)] = json.loads((d / "tuning.json").read_text())
        outcomes, values, m = _ground_truth_rows(d / "ground_truth.json", s)
        rows["ground_truth.csv.gz"] += outcomes
        rows["prefix_values.csv.gz"] += values
        manifest["ground_truth"][str(s)] = {"m": m}
        manifest["records"][str(s)] = _step_records(d / "steps")
        if (d / decisions.FILE).is_file():  # a study from before the decisions step has none
            own = decisions.read_rows(d / decisions.FILE)
            rows.setdefault(decisions.FILE, []).extend({"seed": s, **r} for r in own)
    manifest["budget"] = training_budget(Path(out) / f"seed-{seeds[0]}")
    for s in ablation_seeds:
        folder = Path(out) / f"seed-{s}" / "predictions" / "ablation_decode"
        if folder.is_dir():
            rows.setdefault("ablation.csv.gz", []).extend(_prediction_rows(folder, s, text_metrics=False))
            manifest["ablation_seeds"].append(s)
    return Tables(manifest, rows)


# ------------------------------------------------------------------------------------------------ to Evidence
def _per_prompt(rows: list[dict], column: str) -> dict[str, dict[int, dict[str, float]]]:
    out: dict[str, dict[int, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        if r[column] is not None:
            out[r["method"]][r["seed"]][r["prompt"]] = r[column]
    return {m: dict(per) for m, per in out.items()}


def _gt_meta(values: list[dict], m: int) -> dict:
    ses: dict[float, list[float]] = defaultdict(list)
    for r in values:
        for side in ("chosen", "rejected"):
            if r[f"{side}_n"]:
                ses[r["fraction"]].append(r[f"{side}_se"])
    return {
        "m": m,
        "pairs": len({r["pair_id"] for r in values}),
        "mean_se": {f: sum(v) / len(v) for f, v in ses.items()},
    }


def _method_fields(ev: Evidence, rewards: list[dict]) -> None:
    """Rewards, self-ROUGE-L, samples, prompts and ms per token of the test methods, from rewards.csv.gz."""
    ev.rewards, ev.diversity = _per_prompt(rewards, "reward"), _per_prompt(rewards, "self_rouge_l")
    seconds: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    tokens: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for r in rewards:
        ev.samples[r["method"]] = max(ev.samples.get(r["method"], 0), r["samples"])
        seconds[r["method"]][r["seed"]].append(r["seconds"])
        tokens[r["method"]][r["seed"]] += r["tokens"]
    ev.timing = {
        m: {s: 1000 * math.fsum(seconds[m][s]) / t if t else math.nan for s, t in per.items()}
        for m, per in tokens.items()
    }
    ev.prompts = {m: len(per[ev.seeds[-1]]) for m, per in ev.rewards.items()}
    ev.best_of_n = next((m for m in ev.rewards if m.startswith("best-of-")), ev.best_of_n)


def _ground_truth_fields(ev: Evidence, outcomes: list[dict], values: list[dict], manifest: dict) -> None:
    """The RMs' outcomes, the prefix values and the ground truth's m, pairs and mean SE per fraction."""
    per_seed: dict[int, dict[str, list]] = {s: defaultdict(list) for s in ev.seeds}
    for r in outcomes:
        per_seed[r["seed"]][r["rm"]].append(PairOutcome(**{k: v for k, v in r.items() if k not in ("seed", "rm")}))
    ev.outcomes = {s: dict(per) for s, per in per_seed.items()}
    by_seed: dict[int, list[dict]] = defaultdict(list)
    for r in values:
        by_seed[r["seed"]].append(r)
    ev.prefix_values = dict(by_seed)
    ev.gt_meta = {s: _gt_meta(by_seed[s], manifest["ground_truth"][str(s)]["m"]) for s in ev.seeds}


def to_evidence(tables: Tables) -> Evidence:
    """The :class:`pargs.study.evidence.Evidence` the report is computed from."""
    man, rows = tables.manifest, tables.rows
    ev = Evidence(list(man["seeds"]), {}, {}, {}, {}, {}, {}, {}, {}, {})
    _method_fields(ev, rows["rewards.csv.gz"])
    ev.tuning = {int(s): t for s, t in man["tuning"].items()}
    _ground_truth_fields(ev, rows["ground_truth.csv.gz"], rows["prefix_values.csv.gz"], man)
    ablation = _per_prompt(rows.get("ablation.csv.gz", []), "reward")
    ev.ablation = {m: {s: sum(p.values()) / len(p) for s, p in per.items()} for m, per in ablation.items()}
    ev.ablation_prompts = {m: len(next(reversed(per.values()))) for m, per in ablation.items()}
    ev.records = {int(s): recs for s, recs in man["records"].items()}
    ev.budget, ev.plan = man["budget"], plan_from_dict(man["plan"])
    ev.ablation_seeds = list(man["ablation_seeds"])
    for r in rows.get(decisions.FILE, []):
        ev.decisions.setdefault(r["seed"], []).append({k: v for k, v in r.items() if k != "seed"})
    return ev
