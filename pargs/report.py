"""``pargs report``: the results table (Markdown, CSV), figures and TensorBoard summaries from predictions.

Reads prediction JSONL lines ``{"id", "method", "sample", "prompt", "response", "reference", "tokens",
"stop", "reward", "decode_seconds", ...}`` (what ``pargs predict`` writes) and produces, per method:
average evaluation reward +- SE (samples of a prompt averaged first), a Wilcoxon signed-rank p-value
against the baseline paired by prompt, ROUGE-L and corpus BLEU against references, self-ROUGE-L (mean
pairwise ROUGE-L over the samples of a prompt, for methods with several; lower = more diverse), mean
response length, time per generated token and FLOPs per generated token, each with its ratio to plain
sampling.

Corpus BLEU is SacreBLEU's ``corpus_bleu`` over every response of the method: each sample of each prompt
is one hypothesis, scored with its prompt's references (so a method with 10 samples per prompt has 10
segments per prompt, each with the same references). The mean sentence BLEU (with its SE) goes to the
CSV only. FLOPs follow the paper's convention (:mod:`pargs.metrics.flops`).
"""

from __future__ import annotations

import csv
import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from pargs.errors import ConfigError
from pargs.file_names import file_name
from pargs.metrics.diversity import diversity
from pargs.metrics.reward_stats import mean_se, per_prompt_means, reward_summary
from pargs.metrics.runtime import time_per_token, time_per_token_se
from pargs.metrics.significance import paired_wilcoxon
from pargs.metrics.text_overlap import corpus_bleu, rouge_l, sentence_bleu
from pargs.records import RecordError, iter_jsonl

log = logging.getLogger(__name__)

_FIELDS = {
    "id": (str, int),
    "method": (str,),
    "sample": (int,),
    "prompt": (str,),
    "response": (str,),
    "tokens": (int,),
    "decode_seconds": (int, float),
    "reward": (int, float, type(None)),
}


@dataclass
class MethodRow:
    """One row of the results table."""

    method: str
    prompts: int
    samples: int  #: samples per prompt (most common)
    reward: float | None = None
    reward_se: float | None = None
    p_value: float | None = None  #: Wilcoxon, H1: baseline > this method (None for the baseline)
    rouge_l: float | None = None
    rouge_l_se: float | None = None
    corpus_bleu: float | None = None  #: SacreBLEU corpus BLEU, every sample a hypothesis (the table's BLEU)
    sentence_bleu: float | None = None  #: mean over prompts of the mean sentence BLEU (CSV only)
    sentence_bleu_se: float | None = None
    self_rouge_l: float | None = None  #: mean pairwise ROUGE-L among a prompt's samples (lower = more diverse)
    self_rouge_l_se: float | None = None
    tokens: float = 0.0  #: mean response length
    ms_per_token: float = 0.0
    ms_per_token_se: float | None = None  #: across prompts (ratio estimator, pargs/metrics/runtime.py)
    overhead: float | None = None  #: time per token / plain sampling's
    gflops_per_token: float | None = None  #: estimated from the models' shapes (lines with ``flops``)
    flops_overhead: float | None = None  #: FLOPs per token / plain sampling's


@dataclass
class Report:
    """What ``build_report`` computed and wrote."""

    rows: list[MethodRow]
    baseline: str
    plain: str
    hypothesis: str
    n_lines: int
    n_duplicates: int
    reward_name: str = "evaluation reward"  #: what ``reward`` is (the eval RM's name, or the synthetic oracle)
    paths: dict[str, str] = field(default_factory=dict)
    #: set when the methods cover different prompt sets: which cover which, and what that does to the columns
    coverage: str | None = None
    #: set when lines of prompts no longer in the prompt file were left out (:func:`read_predictions`)
    set_aside: str | None = None
    #: set when no method has a p-value: why (the baseline has no scored line here) and how to choose another
    no_p_values: str | None = None


def run_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """Run directories become their ``predictions/`` folder; files and other folders stay as given."""
    return [Path(p) / "predictions" if (Path(p) / "predictions").is_dir() else Path(p) for p in inputs]


def default_report_dir(first_input: str | Path) -> Path:
    """``<run>/report`` for the first input (a run directory, or the folder of a prediction file)."""
    first = Path(first_input)
    return (first if first.is_dir() else first.parent) / "report"


