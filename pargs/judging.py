"""``pargs judge``: pairwise win / tie / lose rates of one method against the others (the paper's
GPT-4 evaluation table), from prediction files and a pluggable judge.

The judge is a local causal LM (``--model DIR``, :class:`~pargs.metrics.judge.LocalLMJudge`) or any
callable ``judge(prompt, first, second) -> "A" | "B" | "tie"`` named as ``--judge module:attribute``
(a factory taking no arguments is called once to build it). Nothing calls a network service unless
the callable you name does. Each prompt is judged in both orders (see
:func:`~pargs.metrics.judge.win_tie_rate`) on one sample per method (``--sample``, default 0).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from pargs.errors import ConfigError
from pargs.file_names import file_name

if TYPE_CHECKING:
    from pargs.metrics.judge import Judge, WinTie

TEMPLATE_FIELDS = ("{prompt}", "{first}", "{second}")


def load_template(path: str | Path) -> str:
    """A judge prompt template from a text file; it must use ``{prompt}``, ``{first}`` and ``{second}``."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the judge template ({err})") from None
    missing = [f for f in TEMPLATE_FIELDS if f not in text]
    if missing:
        raise ConfigError(
            f"{path}: the judge template must contain {', '.join(TEMPLATE_FIELDS)}; missing {', '.join(missing)}"
        )
    try:
        text.format(prompt="", first="", second="")
    except (KeyError, IndexError, ValueError) as err:
        raise ConfigError(
            f"{path}: the judge template is not a valid format string ({err!r}); write literal braces as {{{{ and }}}}"
        ) from None
    return text


def import_judge(target: str) -> Judge:
    """``module:attribute`` -> the callable judge (an attribute taking no arguments is a factory); the
    current directory is searched too."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"--judge must look like module:attribute, got {target!r}")
    if os.getcwd() not in sys.path:  # as `python -m` would: modules in the current directory are found
        sys.path.insert(0, os.getcwd())
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"--judge {target}: {err}") from None
    if isinstance(obj, type) or _takes_no_arguments(obj):
        obj = obj()
    if not callable(obj):
        raise ConfigError(f"--judge {target} is not callable")
    return obj


def _takes_no_arguments(fn) -> bool:
    try:
        return not inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class Pairs:
    """The prompts two methods share, with one response of each."""

    ids: list[str]
    prompts: list[str]
    ours: list[str]
    theirs: list[str]


def paired_responses(ours: dict[str, dict], theirs: dict[str, dict]) -> Pairs:
    """Prompts and both methods' responses for every prompt id both have (records keyed by id)."""
    ids = sorted(set(ours) & set(theirs))
    return Pairs(
        ids, [ours[i]["prompt"] for i in ids], [ours[i]["response"] for i in ids], [theirs[i]["response"] for i in ids]
    )


def judge_table(results: dict[str, WinTie], method: str) -> str:
    """Markdown: one row per opponent, rates in percent."""
    lines = [f"| {method} vs | prompts | win % | tie % | lose % | win + tie % |", "|---|---:|---:|---:|---:|---:|"]
    for other, r in results.items():
        lines.append(
            f"| {other} | {r.n} | {100 * r.win:.1f} | {100 * r.tie:.1f} | {100 * r.lose:.1f} | "
            f"{100 * r.win_or_tie:.1f} |"
        )
    return "\n".join(lines)


def pair_methods(records: list[dict], method: str, against: Sequence[str] | None, sample: int = 0) -> dict[str, Pairs]:
    """``method``'s pairs with each of ``against`` (default: every other method), checked."""
    methods = sorted({r["method"] for r in records})
    by_method: dict[str, dict[str, dict]] = {m: {} for m in methods}  # the chosen sample, keyed by prompt id
    for rec in records:
        if rec["sample"] == sample:
            by_method[rec["method"]][rec["id"]] = rec
    if method not in methods:
        raise ConfigError(f"method {method!r} is not in the predictions (they hold {methods})")
    others = list(against) if against else [m for m in methods if m != method]
    unknown = [m for m in others if m not in methods]
    if unknown:
        raise ConfigError(f"methods {unknown} are not in the predictions (they hold {methods})")
    if method in others or len(set(others)) != len(others):
        raise ConfigError(f"--against must name other methods, each once; got {others}")
    pairs = {other: paired_responses(by_method[method], by_method[other]) for other in others}
    for other, p in pairs.items():
        if not p.ids:
            raise ConfigError(f"{method!r} and {other!r} share no prompt with a sample {sample}")
    return pairs


