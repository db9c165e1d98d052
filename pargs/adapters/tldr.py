"""OpenAI TL;DR comparisons (``openai/summarize_from_feedback``, config ``comparisons``) -> records.

Each row compares two summaries of one post::

    {"info": {"id": "t3_...", "post": str, "title": str, "subreddit": str, ...},
     "summaries": [{"text": str, "policy": str, ...}, {"text": str, ...}],
     "choice": 0 | 1, "split": "train" | "valid1" | "valid2", "extra": {"confidence": int}, ...}

The prompt is ``template`` filled with the post's fields (surrounding whitespace stripped), by
default ``"SUBREDDIT: r/{subreddit}\\nTITLE: {title}\\nPOST: {post}\\nTL;DR:"``; chosen is
``summaries[choice]``, rejected the other one, each with one leading space. A post is compared many
times, so the row index makes the id (``tldr-train-17``) and the post id goes to ``meta``.

Some rows (CNN/DailyMail, in the validation comparisons) have ``post`` null and an ``article``
instead. They are counted as ``article instead of post`` unless an ``article_template`` (fields
``{article}``, ``{title}``, ``{site}``; e.g. :data:`ARTICLE_TEMPLATE`) is given. A row whose
``choice`` is null is counted as ``missing choice``, one whose post is blank as ``empty prompt``;
the shared checks count empty and identical summaries.

With ``prompts_out`` the adapter also writes one prompt record per unique prompt (the first row of
each post wins): ``{"id": post id, "prompt", "reference": the chosen summary, stripped}``.

The hub copy has splits ``train`` and ``validation``. The original release (files
``comparisons/batch*.json`` of JSON lines) names the split of each row in its ``split`` field
(``train``, ``valid1``, ``valid2``): read a folder of it with ``LoadOptions(split_field="split")``.
A file or folder whose rows have that column is filtered by it even without ``split_field``
(``validation`` = ``valid1`` + ``valid2``), and the rows of other splits are counted in the report.
"""

from __future__ import annotations

import os

from pargs.adapters.conversion import EMPTY_PROMPT, Converted, ConvertReport, convert_source
from pargs.adapters.fields import Location, SourceError, as_continuation, get, get_list, template_fields
from pargs.adapters.sources import LoadOptions

__all__ = [
    "ARTICLE_TEMPLATE",
    "DEFAULT_TEMPLATE",
    "HUB_CONFIG",
    "HUB_NAME",
    "NAME",
    "convert",
    "make_row_converter",
]

NAME = "tldr"  # adapter name: default ids and every record's source
HUB_NAME = "openai/summarize_from_feedback"  # the release on the Hugging Face Hub
HUB_CONFIG = "comparisons"  # its configuration holding preference pairs
DEFAULT_TEMPLATE = "SUBREDDIT: r/{subreddit}\nTITLE: {title}\nPOST: {post}\nTL;DR:"  # prompt of a Reddit post
ARTICLE_TEMPLATE = "ARTICLE: {article}\nTL;DR:"  # a prompt for CNN/DM rows, if wanted
POST_FIELDS = ("subreddit", "title", "post")  # fields a post template may use
ARTICLE_FIELDS = ("article", "title", "site")  # fields an article template may use

#: split -> the values of the rows' ``split`` column that make it (the hub's validation = valid1 + valid2)
SPLIT_VALUES = {"validation": ("valid1", "valid2")}

MISSING_CHOICE = "missing choice"
ARTICLE_ROW = "article instead of post"


