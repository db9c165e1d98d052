"""How much of a training file the tokenizer cannot read: the share of its tokens that are the unknown token.

A tokenizer that does not fit the text (the synthetic task's word-level vocabulary on other text) turns
most of it into its unknown token; a model trained on that learns from the few known words and the
lengths, and can still report a perfect validation accuracy (a reward model trained on 93 % ``<unk>``
showed val/acc 1.0). The training datamodules (:class:`pargs.datamodules.base.JsonlDataModule`) count
once per file at setup, over the ids they already encoded: above :data:`WARN_SHARE` they warn, above
their ``max_unknown_share`` they refuse.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from transformers import PreTrainedTokenizerBase

from pargs.errors import ConfigError
from pargs.records import iter_jsonl

log = logging.getLogger(__name__)

#: warn when more than this share of a file's tokens are the unknown token (2 %: a few rare symbols pass)
WARN_SHARE = 0.02


def unknown_token_id(tokenizer: PreTrainedTokenizerBase) -> int | None:
    """The id of a token that stands for unreadable text; None when the tokenizer has none, or when it is
    also another special token (GPT-2's ``<|endoftext|>`` is its "unknown", but byte-level BPE reads all text)."""
    unk = tokenizer.unk_token_id
    others = {tokenizer.eos_token_id, tokenizer.pad_token_id, tokenizer.bos_token_id}
    return None if unk is None or unk in others else unk


def count_unknown(examples: Sequence[dict], keys: Sequence[str], unk: int) -> tuple[int, int, dict | None]:
    """``(unknown tokens, tokens, first example holding an unknown token)`` over the id lists ``keys`` of
    each example."""
    n_unk = n = 0
    first = None
    for ex in examples:
        for key in keys:
            ids = ex[key]
            found = ids.count(unk)
            n_unk += found
            n += len(ids)
            if found and first is None:
                first = ex
    return n_unk, n, first


def _unknown_word(tokenizer: PreTrainedTokenizerBase, file: str, line: int, unk: int) -> str:
    """`` (e.g. 'word' on line L, field 'f')``: a word of that record the tokenizer cannot read, or ""."""
    for line_no, record in iter_jsonl(file):
        if line_no != line:
            continue
        for field, text in record.items():
            if field == "id" or not isinstance(text, str):
                continue
            for word in text.split():
                if unk in tokenizer(word, add_special_tokens=False)["input_ids"]:
                    return f" (e.g. {word[:40]!r} on line {line}, field {field!r})"
        break
    return ""


def check_unknown_tokens(
    tokenizer: PreTrainedTokenizerBase,
    path: str,
    examples: Sequence[dict],
    keys: Sequence[str],
    max_share: float,
) -> float | None:
    """Warn when more than :data:`WARN_SHARE` of the tokens of ``path``'s encoded ``examples`` are the
    unknown token; fail above ``max_share``. Returns the share (None: the tokenizer has no unknown token).

    An example's ``file`` and ``line`` (where it has them) locate a word to show in the message.
    """
    unk = unknown_token_id(tokenizer)
    if unk is None or not examples:
        return None
    n_unk, n, first = count_unknown(examples, keys, unk)
    share = n_unk / n if n else 0.0
    if share <= WARN_SHARE:
        return share
    where = ""
    if first is not None and "line" in first:
        where = _unknown_word(tokenizer, first.get("file", path), first["line"], unk)
    message = (
        f"{path}: {share:.1%} of the tokens ({n_unk} of {n}) are the tokenizer's unknown token "
        f"{tokenizer.unk_token!r}{where}: tokenizer {tokenizer.name_or_path!r} does not fit this text, and a model "
        "trained on it learns next to nothing from the words; use the tokenizer of the model being trained"
    )
    if share > max_share:
        raise ConfigError(f"{message} (or set data.init_args.max_unknown_share above {share:.2f} to train anyway)")
    log.warning("%s", message)
    return share
