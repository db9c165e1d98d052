"""Build a whitespace word-level tokenizer and save it as a Hugging Face tokenizer directory."""

from __future__ import annotations

import os
from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

PAD, UNK, EOS = "<pad>", "<unk>", "<eos>"


def build_word_tokenizer(words: Iterable[str]) -> PreTrainedTokenizerFast:
    """A tokenizer mapping each whitespace-separated word of ``words`` to one id.

    Ids 0, 1 and 2 are ``<pad>``, ``<unk>`` and ``<eos>``; decoding joins words with single spaces,
    so ``decode(encode(text)) == text`` for any text written with single spaces between known words.
    """
    vocab = {PAD: 0, UNK: 1, EOS: 2}
    for word in words:
        if word.split() != [word]:
            raise ValueError(f"vocabulary entries must be single words without spaces, got {word!r}")
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, unk_token=UNK, eos_token=EOS, bos_token=EOS, model_max_length=512
    )


def save_word_tokenizer(words: Iterable[str], out_dir: str | os.PathLike) -> PreTrainedTokenizerFast:
    """Build the tokenizer and ``save_pretrained`` it so ``AutoTokenizer.from_pretrained(out_dir)`` loads it."""
    tokenizer = build_word_tokenizer(words)
    tokenizer.save_pretrained(str(out_dir))
    return tokenizer
