"""``pargs prefix-agreement --pairs F --rm DIR [DIR ...]``: how often reward models prefer the chosen
response of held-out pairs at 25/50/75/100 % of it (the paper's Table 12 view; the maths:
:mod:`pargs.metrics.prefix_agreement`)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path


def agreement_of_models(pairs_file: str | Path, rm_dirs: Sequence[str | Path], max_length: int | None = None) -> str:
    """The Markdown table of each reward model directory (named by its folder) on the pairs of a JSONL file."""
    from pargs.metrics.prefix_agreement import agreement_table, prefix_agreement
    from pargs.models.loading import ModelSpec, check_model_source, load_reward_model, load_tokenizer
    from pargs.records import load_preferences

    for path in rm_dirs:  # every directory before the first model loads
        check_model_source(str(path), "--rm")
    pairs, _ = load_preferences(pairs_file)
    results = {}
    for path in rm_dirs:
        spec = ModelSpec(path=str(path))
        tokenizer = load_tokenizer(spec)
        model = load_reward_model(spec, tokenizer).eval()
        results[Path(path).name] = prefix_agreement(model, tokenizer, pairs, max_length=max_length)
    return agreement_table(results, len(pairs))


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, print the table (and write it with ``--out``)."""
    parser = argparse.ArgumentParser(
        prog="pargs prefix-agreement",
        description="How often reward models prefer the chosen response at 25/50/75/100 %.",
    )
    parser.add_argument("--pairs", required=True, help="preference JSONL (held-out pairs)")
    parser.add_argument("--rm", nargs="+", required=True, help="reward model directories (causal or encoder RMs)")
    parser.add_argument("--out", help="write the Markdown table here too")
    parser.add_argument("--max-length", type=int, default=None, help="truncate pairs to this many tokens")
    ns = parser.parse_args(argv)
    table = agreement_of_models(ns.pairs, ns.rm, ns.max_length)
    print(table)
    if ns.out:
        Path(ns.out).parent.mkdir(parents=True, exist_ok=True)
        Path(ns.out).write_text(table + "\n")
        print(f"\nwritten to {ns.out}")
    return 0
