"""Anthropic HH-RLHF (``Anthropic/hh-rlhf``) -> preference records.

Each row of the release is ``{"chosen": str, "rejected": str}``, two full transcripts
``"\\n\\nHuman: ...\\n\\nAssistant: ...\\n\\nHuman: ...\\n\\nAssistant: ..."`` that share every turn but
the last. The record's prompt is that shared dialogue up to and including the final
``"\\n\\nAssistant:"``; chosen and rejected are the two final assistant turns exactly as written
(with their leading space: ``" Sure, ..."``).

Unusable rows, counted by reason:

- ``unparseable transcript: no assistant turn``: a transcript without ``"\\n\\nAssistant:"``;
- ``unparseable transcript: no human turn``: nothing before the final assistant turn is a human turn;
- ``unparseable transcript: ends with a human turn``: the last turn is not the assistant's;
- ``unparseable transcript: dialogues differ``: the two transcripts differ before the final assistant turn;
- ``empty response`` / ``identical responses``: the checks shared by every adapter.

The release on the hub has subsets (``helpful-base``, ``harmless-base``, ``helpful-online``,
``helpful-rejection-sampled``, ``red-team-attempts``) as folders holding ``train.jsonl.gz`` and
``test.jsonl.gz``: pick one with ``LoadOptions(data_dir="helpful-base")``, or read them all.
"""

from __future__ import annotations

import os

from pargs.adapters.conversion import Converted, ConvertReport, convert_source
from pargs.adapters.fields import Location, get
from pargs.adapters.sources import LoadOptions

__all__ = ["HUB_NAME", "NAME", "split_transcript", "convert_row", "convert"]

NAME = "hh_rlhf"  # adapter name: default ids and every record's source
HUB_NAME = "Anthropic/hh-rlhf"  # the release on the Hugging Face Hub
HUMAN = "\n\nHuman:"  # marker opening a human turn
ASSISTANT = "\n\nAssistant:"  # marker opening an assistant turn

NO_ASSISTANT = "unparseable transcript: no assistant turn"
NO_HUMAN = "unparseable transcript: no human turn"
ENDS_WITH_HUMAN = "unparseable transcript: ends with a human turn"
DIALOGUES_DIFFER = "unparseable transcript: dialogues differ"


def split_transcript(transcript: str) -> tuple[str, str] | str:
    """Split a transcript into (dialogue up to and including the last ``ASSISTANT`` marker, final turn).

    Returns the reason instead when the transcript has no assistant turn, no human turn before it,
    or a human turn after it.
    """
    at = transcript.rfind(ASSISTANT)
    if at < 0:
        return NO_ASSISTANT
    dialogue, response = transcript[: at + len(ASSISTANT)], transcript[at + len(ASSISTANT) :]
    if HUMAN in response:
        return ENDS_WITH_HUMAN
    if HUMAN not in dialogue:
        return NO_HUMAN
    return dialogue, response


def convert_row(row: dict, at: Location) -> Converted:
    """One release row -> a pair, or the reason it is unusable."""
    chosen = split_transcript(get(row, "chosen", str, at))
    rejected = split_transcript(get(row, "rejected", str, at))
    for parsed in (chosen, rejected):
        if isinstance(parsed, str):
            return Converted(parsed)
    if chosen[0] != rejected[0]:
        return Converted(DIALOGUES_DIFFER)
    return Converted({"prompt": chosen[0], "chosen": chosen[1], "rejected": rejected[1]})


def convert(
    source: str | os.PathLike,
    split: str,
    out_path: str | os.PathLike,
    *,
    load: LoadOptions | None = None,
) -> ConvertReport:
    """Convert ``split`` of HH-RLHF to preference JSONL at ``out_path``; return the report.

    Args:
        source: ``"Anthropic/hh-rlhf"``, or a local copy: a ``train.jsonl(.gz)`` file or a folder of them.
        split: ``"train"`` or ``"test"``.
        out_path: preference JSONL to write.
        load: reading options (``data_dir="helpful-base"`` picks one subset; ``cache_dir``, ``revision``).
    """
    return convert_source(NAME, source, split, out_path, convert_row, columns=("chosen", "rejected"), load=load)
