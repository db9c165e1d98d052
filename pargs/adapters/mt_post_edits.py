"""Machine-translation post-edits (the paper's IWSLT-17 English-German set) -> records.

Each row holds a source sentence, a machine translation and its human post-edit:
``{"src": str, "mt": str, "pe": str}`` (column names configurable, an id column optional). The
post-edit is preferred to the machine output it corrects:

- prompt: ``template`` with ``{src}`` (stripped), by default
  ``"Translate English to German:\\n{src}\\nGerman:"``;
- chosen: the post-edit, rejected: the machine translation, each with one leading space.

Unusable rows, counted by reason: ``empty prompt`` (empty source sentence), ``empty response`` and
``identical responses`` (the post-edit left the machine output unchanged, up to surrounding
whitespace). With ``prompts_out`` the adapter also writes one prompt record per unique source
sentence, ``{"id", "prompt", "reference": the post-edit, stripped}``, for ROUGE/BLEU evaluation;
rows whose post-edit equals the machine output still give a prompt record there.
"""

from __future__ import annotations

import os

from pargs.adapters.conversion import EMPTY_PROMPT, Converted, ConvertReport, convert_source
from pargs.adapters.fields import Location, as_continuation, get, template_fields
from pargs.adapters.sources import LoadOptions
from pargs.errors import ConfigError

__all__ = ["DEFAULT_TEMPLATE", "NAME", "convert", "make_row_converter"]

NAME = "mt_post_edits"  # adapter name: default ids and every record's source
DEFAULT_TEMPLATE = "Translate English to German:\n{src}\nGerman:"  # prompt; {src} is the source sentence


def make_row_converter(
    template: str = DEFAULT_TEMPLATE,
    src_field: str = "src",
    mt_field: str = "mt",
    pe_field: str = "pe",
    id_field: str | None = None,
):
    """The row function for this template and these column names (the template is checked here)."""
    if not template_fields(template, ("src",), "template"):
        raise ConfigError(f"template {template!r} must contain {{src}}, where the source sentence goes")

    def convert_row(row: dict, at: Location) -> Converted:
        """One row -> a pair (or the reason it is unusable) and its evaluation prompt."""
        src, mt, pe = (get(row, name, str, at) for name in (src_field, mt_field, pe_field))
        rid = None if id_field is None else get(row, id_field, (str, int), at)
        if not src.strip():
            return Converted(EMPTY_PROMPT, None, rid)
        prompt = template.format(src=src.strip())
        pair = {"prompt": prompt, "chosen": as_continuation(pe), "rejected": as_continuation(mt)}
        return Converted(pair, {"prompt": prompt, "reference": pe.strip()}, rid)

    return convert_row


def convert(
    source: str | os.PathLike,
    split: str,
    out_path: str | os.PathLike,
    *,
    template: str = DEFAULT_TEMPLATE,
    src_field: str = "src",
    mt_field: str = "mt",
    pe_field: str = "pe",
    id_field: str | None = None,
    prompts_out: str | os.PathLike | None = None,
    load: LoadOptions | None = None,
) -> ConvertReport:
    """Convert ``split`` of a post-edit set to preference JSONL at ``out_path``; return the report.

    Args:
        source: a local file / folder (JSONL, JSON, Parquet, CSV, TSV) or a hub dataset name.
        split: which split to read (for a single file, only used in ids).
        out_path: preference JSONL to write.
        template: prompt; ``{src}`` is replaced by the source sentence.
        src_field: column of the source sentence.
        mt_field: column of the machine translation (the rejected response).
        pe_field: column of the human post-edit (the chosen response, and the reference).
        id_field: column of a row id, if the source has one; None: ``mt_post_edits-{split}-{row}``.
        prompts_out: also write unique prompts with the post-edit as reference to this JSONL.
        load: reading options (``cache_dir``, ``data_dir``, ``config``, ``revision``).
    """
    columns = [c for c in (src_field, mt_field, pe_field, id_field) if c]
    return convert_source(
        NAME,
        source,
        split,
        out_path,
        make_row_converter(template, src_field, mt_field, pe_field, id_field),
        columns=columns,
        load=load,
        prompts_out=prompts_out,
    )