def run_judge(pairs: dict[str, Pairs], judge: Judge, method: str) -> dict[str, WinTie]:
    """Win / tie / lose of ``method`` against each opponent; an error names the prompt id and the methods."""
    from pargs.metrics.judge import win_tie_rate

    bar = tqdm(total=2 * sum(len(p.ids) for p in pairs.values()), desc=f"judging {method}", unit="verdict")
    results = {}
    with bar:
        for other, p in pairs.items():
            id_of = dict(zip(p.prompts, p.ids))

            def counted(prompt: str, first: str, second: str, other=other, id_of=id_of) -> str:
                try:
                    verdict = judge(prompt, first, second)
                except ConfigError as err:
                    raise ConfigError(f"judging prompt id {id_of[prompt]!r} ({method} vs {other}): {err}") from None
                bar.update()
                return verdict

            try:
                results[other] = win_tie_rate(counted, p.prompts, p.ours, p.theirs)
            except ValueError as err:  # a verdict other than "A", "B" or "tie"
                raise ConfigError(f"judging {method} vs {other}: {err}") from None
    return results


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="pargs judge", description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", help="run directories (their predictions/ folder) or prediction files")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--model", help="a local causal LM directory (Hugging Face) that judges")
    who.add_argument("--judge", help="module:attribute of a judge callable (or of a factory taking no arguments)")
    parser.add_argument("--method", default="pargs", help="the method judged against the others (default: pargs)")
    parser.add_argument("--against", nargs="+", help="opponents (default: every other method)")
    parser.add_argument("--template", help="text file with the judge prompt ({prompt}, {first}, {second})")
    parser.add_argument(
        "--tie-margin", type=float, default=0.0, help="--model: answers within this log-probability margin are a tie"
    )
    parser.add_argument("--sample", type=int, default=0, help="which sample of each method to judge")
    parser.add_argument("--out", help="Markdown output (default: <first run>/report/judge_<method>.md)")
    ns = parser.parse_args(list(argv))
    # imported after parsing: pargs.metrics and pargs.report import torch, which `pargs judge --help` need not wait for
    from pargs.metrics.judge import DEFAULT_TEMPLATE
    from pargs.report import default_report_dir, load_predictions, run_inputs

    records, _ = load_predictions(run_inputs(ns.inputs))  # the cheap checks first, then the judge model
    pairs = pair_methods(records, ns.method, ns.against, ns.sample)
    if ns.judge:
        if ns.template:
            raise ConfigError("--template goes with --model; a --judge callable renders its own prompt")
        judge = import_judge(ns.judge)
    else:
        from pargs.metrics.judge import LocalLMJudge, answer_token_ids
        from pargs.models.loading import ModelSpec, check_model_source, load_causal_lm, load_tokenizer

        template = load_template(ns.template) if ns.template else DEFAULT_TEMPLATE
        check_model_source(ns.model, "--model")
        spec = ModelSpec(path=ns.model)
        tokenizer = load_tokenizer(spec)
        answer_token_ids(tokenizer)  # a tokenizer unfit to judge fails before the model loads
        judge = LocalLMJudge(load_causal_lm(spec, tokenizer).eval(), tokenizer, template, ns.tie_margin)
    results = run_judge(pairs, judge, ns.method)
    table = judge_table(results, ns.method)
    out = Path(ns.out) if ns.out else default_report_dir(ns.inputs[0]) / f"judge_{file_name(ns.method)}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table + "\n\nEach prompt judged in both orders; a method wins only when both orders agree.\n")
    print(table)
    print(f"\nwritten to {out}")
    return 0
