"""UltraFeedback binarized (``HuggingFaceH4/ultrafeedback_binarized``) -> preference records.

Each row holds two conversations that share everything but the final assistant message::

    {"prompt": str, "prompt_id": str,
     "chosen": [{"role": "user", "content": ...}, {"role": "assistant", "content": ...}],
     "rejected": [...], "score_chosen": float, "score_rejected": float}

The prompt is the conversation before the final assistant message, rendered

- by default with a plain-text template: each message as ``"{Label}: {content}"`` (content
  stripped; labels ``System``, ``User``, ``Assistant``, see :data:`ROLE_LABELS`), joined by blank
  lines and followed by ``"\\n\\nAssistant:"``, so ``[user "Hi"]`` gives ``"User: Hi\\n\\nAssistant:"``;
  the responses are the final contents with one leading space (``" Hello!"``);
- or, when a ``tokenizer`` (a local path or hub name, or a loaded tokenizer) is given, with its chat
  template and ``add_generation_prompt=True``; the responses are then the final contents unchanged.

The id is ``prompt_id``. Unusable rows, counted by reason: ``last message not from assistant``
(either conversation), ``conversations differ`` (before the final message), ``empty prompt`` (no
message before it), ``tie`` (equal scores; written instead, and counted in ``notes``, with
``keep_ties=True``), and the shared empty / identical response checks. Splits on the hub:
``train_prefs``, ``test_prefs`` (the ``*_gen`` and ``*_sft`` splits hold no preference pairs).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pargs.adapters.conversion import EMPTY_PROMPT, Converted, ConvertReport, convert_source
from pargs.adapters.fields import Location, SourceError, as_continuation, get, get_list
from pargs.adapters.sources import LoadOptions
from pargs.errors import ConfigError

__all__ = ["HUB_NAME", "NAME", "ROLE_LABELS", "convert", "make_row_converter", "render_plain"]

NAME = "ultrafeedback"  # adapter name: default ids and every record's source
HUB_NAME = "HuggingFaceH4/ultrafeedback_binarized"  # the release on the Hugging Face Hub
ROLE_LABELS = {"system": "System", "user": "User", "assistant": "Assistant"}  # role -> plain-text label

NOT_ASSISTANT = "last message not from assistant"
CONVERSATIONS_DIFFER = "conversations differ"
TIE = "tie"


def render_plain(messages: list[dict], labels: Mapping[str, str] = ROLE_LABELS) -> str:
    """The plain-text prompt: each message as ``"{Label}: {content}"``, then ``"Assistant:"``."""
    turns = [f"{labels[m['role']]}: {m['content'].strip()}" for m in messages]
    return "\n\n".join([*turns, f"{labels['assistant']}:"])


def _messages(row: dict, name: str, at: Location, labels: Mapping[str, str] | None) -> list[dict]:
    """The conversation ``row[name]`` as ``[{"role", "content"}]``, each field checked."""
    messages = []
    for k, message in enumerate(get_list(row, name, dict, at)):
        role = get(message, "role", str, at, parent=f"{name}[{k}]")
        content = get(message, "content", str, at, parent=f"{name}[{k}]")
        if labels is not None and role not in labels:
            raise SourceError(
                at,
                f"{name}[{k}].role",
                f"is {role!r}, which the plain-text template has no label for: pass role_labels with one, "
                "or a tokenizer whose chat template knows it",
            )
        messages.append({"role": role, "content": content})
    return messages


def _load_tokenizer(tokenizer: Any):
    """A tokenizer with a chat template, from a path / hub name or as given."""
    if isinstance(tokenizer, (str, os.PathLike)):
        from transformers import AutoTokenizer

        from pargs.models.loading import check_model_source

        try:
            check_model_source(str(tokenizer))  # a missing folder fails here, without the network
            loaded = AutoTokenizer.from_pretrained(str(tokenizer), trust_remote_code=False)
        except (OSError, ValueError) as err:  # no such folder or hub name (ConfigError), no tokenizer files in it
            raise ConfigError(
                f"tokenizer {str(tokenizer)!r} could not be loaded ({err}): give a tokenizer "
                "folder or hub name, or leave tokenizer unset to use the plain-text template"
            ) from None
    else:
        loaded = tokenizer
    if not getattr(loaded, "chat_template", None):
        raise ConfigError(
            f"tokenizer {tokenizer!r} has no chat template: give one that has (e.g. an instruct model's) "
            "or leave tokenizer unset to use the plain-text template"
        )
    return loaded


def make_row_converter(keep_ties: bool = False, tokenizer: Any = None, role_labels: Mapping[str, str] | None = None):
    """The row function for these options (the tokenizer is loaded here, once)."""
    chat = None if tokenizer is None else _load_tokenizer(tokenizer)
    labels = None if chat is not None else dict(role_labels or ROLE_LABELS)
    if labels is not None and "assistant" not in labels:
        raise ConfigError("role_labels must give a label for 'assistant' (it ends every prompt)")

    def convert_row(row: dict, at: Location) -> Converted:
        """One row -> a pair, or the reason it is unusable."""
        rid = get(row, "prompt_id", (str, int), at, optional=True)
        chosen, rejected = _messages(row, "chosen", at, labels), _messages(row, "rejected", at, labels)
        scores = [get(row, name, (int, float), at) for name in ("score_chosen", "score_rejected")]
        if not all(conversation and conversation[-1]["role"] == "assistant" for conversation in (chosen, rejected)):
            return Converted(NOT_ASSISTANT, id=rid)
        context = chosen[:-1]
        if context != rejected[:-1]:
            return Converted(CONVERSATIONS_DIFFER, id=rid)
        if not context:
            return Converted(EMPTY_PROMPT, id=rid)
        tie = scores[0] == scores[1]
        if tie and not keep_ties:
            return Converted(TIE, id=rid)
        if chat is None:
            prompt = render_plain(context, labels)
            responses = [as_continuation(chosen[-1]["content"]), as_continuation(rejected[-1]["content"])]
        else:
            from jinja2 import TemplateError  # what a chat template's raise_exception(...) raises

            try:
                prompt = chat.apply_chat_template(context, tokenize=False, add_generation_prompt=True)
            except TemplateError as err:
                raise SourceError(at, "chosen", f"the tokenizer's chat template rejects it: {err}") from None
            responses = [chosen[-1]["content"], rejected[-1]["content"]]
        pair = {
            "prompt": prompt,
            "chosen": responses[0],
            "rejected": responses[1],
            "meta": {"score_chosen": scores[0], "score_rejected": scores[1]},
        }
        return Converted(pair, id=rid, note="tie kept" if tie else None)

    return convert_row


def convert(
    source: str | os.PathLike,
    split: str,
    out_path: str | os.PathLike,
    *,
    keep_ties: bool = False,
    tokenizer: Any = None,
    role_labels: Mapping[str, str] | None = None,
    load: LoadOptions | None = None,
) -> ConvertReport:
    """Convert ``split`` of UltraFeedback binarized to preference JSONL at ``out_path``; return the report.

    Args:
        source: ``"HuggingFaceH4/ultrafeedback_binarized"``, or a local copy (a Parquet/JSONL file or folder).
        split: ``"train_prefs"`` or ``"test_prefs"``.
        out_path: preference JSONL to write.
        keep_ties: write pairs whose two scores are equal (default: count them as ``tie``).
        tokenizer: render prompts with this tokenizer's chat template (path, hub name or object); None: plain.
        role_labels: plain-text label of each role (default :data:`ROLE_LABELS`); ignored with a tokenizer.
        load: reading options (``cache_dir``, ``revision``, ``data_dir``).
    """
    return convert_source(
        NAME,
        source,
        split,
        out_path,
        make_row_converter(keep_ties, tokenizer, role_labels),
        columns=("chosen", "rejected", "score_chosen", "score_rejected"),
        load=load,
    )