def prediction_paths(inputs: Sequence[str | Path]) -> list[Path]:
    """Files named directly, plus every ``*.jsonl`` in directories named."""
    paths = []
    for item in map(Path, inputs):
        found = sorted(item.glob("*.jsonl")) if item.is_dir() else [item]
        if not found:
            raise RecordError(item, None, None, "holds no prediction files (*.jsonl)")
        paths += found
    return paths


@dataclass
class Predictions:
    """What :func:`read_predictions` read."""

    records: list[dict]  #: one per (prompt id, method, sample)
    duplicates: int = 0  #: lines whose key an earlier line had (the last one is kept)
    set_aside: int = 0  #: lines of prompts that their directory's prompt file no longer holds (left out)
    set_aside_prompts: int = 0  #: how many such prompts


def _current_prompt_ids(folder: Path, cache: dict) -> set[str] | None:
    """The prompt ids ``pargs predict`` last decoded into ``folder`` (its manifest), None when unknown."""
    if folder not in cache:
        from pargs.lit.manifest import read_manifest

        prompts = (read_manifest(folder) or {}).get("prompts") or {}
        cache[folder] = set(map(str, prompts["ids"])) if "ids" in prompts else None
    return cache[folder]


def read_predictions(inputs: Sequence[str | Path]) -> Predictions:
    """Validated prediction lines, one per (prompt id, method, sample): a key seen twice keeps its last line
    (a rewritten line of a resumed run). Lines of a prompt that the directory's last ``predict`` no longer
    found in its prompt file (removed, or beyond a lowered ``limit``) are set aside: kept in the files, left
    out of every table, counted."""
    out = Predictions([])
    by_key: dict[tuple, dict] = {}
    prompt_ids: dict[Path, set[str] | None] = {}
    aside: set[tuple[Path, str]] = set()
    for path in prediction_paths(inputs):
        current = _current_prompt_ids(path.parent, prompt_ids)
        for line, rec in iter_jsonl(path):
            for name, types in _FIELDS.items():
                if name not in rec:
                    raise RecordError(path, line, name, "is missing (is this a pargs predictions file?)")
                if not isinstance(rec[name], types) or (isinstance(rec[name], bool)):
                    raise RecordError(
                        path,
                        line,
                        name,
                        f"must be {'/'.join(t.__name__ for t in types)}, got {type(rec[name]).__name__}",
                    )
            for name, value in rec.items():
                if isinstance(value, float) and not math.isfinite(value):
                    raise RecordError(
                        path,
                        line,
                        name,
                        f"is {value}, not a finite number, so no mean or test over it means anything: decode this "
                        "prediction again (delete the line, then run the same pargs predict: it decodes what is "
                        "missing), or leave this file out",
                    )
            if current is not None and str(rec["id"]) not in current:
                out.set_aside += 1
                aside.add((path.parent, str(rec["id"])))
                continue
            key = (str(rec["id"]), rec["method"], rec["sample"])
            out.duplicates += key in by_key
            by_key[key] = dict(rec, id=str(rec["id"]))
    out.records = list(by_key.values())
    out.set_aside_prompts = len(aside)
    if out.duplicates:
        log.warning("%d prediction lines repeat an earlier (id, method, sample); the last one is used", out.duplicates)
    if out.set_aside:
        log.warning("%s", set_aside_note(out))
    return out


def set_aside_note(predictions: Predictions) -> str:
    """One sentence on the lines :func:`read_predictions` left out."""
    return (
        f"set aside {predictions.set_aside} prediction lines of {predictions.set_aside_prompts} prompts that the "
        "prompt file of their last pargs predict no longer holds (the lines stay in the files)"
    )


def load_predictions(inputs: Sequence[str | Path]) -> tuple[list[dict], int]:
    """:func:`read_predictions`' lines and number of duplicates."""
    predictions = read_predictions(inputs)
    return predictions.records, predictions.duplicates