def make_row_converter(template: str = DEFAULT_TEMPLATE, article_template: str | None = None):
    """The row function for these templates (checked here, before any row is read)."""
    post_fields = template_fields(template, POST_FIELDS, "template")
    article_fields = (
        None if article_template is None else template_fields(article_template, ARTICLE_FIELDS, "article_template")
    )

    def convert_row(row: dict, at: Location) -> Converted:
        """One comparison row -> a pair (or the reason it is unusable) and its evaluation prompt."""
        info = get(row, "info", dict, at)
        post_id = get(info, "id", (str, int), at, parent="info")
        summaries = get_list(row, "summaries", dict, at)
        if len(summaries) != 2:
            raise SourceError(at, "summaries", f"must hold exactly 2 summaries, got {len(summaries)}")
        texts = [get(s, "text", str, at, parent=f"summaries[{k}]") for k, s in enumerate(summaries)]
        choice = get(row, "choice", int, at, optional=True)
        if choice not in (None, 0, 1):
            raise SourceError(at, "choice", f"must be 0 or 1 (the index of the preferred summary), got {choice}")
        post = get(info, "post", str, at, parent="info", optional=True)
        if post is not None and not post.strip():
            return Converted(EMPTY_PROMPT)
        if post is not None:
            prompt = _fill(template, post_fields, info, at)
            note = None
        elif get(info, "article", str, at, parent="info", optional=True) is None:
            raise SourceError(at, "info.post", "is missing or null, and so is info.article")
        elif article_template is None:
            return Converted(ARTICLE_ROW)
        else:
            prompt = _fill(article_template, article_fields, info, at)
            note = "article row (CNN/DM) converted with article_template"
        if choice is None:
            return Converted(MISSING_CHOICE, {"id": post_id, "prompt": prompt, "reference": None})
        prompt_record = {"id": post_id, "prompt": prompt, "reference": texts[choice].strip()}
        meta = {"post_id": post_id, **_policies(summaries, choice), **_confidence(row, at)}
        pair = {
            "prompt": prompt,
            "chosen": as_continuation(texts[choice]),
            "rejected": as_continuation(texts[1 - choice]),
            "meta": meta,
        }
        return Converted(pair, prompt_record, note=note)

    return convert_row


def _fill(template: str, names: list[str], info: dict, at: Location) -> str:
    """``template`` with each named field of ``info``, stripped."""
    return template.format(**{name: get(info, name, str, at, parent="info").strip() for name in names})


def _policies(summaries: list[dict], choice: int | None) -> dict:
    """``{"policies": [chosen policy, rejected policy]}`` when both summaries name one, else ``{}``."""
    policies = [s.get("policy") for s in summaries]
    if choice is None or not all(isinstance(p, str) for p in policies):
        return {}
    return {"policies": [policies[choice], policies[1 - choice]]}


def _confidence(row: dict, at: Location) -> dict:
    """``{"confidence": n}`` when the row's ``extra`` holds the labeller's confidence, else ``{}``."""
    extra = get(row, "extra", dict, at, optional=True) or {}
    confidence = get(extra, "confidence", int, at, parent="extra", optional=True)
    return {} if confidence is None else {"confidence": confidence}


def convert(
    source: str | os.PathLike,
    split: str,
    out_path: str | os.PathLike,
    *,
    template: str = DEFAULT_TEMPLATE,
    article_template: str | None = None,
    prompts_out: str | os.PathLike | None = None,
    load: LoadOptions | None = None,
) -> ConvertReport:
    """Convert ``split`` of the TL;DR comparisons to preference JSONL at ``out_path``; return the report.

    Args:
        source: ``"openai/summarize_from_feedback"``, or a local copy (file or folder of JSONL/Parquet).
        split: ``"train"`` / ``"validation"`` on the hub; ``"train"``, ``"valid1"``, ``"valid2"`` by field.
        out_path: preference JSONL to write.
        template: prompt of a Reddit row; may use {subreddit}, {title}, {post}.
        article_template: prompt of a CNN/DM row ({article}, {title}, {site}); None counts such rows unusable.
        prompts_out: also write unique prompts with a chosen summary as reference to this JSONL.
        load: reading options (``split_field="split"`` for the original release, ``cache_dir``, ``revision``).
    """
    return convert_source(
        NAME,
        source,
        split,
        out_path,
        make_row_converter(template, article_template),
        columns=("info", "summaries", "choice"),
        load=load,
        default_config=HUB_CONFIG,
        prompts_out=prompts_out,
        split_column="split",
        split_values=SPLIT_VALUES,
    )
