"""UltraFeedback binarized adapter: the sample in the release's row format, checked by hand."""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pargs.adapters import ultrafeedback
from pargs.adapters.sources import LoadOptions
from pargs.errors import ConfigError
from pargs.records import RecordError, iter_jsonl, load_preferences

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "ultrafeedback" / "sample"
ID_WATER = "424d568c77a09cbbfb3b2c4181a54c1fd6cc925d14768660adf25ab793b5cd03"  # sha256 of the prompt


@pytest.fixture
def load(tmp_path):
    """Reading options with a private datasets cache."""
    return LoadOptions(cache_dir=str(tmp_path / "hf-cache"))


def test_sample_plain_template(tmp_path, load):
    out = tmp_path / "uf.jsonl"
    report = ultrafeedback.convert(SAMPLE, "test_prefs", out, load=load)
    assert report.files == [str(SAMPLE / "data" / "test_prefs.jsonl")]
    assert (report.read, report.written) == (7, 3)
    assert report.unusable == {
        "tie": 1,
        "last message not from assistant": 1,
        "empty response": 1,
        "conversations differ": 1,
    }
    assert report.notes == {"repeated source id, pair id suffixed #n": 1}
    records, _ = load_preferences(out)  # the output loads as the project's schema
    assert records[0] == {
        "id": ID_WATER,
        "prompt": "User: What is the boiling point of water at sea level?\n\nAssistant:",
        "chosen": " Water boils at 100 °C (212 °F) at sea level.",
        "rejected": " It boils at 50 degrees.",
        "source": "ultrafeedback",
        "meta": {"score_chosen": 9.0, "score_rejected": 3.5},
    }
    assert records[1]["prompt"] == (
        "System: You are a concise assistant.\n\nUser: Name a prime number.\n\n"
        "Assistant: 2 is prime.\n\nUser: Another?\n\nAssistant:"
    )
    assert (records[1]["chosen"], records[1]["rejected"]) == (" 3 is also prime.", " 4.")
    assert records[2]["id"] == ID_WATER + "#2"  # the same prompt_id twice in the source


def test_keep_ties(tmp_path, load):
    report = ultrafeedback.convert(SAMPLE, "test_prefs", tmp_path / "uf.jsonl", keep_ties=True, load=load)
    assert (report.read, report.written, report.notes["tie kept"]) == (7, 4, 1)
    assert "tie" not in report.unusable
    tie = load_preferences(tmp_path / "uf.jsonl")[0][2]
    assert tie["meta"] == {"score_chosen": 7.0, "score_rejected": 7.0}
    assert tie["prompt"] == "User: Write a haiku about rain.\n\nAssistant:"


def test_parquet_copy_gives_the_same_records(tmp_path, load):
    rows = [row for _, row in iter_jsonl(SAMPLE / "data" / "test_prefs.jsonl")]
    (tmp_path / "release" / "data").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "release/data/test_prefs-00000-of-00001.parquet")
    pq.write_table(pa.Table.from_pylist(rows[:1]), tmp_path / "release/data/train_prefs-00000-of-00001.parquet")
    ultrafeedback.convert(SAMPLE, "test_prefs", tmp_path / "from_jsonl.jsonl", load=load)
    report = ultrafeedback.convert(tmp_path / "release", "test_prefs", tmp_path / "from_parquet.jsonl", load=load)
    assert report.files == [str(tmp_path / "release/data/test_prefs-00000-of-00001.parquet")]
    assert load_preferences(tmp_path / "from_parquet.jsonl")[0] == load_preferences(tmp_path / "from_jsonl.jsonl")[0]