def _row(method: str, recs: list[dict], baseline_scores: dict[str, float] | None) -> MethodRow:
    samples: dict[str, list[str]] = defaultdict(list)
    for r in recs:
        samples[r["id"]].append(r["response"])
    counts = sorted(len(v) for v in samples.values())
    row = MethodRow(method, len(samples), counts[len(counts) // 2])
    scored = [(r["id"], r["reward"]) for r in recs if r["reward"] is not None]
    if scored:
        per_prompt = per_prompt_means(scored)
        row.reward, row.reward_se, _ = reward_summary(per_prompt)
        if baseline_scores is not None and set(baseline_scores) & set(per_prompt):  # no shared prompt: no p
            row.p_value = paired_wilcoxon(baseline_scores, per_prompt, "greater").p_value
    with_refs = [r for r in recs if r.get("reference")]
    if with_refs:
        rl = per_prompt_means((r["id"], rouge_l(r["response"], r["reference"])) for r in with_refs)
        bl = per_prompt_means((r["id"], sentence_bleu(r["response"], r["reference"])) for r in with_refs)
        row.rouge_l, row.rouge_l_se = mean_se(list(rl.values()))
        row.sentence_bleu, row.sentence_bleu_se = mean_se(list(bl.values()))
        row.corpus_bleu = corpus_bleu([r["response"] for r in with_refs], [r["reference"] for r in with_refs])
    if row.samples >= 2:
        row.self_rouge_l, row.self_rouge_l_se, _ = diversity(samples)
    row.tokens = sum(r["tokens"] for r in recs) / len(recs)
    row.ms_per_token = 1000 * time_per_token(recs)
    row.ms_per_token_se = 1000 * time_per_token_se(recs)
    if all(isinstance(r.get("flops"), (int, float)) for r in recs):
        row.gflops_per_token = sum(r["flops"] for r in recs) / max(1, sum(r["tokens"] for r in recs)) / 1e9
    return row


def prompt_coverage(by_method: dict[str, list[dict]], baseline: str) -> str | None:
    """None when every method covers the same prompts; else one line naming the methods and their prompt
    counts (methods covering the same prompts together) and saying what the table compares then."""
    groups: dict[frozenset, list[str]] = defaultdict(list)
    for method, recs in by_method.items():
        groups[frozenset(r["id"] for r in recs)].append(method)
    if len(groups) < 2:
        return None
    common = frozenset.intersection(*groups)
    covered = ", ".join(
        f"{' / '.join(sorted(methods))}: {len(ids)}"
        for ids, methods in sorted(groups.items(), key=lambda g: (len(g[0]), sorted(g[1])))
    )
    return (
        f"methods cover different prompt sets ({covered} prompts; {len(common)} common to all): each mean is "
        f"over the method's own prompts, and p pairs a method with {baseline} on their shared prompts only; "
        "decode the same prompt file with every method to compare them"
    )


def _fmt(value: float | None, se: float | None = None, digits: int = 3) -> str:
    if value is None:
        return "-"
    text = f"{value:.{digits}f}"
    if se is not None and not math.isnan(se):
        text += f" ± {se:.{digits}f}"
    return text


def _p(p: float | None) -> str:
    return "-" if p is None else f"{p:.2e}" if p < 1e-3 else f"{p:.3f}"


HEADER = [
    "method",
    "prompts",
    "samples",
    "reward ± SE",
    "p",
    "ROUGE-L ± SE",
    "corpus BLEU",
    "self-ROUGE-L ± SE (lower = more diverse)",
    "tokens",
    "ms/token",
    "× plain",
    "GFLOPs/token",
    "FLOPs × plain",
]

#: the FLOPs convention in one sentence, under the table (pargs/metrics/flops.py states it in full)
FLOPS_NOTE = (
    "GFLOPs/token: estimated from the models' shapes by the paper's convention (section 5.3), the same for every "
    "method: 2N + 2 n_layers n_ctx d_model per token and model (Kaplan), prompt prefill excluded; plain decoding "
    "costs the LM's forward per token, a guided method adds k RM token-forwards per step (1 + k C_RM / C_LM × "
    "plain), Best-of-N n plain responses (n × plain, an overhead of n - 1), the RM's scoring of its n finished "
    "responses excluded. FLOPs × plain likewise relative."
)


def format_markdown(report: Report) -> str:
    """The results table as Markdown, with a note stating the test and the units."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join(["---"] + ["---:"] * (len(HEADER) - 1)) + "|"]
    for r in report.rows:
        cells = [
            r.method,
            str(r.prompts),
            str(r.samples),
            _fmt(r.reward, r.reward_se),
            _p(r.p_value),
            _fmt(r.rouge_l, r.rouge_l_se),
            _fmt(r.corpus_bleu, digits=2),
            _fmt(r.self_rouge_l, r.self_rouge_l_se),
            f"{r.tokens:.1f}",
            f"{r.ms_per_token:.3f}",
            _fmt(r.overhead, digits=2),
            "-" if r.gflops_per_token is None else f"{r.gflops_per_token:.3g}",
            _fmt(r.flops_overhead, digits=2),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"reward: {report.reward_name}, mean over prompts of the per-prompt mean, ± standard error. p: "
        + (
            f"none, {report.no_p_values}"
            if report.no_p_values
            else f"Wilcoxon signed-rank test paired by prompt, {report.hypothesis}"
        )
        + ". ROUGE-L: against the references, mean over "
        "prompts ± SE. corpus BLEU: SacreBLEU corpus BLEU (0-100) over all responses, each sample of a prompt a "
        "hypothesis with that prompt's references (mean sentence BLEU ± SE: results.csv). self-ROUGE-L: mean "
        "pairwise ROUGE-L between the samples of a prompt, for methods with several (lower = more diverse). "
        f"ms/token: decoding time per generated token, warm-up excluded; × plain: relative to {report.plain}. "
        + FLOPS_NOTE,
    ]
    if report.coverage:
        lines += ["", f"**Note:** {report.coverage}."]
    if report.set_aside:
        lines += ["", f"**Note:** {report.set_aside}."]
    return "\n".join(lines)


def _write_csv(report: Report, path: Path) -> None:
    names = [f.name for f in MethodRow.__dataclass_fields__.values()]
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=names)
        writer.writeheader()
        for r in report.rows:
            writer.writerow(asdict(r))


def report_figures(report: Report) -> dict:
    """The report's figures by file name (matplotlib Figures; :func:`pargs.commands.figures.save` writes them)."""
    from pargs.commands.figures import bar_chart, left_out, point_chart

    figures = {}
    rows = report.rows
    rewarded = [r for r in rows if r.reward is not None]
    if rewarded:
        figures["reward"] = bar_chart(
            [r.method for r in rewarded],
            [r.reward for r in rewarded],
            [r.reward_se for r in rewarded],
            f"average {report.reward_name}",
            f"Average {report.reward_name} per method",
            [left_out([r.method for r in rows if r.reward is None], "no reward in their predictions")],
        )
    figures["time_per_token"] = bar_chart(
        [r.method for r in rows],
        [r.ms_per_token for r in rows],
        [r.ms_per_token_se for r in rows],
        "ms per generated token",
        "Decoding time per token (warm-up excluded)",
    )
    points = [r for r in rows if r.self_rouge_l is not None and r.reward is not None]
    if points:
        figures["reward_vs_diversity"] = point_chart(
            [r.method for r in points],
            [r.self_rouge_l for r in points],
            [r.self_rouge_l_se for r in points],
            [r.reward for r in points],
            [r.reward_se for r in points],
            "self-ROUGE-L (lower = more diverse)",
            f"average {report.reward_name}",
            f"{report.reward_name}: reward vs diversity",
            [
                left_out([r.method for r in rows if r.self_rouge_l is None], "one sample per prompt: no self-ROUGE-L"),
                left_out(
                    [r.method for r in rows if r.self_rouge_l is not None and r.reward is None],
                    "no reward in their predictions",
                ),
            ],
        )
    return figures


def _figures(report: Report, out_dir: Path) -> dict[str, str]:
    from pargs.commands.figures import save

    paths = {}
    for name, fig in report_figures(report).items():
        paths.update(save(fig, out_dir, name))
    return paths


def _tensorboard(report: Report, records: list[dict], directory: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(directory)) as writer:
        for r in report.rows:
            for name in (
                "reward",
                "rouge_l",
                "corpus_bleu",
                "self_rouge_l",
                "ms_per_token",
                "tokens",
                "gflops_per_token",
            ):
                value = getattr(r, name)
                if value is not None:
                    writer.add_scalar(f"{name}/{r.method}", value, 0)
            examples = [x for x in records if x["method"] == r.method and x["sample"] == 0][:5]
            text = "\n\n".join(f"**{x['prompt']}**  \n{x['response']}  \n(reward {x['reward']})" for x in examples)
            writer.add_text(f"samples/{r.method}", text, 0)
            metrics = {
                f"hparam/{k}": v for k, v in (("reward", r.reward), ("ms_per_token", r.ms_per_token)) if v is not None
            }
            writer.add_hparams({"method": r.method, "samples": r.samples}, metrics, run_name=file_name(r.method))
        writer.add_text("results", format_markdown(report), 0)


def reward_name_of(records: list[dict], given: str | None = None) -> str:
    """The name of the reward that scored ``records``: the ``reward_name`` the lines carry (``pargs predict``
    writes the evaluation reward's), else ``given``, else "evaluation reward". Lines scored by different
    rewards, or a ``given`` name that contradicts the lines', are a :class:`ConfigError`: one table averages
    one reward."""
    named = {r.get("reward_name") for r in records if r.get("reward") is not None}
    unnamed = None in named
    named.discard(None)
    if len(named) > 1:
        raise ConfigError(
            f"the prediction lines were scored by different rewards ({', '.join(sorted(map(repr, named)))}); one "
            "table averages one reward: report the runs of each reward on their own"
        )
    if not named:
        return given or "evaluation reward"
    name = named.pop()
    if given is not None and given != name:
        raise ConfigError(
            f"--reward-name {given!r}: the prediction lines say they were scored by {name!r}; drop --reward-name"
        )
    if unnamed:
        log.warning("some prediction lines name no reward (written by an older pargs): counted as %r", name)
    return name


def _baseline_scores(by_method: dict[str, list[dict]], baseline: str) -> tuple[dict[str, float] | None, str | None]:
    """The baseline's per-prompt mean rewards, which every p pairs with; or None and why there are no p-values
    (said once as a warning and in the table's note, so a column of ``-`` is not read as "not significant")."""
    scored = [(r["id"], r["reward"]) for r in by_method.get(baseline, []) if r["reward"] is not None]
    if scored:
        return per_prompt_means(scored), None
    why = f"no line of method {baseline!r}" if baseline not in by_method else f"no reward in the lines of {baseline!r}"
    reason = (
        f"each method is tested against the baseline {baseline!r}, and these predictions hold {why}; choose the "
        f"baseline with --baseline NAME (methods here: {', '.join(sorted(by_method))})"
    )
    log.warning("no p-values: %s", reason)
    return None, reason


def build_report(
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    baseline: str = "pargs",
    plain: str = "top-k",
    tensorboard_dir: str | Path | None = None,
    figures: bool = True,
    reward_name: str | None = None,
) -> Report:
    """Compute the table from prediction files / directories and write ``results.md``, ``results.csv``,
    figures (PNG and PDF) and (optionally) TensorBoard summaries under ``out_dir`` / ``tensorboard_dir``.

    ``reward_name`` names the reward in the note and on the figures for lines that do not name it
    (:func:`reward_name_of`)."""
    predictions = read_predictions(inputs)
    records, duplicates = predictions.records, predictions.duplicates
    reward_name = reward_name_of(records, reward_name)
    by_method: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_method[r["method"]].append(r)
    baseline_scores, no_p_values = _baseline_scores(by_method, baseline)
    rows = [
        _row(m, recs, None if m == baseline else baseline_scores)
        for m, recs in tqdm(by_method.items(), desc="report", unit="method")
    ]
    plain_row = next((r for r in rows if r.method == plain), None)
    for r in rows:
        r.overhead = r.ms_per_token / plain_row.ms_per_token if plain_row and plain_row.ms_per_token else None
        if plain_row and plain_row.gflops_per_token and r.gflops_per_token is not None:
            r.flops_overhead = r.gflops_per_token / plain_row.gflops_per_token
    report = Report(
        rows,
        baseline,
        plain,
        f"H1: reward({baseline}) > reward(method)",
        len(records),
        duplicates,
        reward_name,
        coverage=prompt_coverage(by_method, baseline),
        set_aside=set_aside_note(predictions) if predictions.set_aside else None,
        no_p_values=no_p_values,
    )
    if report.coverage:
        log.warning("%s", report.coverage)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(format_markdown(report) + "\n")
    _write_csv(report, out / "results.csv")
    report.paths = {"markdown": str(out / "results.md"), "csv": str(out / "results.csv")}
    if figures:
        report.paths.update(_figures(report, out))
    if tensorboard_dir is not None:
        _tensorboard(report, records, Path(tensorboard_dir))
        report.paths["tensorboard"] = str(tensorboard_dir)
    files = [Path(p).name for k, p in report.paths.items() if k != "tensorboard"]
    log.info("report written to %s: %s", out, ", ".join(files))
    if tensorboard_dir is not None:
        log.info("report TensorBoard summaries: %s", tensorboard_dir)
    return report
