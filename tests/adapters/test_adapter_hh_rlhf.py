"""HH-RLHF adapter: the sample in the release's format, converted and checked by hand."""

import json
from pathlib import Path

import pytest

from pargs.adapters import hh_rlhf
from pargs.adapters.sources import LoadOptions
from pargs.records import RecordError, load_preferences

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "hh_rlhf" / "sample"


@pytest.fixture
def load(tmp_path):
    """Reading options with a private datasets cache."""
    return LoadOptions(cache_dir=str(tmp_path / "hf-cache"))


def test_sample_train_split(tmp_path, load):
    out = tmp_path / "hh.jsonl"
    report = hh_rlhf.convert(SAMPLE, "train", out, load=load)
    # folder files are read sorted: harmless-base (rows 0-4), then helpful-base (rows 5-8); test.jsonl is not
    assert report.files == [
        str(SAMPLE / "harmless-base" / "train.jsonl"),
        str(SAMPLE / "helpful-base" / "train.jsonl"),
    ]
    assert (report.read, report.written) == (9, 3)
    assert report.unusable == {
        "unparseable transcript: no assistant turn": 1,
        "empty response": 1,
        "unparseable transcript: ends with a human turn": 1,
        "unparseable transcript: no human turn": 1,
        "unparseable transcript: dialogues differ": 1,
        "identical responses": 1,
    }
    assert report.examples["unparseable transcript: dialogues differ"] == ["hh_rlhf-train-7"]
    records, _ = load_preferences(out)  # the output loads as the project's schema
    assert [r["id"] for r in records] == ["hh_rlhf-train-3", "hh_rlhf-train-5", "hh_rlhf-train-6"]
    assert records[2] == {
        "id": "hh_rlhf-train-6",
        "prompt": "\n\nHuman: What is the capital of France?\n\nAssistant: The capital of France is Paris."
        "\n\nHuman: And of Italy?\n\nAssistant:",
        "chosen": " Rome is the capital of Italy.",
        "rejected": " Milan, I think.",
        "source": "hh_rlhf",
    }
    # "Human:" without the blank line before it is text, not a turn; the final turn is kept as written
    assert records[0]["chosen"] == " On dit « danke ». Human: is not a turn marker here.\n"
    assert records[0]["prompt"] == "\n\nHuman: Comment dit-on « merci » en allemand ?\n\nAssistant:"
    assert "« danke »" in out.read_text(encoding="utf-8")  # UTF-8 text, not \u escapes


def test_test_split_and_data_dir(tmp_path, load):
    report = hh_rlhf.convert(SAMPLE, "test", tmp_path / "test.jsonl", load=load)
    assert (report.read, report.written, report.unusable) == (1, 1, {})
    assert load_preferences(tmp_path / "test.jsonl")[0][0]["rejected"] == " Sure, it makes a stronger cleaner."

    sub = LoadOptions(cache_dir=load.cache_dir, data_dir="helpful-base")
    report = hh_rlhf.convert(SAMPLE, "train", tmp_path / "helpful.jsonl", load=sub)
    assert (report.read, report.written) == (4, 2)
    # the subset is part of default ids, so subsets converted one by one can be concatenated
    assert [r["id"] for r in load_preferences(tmp_path / "helpful.jsonl")[0]] == [
        "hh_rlhf-helpful-base-train-0",
        "hh_rlhf-helpful-base-train-1",
    ]


@pytest.mark.parametrize(
    "transcript, expected",
    [
        ("\n\nHuman: Hi\n\nAssistant: Hello.", ("\n\nHuman: Hi\n\nAssistant:", " Hello.")),
        ("\n\nHuman: Hi\n\nAssistant:", ("\n\nHuman: Hi\n\nAssistant:", "")),
        ("\n\nHuman: Hi", "unparseable transcript: no assistant turn"),
        ("\n\nHuman: Hi\n\nAssistant: Yes?\n\nHuman: Bye", "unparseable transcript: ends with a human turn"),
        ("\n\nAssistant: Hello.", "unparseable transcript: no human turn"),
    ],
)
def test_split_transcript(transcript, expected):
    assert hh_rlhf.split_transcript(transcript) == expected


def test_malformed_rows_name_file_line_and_field(tmp_path, load):
    good = {"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: a\n\nAssistant: c"}
    path = tmp_path / "train.jsonl"
    # line 2 is blank: lines count as in an editor
    path.write_text(json.dumps(good) + "\n\n" + json.dumps({"chosen": good["chosen"]}) + "\n", encoding="utf-8")
    with pytest.raises(RecordError) as err:
        hh_rlhf.convert(path, "train", tmp_path / "out.jsonl", load=load)
    assert str(err.value) == f"{path}, line 3: field 'rejected' is missing or null"
    assert (err.value.path, err.value.line, err.value.field) == (str(path), 3, "rejected")

    path = tmp_path / "typed.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps({"chosen": 7, "rejected": "x"}) + "\n", encoding="utf-8")
    with pytest.raises(RecordError, match=r"typed\.jsonl, line 2: field 'chosen' must be a string, got int"):
        hh_rlhf.convert(path, "train", tmp_path / "out.jsonl", load=load)
    assert not (tmp_path / "out.jsonl").exists()
