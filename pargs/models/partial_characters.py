"""Token sequences that stop inside a character, and the longest text whose characters are all finished.

Byte-level BPE tokenizers (GPT-2, Llama-3, Qwen) and sentencepiece tokenizers with byte fallback
(Llama-2, Mistral: tokens such as ``<0xE2>``) can split one multibyte UTF-8 character (an emoji, a CJK
character, an accented letter) over several tokens. Decoding a sequence that stops after the first
of them gives U+FFFD where the unfinished character is, and the next token turns it into another
character, so the text of such a prefix is not a prefix of the text to come. :func:`finished_text`
drops the unfinished tail: the text up to the last finished character.

How the tail is found:

- A decoded text that does not end in U+FFFD has no unfinished tail (both kinds of decoder replace
  an unfinished trailing sequence by U+FFFD). Almost every call stops at this check.
- Otherwise the raw bytes of the last tokens decide, since U+FFFD is also an ordinary character
  (the bytes EF BF BD) that a model may write:

  - a byte-fallback token ``<0xHH>`` stands for the byte HH (a vocabulary entry that only looks
    like one is told apart by decoding it: literal text decodes to itself);
  - in a byte-level tokenizer each character of a token stands for one byte, through the fixed
    GPT-2 alphabet (checked once per tokenizer by decoding a probe spelled in that alphabet);
  - special tokens stand for nothing (decoding skips them); any other token is finished text (so a
    tokenizer of neither kind keeps its decoded text as it is).

  Python's incremental UTF-8 decoder then says how many trailing bytes begin a character that more
  bytes could still finish (at most 3; bytes that can never become a character stay U+FFFD, as in
  the text that any continuation would give).
- Dropping the tail: when it is made of whole tokens (always so with byte fallback, whose tokens are
  single bytes) the text is the decoding of the tokens before it. A byte-level token may also hold
  finished characters in front of the unfinished start (``'¥æ'``: the end of 日, the start of 本); the
  byte-level decoder turns an unfinished end into exactly one U+FFFD, and that one is removed.
"""

from __future__ import annotations

import codecs
import re
import weakref
from collections.abc import Sequence

from transformers import PreTrainedTokenizerBase

REPLACEMENT = "\ufffd"
_BYTE_TOKEN = re.compile(r"<0x([0-9A-Fa-f]{2})>")
_PROBE = "é ü\n€😀"  # multibyte characters, a space and a newline: bytes the byte-level alphabet remaps


def _byte_level_alphabet() -> dict[str, int]:
    """GPT-2's byte-level alphabet, character -> byte: printable Latin-1 bytes are written as themselves,
    the other bytes, in increasing order, as the characters from U+0100 on."""
    printable = {*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)}
    alphabet, shifted = {}, 0
    for byte in range(256):
        if byte in printable:
            alphabet[chr(byte)] = byte
        else:
            alphabet[chr(256 + shifted)] = byte
            shifted += 1
    return alphabet


_ALPHABET = _byte_level_alphabet()


class _TokenBytes:
    """The bytes a tokenizer's tokens stand for: ``b""`` for special tokens, None for finished text.

    It keeps what it learnt about the tokenizer, not the tokenizer (the cache below is keyed on it weakly).
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.special = set(tokenizer.all_special_ids)
        self.byte_level = _decodes_to(tokenizer, _alphabet_spelling(_PROBE), _PROBE)
        self._known: dict[int, bytes | None] = {}

    def __call__(self, tokenizer: PreTrainedTokenizerBase, token_id: int) -> bytes | None:
        if token_id not in self._known:
            self._known[token_id] = self._bytes(tokenizer, token_id)
        return self._known[token_id]

    def _bytes(self, tokenizer: PreTrainedTokenizerBase, token_id: int) -> bytes | None:
        if token_id in self.special:
            return b""
        token = tokenizer.convert_ids_to_tokens(token_id)
        if not isinstance(token, str):
            return None
        if self.byte_level:  # an added token may hold characters outside the alphabet: those are its own text
            return b"".join(bytes([_ALPHABET[c]]) if c in _ALPHABET else c.encode() for c in token)
        match = _BYTE_TOKEN.fullmatch(token)
        if match and not _decodes_to(tokenizer, token, token):
            return bytes([int(match.group(1), 16)])
        return None


def _decodes_to(tokenizer: PreTrainedTokenizerBase, token: str, text: str) -> bool:
    try:
        return tokenizer.convert_tokens_to_string([token]) == text
    except Exception:  # noqa: BLE001 - a tokenizer that cannot decode the probe is not of that kind
        return False


def _alphabet_spelling(text: str) -> str:
    """``text`` written in the byte-level alphabet, as a byte-level tokenizer's vocabulary spells it."""
    by_byte = {byte: char for char, byte in _ALPHABET.items()}
    return "".join(by_byte[b] for b in text.encode())


_TABLES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def token_bytes(tokenizer: PreTrainedTokenizerBase, token_id: int) -> bytes | None:
    """The bytes ``token_id`` stands for: ``b""`` for a special token, None for a token of finished text
    (see the module docstring); what is learnt about a tokenizer is kept while the tokenizer lives."""
    table = _TABLES.get(tokenizer)
    if table is None:
        table = _TABLES[tokenizer] = _TokenBytes(tokenizer)
    return table(tokenizer, token_id)


def unfinished_bytes(data: bytes) -> int:
    """How many bytes at the end of ``data`` begin a UTF-8 character that more bytes could finish (0-3)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    decoder.decode(data, final=False)
    return len(decoder.getstate()[0])


def finished_text(tokenizer: PreTrainedTokenizerBase, ids: Sequence[int], text: str | None = None) -> str:
    """The decoding of ``ids`` (special tokens skipped) without an unfinished character at its end.

    ``text``: the decoding of ``ids`` with ``skip_special_tokens=True`` when the caller already has it.
    """
    ids = list(ids)
    if text is None:
        text = tokenizer.decode(ids, skip_special_tokens=True)
    if not text.endswith(REPLACEMENT):
        return text
    tail: list[bytes] = []  # the bytes of the last tokens, last token first
    for token_id in reversed(ids):
        piece = token_bytes(tokenizer, token_id)
        if piece is None:  # finished text ends on a character boundary
            break
        tail.append(piece)
        if sum(map(len, tail)) >= 3:  # a character has at most 4 bytes, so an unfinished one at most 3
            break
    unfinished = unfinished_bytes(b"".join(reversed(tail)))
    if not unfinished:
        return text  # the U+FFFD is a real one, or bytes that no continuation can finish
    covered = dropped = 0  # the last `dropped` tokens hold the `covered` last bytes
    while covered < unfinished:
        covered += len(tail[dropped])
        dropped += 1
    if covered == unfinished:  # the unfinished character starts a token: decode the tokens before it
        return tokenizer.decode(ids[: len(ids) - dropped], skip_special_tokens=True)
    return text[:-1]  # a byte-level token ends with the unfinished start, decoded as one U+FFFD
