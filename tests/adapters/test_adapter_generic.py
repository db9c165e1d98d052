"""Generic adapter: a column mapping over JSONL, CSV and Parquet, checked by hand."""

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pargs.adapters import generic
from pargs.adapters.sources import LoadOptions
from pargs.errors import ConfigError
from pargs.records import RecordError, load_preferences

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "generic" / "sample" / "train.jsonl"
MAPPING = {"prompt": "question", "chosen": "good", "rejected": "bad", "id": "qid"}


@pytest.fixture
def load(tmp_path):
    """Reading options with a private datasets cache."""
    return LoadOptions(cache_dir=str(tmp_path / "hf-cache"))


def test_sample_with_mapping(tmp_path, load):
    out = tmp_path / "qa.jsonl"
    report = generic.convert(SAMPLE, "train", out, columns=MAPPING, name="qa", meta_fields=["topic"], load=load)
    assert (report.read, report.written) == (6, 3)
    assert report.unusable == {"empty prompt": 1, "empty response": 1, "identical responses": 1}
    assert report.examples == {
        "empty prompt": ["103"],
        "empty response": ["104"],
        "identical responses": ["105"],
    }
    records, _ = load_preferences(out)  # the output loads as the project's schema
    # qid is an int in some rows and a string in others: ids are its text; the repeated 101 gets #2
    assert [r["id"] for r in records] == ["101", "q-102", "101#2"]
    assert records[0] == {
        "id": "101",
        "prompt": "Q: What colour is the sky on a clear day?\nA:",
        "chosen": " Blue.",
        "rejected": " Green.",
        "source": "qa",
        "meta": {"topic": "science"},
    }
    assert records[2]["meta"] == {"topic": None}  # the last row has no topic


def test_csv_default_columns_without_ids(tmp_path, load):
    path = tmp_path / "pairs.csv"
    path.write_text('prompt,chosen,rejected\nQ: 1+1?,2,3\n"Q: say ""hi""",hi,\n007,yes,no\n', encoding="utf-8")
    report = generic.convert(path, "dev", tmp_path / "out.jsonl", load=load)
    assert report.unusable == {"empty response": 1}  # an empty cell is an empty string, not a missing field
    assert load_preferences(tmp_path / "out.jsonl")[0] == [
        {"id": "generic-dev-0", "prompt": "Q: 1+1?", "chosen": "2", "rejected": "3", "source": "generic"},
        {"id": "generic-dev-2", "prompt": "007", "chosen": "yes", "rejected": "no", "source": "generic"},
    ]  # cells are text: "007" stays "007"


def test_parquet_nested_column_and_row_numbers(tmp_path, load):
    columns = {"prompt": "q.text", "chosen": "a", "rejected": "b"}
    good = {"q": {"text": "Why?"}, "a": "Because.", "b": "No."}
    pq.write_table(pa.Table.from_pylist([good]), tmp_path / "train-00000-of-00001.parquet")
    generic.convert(tmp_path, "train", tmp_path / "out.jsonl", columns=columns, load=load)
    assert load_preferences(tmp_path / "out.jsonl")[0][0]["prompt"] == "Why?"

    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pylist([good, {"q": {"text": "Ok?"}, "a": None, "b": "y"}]), bad)
    with pytest.raises(RecordError) as err:
        generic.convert(bad, "train", tmp_path / "out2.jsonl", columns=columns, load=load)
    assert str(err.value) == f"{bad}, row 1: field 'a' is missing or null"
    assert (err.value.line, err.value.row, err.value.field) == (None, 1, "a")


def test_mapping_errors(tmp_path, load):
    with pytest.raises(ConfigError, match=r"unknown record fields \['answer'\]"):
        generic.convert(SAMPLE, "train", tmp_path / "x.jsonl", columns={"answer": "good"})
    with pytest.raises(ConfigError, match=r"columns must map \['chosen'\] to non-empty column names"):
        generic.convert(SAMPLE, "train", tmp_path / "x.jsonl", columns={"chosen": ""})
    with pytest.raises(ConfigError, match="name must be a non-empty string"):
        generic.convert(SAMPLE, "train", tmp_path / "x.jsonl", name="")
    with pytest.raises(RecordError, match=r"field 'prompt' is not a column of this source"):
        generic.convert(SAMPLE, "train", tmp_path / "x.jsonl", load=load)
