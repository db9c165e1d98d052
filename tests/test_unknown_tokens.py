"""Training data that the tokenizer mostly cannot read: a warning above 2 % unknown tokens, a refusal above
``max_unknown_share`` (issue 13, section 4: an RM trained on 93 % ``<unk>`` reported val/acc 1.0)."""

from __future__ import annotations

import json
import logging

import pytest

from pargs.cli import main
from pargs.datamodules import PreferenceDataModule, SFTDataModule
from pargs.datamodules.unknown_tokens import unknown_token_id
from pargs.errors import ConfigError
from pargs.tasks.synthetic import vocabulary
from pargs.tasks.word_tokenizer import build_word_tokenizer
from tests.helpers import fit_yaml

HH = [  # Anthropic HH style text: almost no word of it is in the synthetic task's vocabulary
    {
        "id": "0",
        "prompt": "Human: How do I bake bread at home? Assistant:",
        "chosen": "Mix flour, water, yeast and salt, then knead it.",
        "rejected": "I don't know.",
    },
    {
        "id": "1",
        "prompt": "Human: What is the capital of France? Assistant:",
        "chosen": "Paris is the capital.",
        "rejected": "London, I think.",
    },
]


def _expected(rows, fields=("prompt", "chosen", "rejected"), eos_per_row=2):
    """(unknown words, all tokens) counted here: whitespace words not in the vocabulary, plus one EOS per
    response (the word tokenizer adds no other special token)."""
    vocab = set(vocabulary())
    words = [w for r in rows for f in fields for w in r[f].split()]
    return sum(w not in vocab for w in words), len(words) + eos_per_row * len(rows)


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_fit_on_text_the_tokenizer_cannot_read_is_refused(tmp_path, model_dirs, capsys):
    train = _write(tmp_path / "hh.jsonl", HH)
    model = {"class_path": "pargs.lit.RewardModule", "init_args": {"model": {"path": str(model_dirs["rm"])}}}
    data = {
        "class_path": "pargs.datamodules.PreferenceDataModule",
        "init_args": {"train_file": str(train), "tokenizer": str(model_dirs["reference"])},
    }
    rc = main(["fit", "-c", str(fit_yaml(tmp_path, model, data))])
    err = capsys.readouterr().err
    n_unk, n = _expected(HH)
    assert n_unk / n > 0.5
    assert rc == 1 and "Traceback" not in err, err
    assert [line for line in err.splitlines() if "error" in line] == [
        f"pargs: error: {train}: {n_unk / n:.1%} of the tokens ({n_unk} of {n}) are the tokenizer's unknown token "
        f"'<unk>' (e.g. 'Human:' on line 1, field 'prompt'): tokenizer {str(model_dirs['reference'])!r} does not "
        "fit this text, and a model trained on it learns next to nothing from the words; use the tokenizer of the "
        f"model being trained (or set data.init_args.max_unknown_share above {n_unk / n:.2f} to train anyway)"
    ]


def test_a_few_unknown_words_warn_with_the_share_and_an_example(tmp_path, model_dirs, caplog):
    known = "write a review of the zoo about the shop :"
    rows = [
        {"id": str(i), "prompt": known, "chosen": "the shop was good .", "rejected": "it was bad ."} for i in range(8)
    ]
    rows[5] = dict(rows[5], rejected="it was grumpy and bad .")  # one unknown word in 8 pairs
    rows[6] = dict(rows[6], chosen="the zebra shop was good .")
    path = _write(tmp_path / "pairs.jsonl", rows)
    n_unk, n = _expected(rows)
    assert (n_unk, 0.02 < n_unk / n < 0.5) == (2, False)  # 2 of 152: under the warning threshold
    dm = PreferenceDataModule(train_file=str(path), tokenizer=str(model_dirs["reference"]))
    with caplog.at_level(logging.WARNING, logger="pargs"):
        dm.setup("fit")
    assert not [r for r in caplog.records if "unknown token" in r.getMessage()]

    rows = [dict(r, prompt=r["prompt"] + " zebra giraffe") for r in rows]  # 16 more unknown words
    path = _write(tmp_path / "pairs2.jsonl", rows)
    n_unk, n = _expected(rows)
    assert 0.02 < n_unk / n < 0.5
    caplog.clear()
    dm = PreferenceDataModule(train_file=str(path), tokenizer=str(model_dirs["reference"]))
    with caplog.at_level(logging.WARNING, logger="pargs"):
        dm.setup("fit")
    [warning] = [r.getMessage() for r in caplog.records if "unknown token" in r.getMessage()]
    assert warning.startswith(
        f"{path}: {n_unk / n:.1%} of the tokens ({n_unk} of {n}) are the tokenizer's "
        "unknown token '<unk>' (e.g. 'zebra' on line 1, field 'prompt')"
    )
    assert len(dm.datasets["train"]) == 8


def test_max_unknown_share_lets_a_user_train_anyway(tmp_path, model_dirs, caplog):
    rows = [{"id": "0", "prompt": "Human: hello there", "response": "Hi, how can I help?"}]
    path = _write(tmp_path / "sft.jsonl", rows)
    n_unk, n = _expected(rows, ("prompt", "response"), eos_per_row=1)
    assert (n_unk, n) == (8, 9)  # every word, not the EOS
    with pytest.raises(ConfigError, match=r"88.9% of the tokens \(8 of 9\).*max_unknown_share above 0.89"):
        SFTDataModule(train_file=str(path), tokenizer=str(model_dirs["reference"])).setup("fit")
    dm = SFTDataModule(train_file=str(path), tokenizer=str(model_dirs["reference"]), max_unknown_share=1.0)
    with caplog.at_level(logging.WARNING, logger="pargs"):
        dm.setup("fit")
    assert any("88.9% of the tokens (8 of 9)" in r.getMessage() for r in caplog.records)
    with pytest.raises(ConfigError, match="max_unknown_share must be a share in"):
        SFTDataModule(train_file=str(path), tokenizer=str(model_dirs["reference"]), max_unknown_share=2.0)


def test_an_unknown_token_that_is_also_eos_is_not_counted():
    """GPT-2's unk_token is <|endoftext|>, its EOS: byte-level BPE reads any text, so nothing is unknown."""
    tok = build_word_tokenizer(["a"])
    assert unknown_token_id(tok) == tok.convert_tokens_to_ids("<unk>")
    tok.unk_token = tok.eos_token
    assert unknown_token_id(tok) is None