def test_chat_template_tokenizer(tmp_path, load):
    from pargs.tasks.word_tokenizer import build_word_tokenizer

    tokenizer = build_word_tokenizer(["hello"])
    tokenizer.chat_template = (
        "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    tokenizer.save_pretrained(tmp_path / "tok")
    out = tmp_path / "uf.jsonl"
    ultrafeedback.convert(SAMPLE, "test_prefs", out, tokenizer=str(tmp_path / "tok"), load=load)
    first, second = load_preferences(out)[0][:2]
    assert first["prompt"] == "<|user|>What is the boiling point of water at sea level?\n<|assistant|>"
    assert first["chosen"] == "Water boils at 100 °C (212 °F) at sea level."  # unchanged: no leading space
    assert second["prompt"] == (
        "<|system|>You are a concise assistant.\n<|user|>Name a prime number.\n"
        "<|assistant|>2 is prime.\n<|user|>Another?\n<|assistant|>"
    )
    assert second["chosen"] == "  3 is also prime.  "

    tokenizer.chat_template = None
    with pytest.raises(ConfigError, match="has no chat template"):
        ultrafeedback.convert(SAMPLE, "test_prefs", out, tokenizer=tokenizer, load=load)
    with pytest.raises(ConfigError, match=f"tokenizer '{tmp_path / 'none'}' could not be loaded"):
        ultrafeedback.convert(SAMPLE, "test_prefs", out, tokenizer=str(tmp_path / "none"), load=load)
    with pytest.raises(ConfigError, match="role_labels must give a label for 'assistant'"):
        ultrafeedback.convert(SAMPLE, "test_prefs", out, role_labels={"user": "Q"}, load=load)


def test_a_chat_template_that_rejects_a_conversation_names_the_row(tmp_path, load):
    from pargs.tasks.word_tokenizer import build_word_tokenizer

    tokenizer = build_word_tokenizer(["hello"])
    tokenizer.chat_template = (  # a template that refuses system turns, as some instruct models' do
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system turns') }}{% endif %}"
        "<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    first_system = next(
        line
        for line, row in iter_jsonl(SAMPLE / "data" / "test_prefs.jsonl")
        if any(m["role"] == "system" for m in row["chosen"])
    )
    with pytest.raises(RecordError) as err:
        ultrafeedback.convert(SAMPLE, "test_prefs", tmp_path / "uf.jsonl", tokenizer=tokenizer, load=load)
    path = SAMPLE / "data" / "test_prefs.jsonl"
    assert str(err.value) == (
        f"{path}, line {first_system}: field 'chosen' the tokenizer's chat template rejects it: no system turns"
    )


def _row(**changes):
    row = {
        "prompt": "Hi",
        "prompt_id": "p1",
        "chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
        "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Go away."}],
        "score_chosen": 8.0,
        "score_rejected": 2.0,
    }
    row.update(changes)
    return row


def test_unknown_role_needs_a_label(tmp_path, load):
    tool = [
        {"role": "user", "content": "Hi"},
        {"role": "tool", "content": "{}"},
        {"role": "assistant", "content": "A"},
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(_row(chosen=tool, rejected=tool[:2] + [{"role": "assistant", "content": "B"}])) + "\n")
    with pytest.raises(RecordError, match=r"line 1: field 'chosen\[1\].role' is 'tool', which the plain-text"):
        ultrafeedback.convert(path, "x", tmp_path / "out.jsonl", load=load)
    labels = {**ultrafeedback.ROLE_LABELS, "tool": "Tool output"}
    ultrafeedback.convert(path, "x", tmp_path / "out.jsonl", role_labels=labels, load=load)
    assert load_preferences(tmp_path / "out.jsonl")[0][0]["prompt"] == "User: Hi\n\nTool output: {}\n\nAssistant:"


@pytest.mark.parametrize(
    "bad, field, message",
    [
        (_row(score_chosen="8"), "score_chosen", "must be an integer or a number, got str"),
        (
            _row(chosen=[{"role": "user", "content": "Hi"}, {"role": "assistant"}]),
            "chosen[1].content",
            "is missing",
        ),
        (_row(rejected="Go away."), "rejected", "must be a list, got str"),
        (
            _row(chosen=[{"role": "user", "content": "Hi"}, "Hello!"]),
            "chosen[1]",
            "must be an object, got str",
        ),
    ],
)
def test_malformed_row_names_file_line_and_field(tmp_path, load, bad, field, message):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(_row()) + "\n" + json.dumps(bad) + "\n", encoding="utf-8")
    with pytest.raises(RecordError) as err:
        ultrafeedback.convert(path, "x", tmp_path / "out.jsonl", load=load)
    assert str(err.value).startswith(f"{path}, line 2: field '{field}' {message}")
