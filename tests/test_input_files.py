"""Files as users hand them over: a UTF-8 byte order mark, a torn last line, a directory where a file is
expected, an empty file. Each is read, or refused with one message that says what is wrong (issue 13, s4)."""

from __future__ import annotations

import codecs
import json
import os
import subprocess
import sys

import pytest

from pargs.cli import main
from pargs.records import RecordError, load_preferences, load_prompts, load_rollouts, load_sft
from tests.helpers import fit_yaml
from tests.subprocesses import ROOT

BOM = codecs.BOM_UTF8
PAIR = {"id": "a", "prompt": "write a review of the zoo :", "chosen": "the shop was good .", "rejected": "bad ."}
PROMPT = {"id": "p", "prompt": "write a review of the zoo :", "reference": "good"}
SFT = {"id": "s", "prompt": "write a review of the zoo :", "response": "the zoo was good ."}
ROLLOUT = {"id": "p", "prompt": "write a review :", "response": "good .", "reward": 0.5, "method": "m", "sample": 0}


def _jsonl(path, rows, prefix=b""):
    path.write_bytes(prefix + b"".join(json.dumps(r).encode() + b"\n" for r in rows))
    return path


@pytest.mark.parametrize(
    "load, row", [(load_preferences, PAIR), (load_prompts, PROMPT), (load_sft, SFT), (load_rollouts, ROLLOUT)]
)
def test_a_byte_order_mark_is_read_like_prepare_py_reads_it(tmp_path, load, row):
    plain = load(_jsonl(tmp_path / "plain.jsonl", [row, dict(row, id="b")]))
    with_bom = load(_jsonl(tmp_path / "bom.jsonl", [row, dict(row, id="b")], prefix=BOM))
    records = lambda x: x[0] if isinstance(x, tuple) else x  # noqa: E731 (loaders return records or (records, report))
    assert records(with_bom) == records(plain) and records(plain)[0]["id"] == row["id"]


def test_training_and_conversion_accept_a_byte_order_mark(tmp_path, model_dirs):
    """The conversion of a BOM CSV used to fail on its first column name ('\\ufeffsrc'), and training on a BOM
    file failed on line 1; now both read it, and the converted records train."""
    from pargs.adapters import generic, mt_post_edits
    from pargs.adapters.sources import LoadOptions
    from pargs.datamodules import PreferenceDataModule
    from pargs.judging import load_template

    csv_file = tmp_path / "edits.csv"
    csv_file.write_bytes(BOM + b"src,mt,pe\nthe zoo,der zoo,der Zoo\n")
    out = tmp_path / "edits.jsonl"
    report = mt_post_edits.convert(csv_file, "train", out, load=LoadOptions(cache_dir=str(tmp_path / "c")))
    assert (report.read, report.written) == (1, 1)
    [record], _ = load_preferences(out)
    assert (record["chosen"], record["rejected"]) == (" der Zoo", " der zoo")

    train = _jsonl(tmp_path / "pairs.jsonl", [PAIR, dict(PAIR, id="b")], prefix=BOM)
    dm = PreferenceDataModule(train_file=str(train), tokenizer=str(model_dirs["reference"]))
    dm.setup("fit")
    assert [ex["id"] for ex in dm.datasets["train"]] == ["a", "b"]

    template = tmp_path / "judge.txt"
    template.write_bytes(BOM + b"Q: {prompt}\nA: {first}\nB: {second}\nBetter:")
    assert load_template(template).startswith("Q: {prompt}")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_bytes(BOM + b"prompt: q\nchosen: good\n")
    assert generic.load_mapping(mapping) == {"prompt": "q", "chosen": "good"}


def test_a_torn_last_line_is_named_as_such(tmp_path):
    good = json.dumps(PAIR)
    torn = '{"id": "b", "prompt": "p", "chosen": "c", "rejected": '
    for tail in (torn, torn + "\n", '{"id": "b", "prompt": "p", "chosen": "c", "rejected": "r', '{"id": "b", "pro'):
        path = tmp_path / "pairs.jsonl"
        path.write_text(good + "\n" + tail)
        with pytest.raises(RecordError) as err:
            load_preferences(path)
        column = len(tail.rstrip("\n")) + 1
        assert str(err.value) == (
            f"{path}, line 2: is not valid JSON: it ends (column {column}) before its value does, a torn line such "
            "as an interrupted write leaves; complete it or delete it"
        )
    # a line broken in the middle says where, once ("at column", never "at at")
    path.write_text(good + '\n{"id": "b" "prompt": "p"}\n')
    with pytest.raises(RecordError, match=r"line 2: is not valid JSON \(Expecting ',' delimiter at column 12\)$"):
        load_preferences(path)


def test_a_directory_given_as_a_data_file(tmp_path, model_dirs, capsys):
    folder = tmp_path / "data"
    folder.mkdir()
    model = {"class_path": "pargs.lit.RewardModule", "init_args": {"model": {"path": str(model_dirs["rm"])}}}
    data = {
        "class_path": "pargs.datamodules.PreferenceDataModule",
        "init_args": {"train_file": str(folder), "tokenizer": str(model_dirs["reference"])},
    }
    rc = main(["fit", "-c", str(fit_yaml(tmp_path, model, data))])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    assert [line for line in err.splitlines() if "error" in line] == [
        f"pargs: error: {folder}: is a directory; a JSONL file is expected here"
    ]


def test_an_empty_file(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    with pytest.raises(RecordError, match=r"empty.jsonl: holds no usable preference records: the file is empty"):
        load_preferences(empty)
    # the conversion command line: "is empty", where it used to say "is not a column of this source (it has )"
    command = [
        sys.executable,
        "data/hh_rlhf/prepare.py",
        "--source",
        str(empty),
        "--out",
        str(tmp_path / "o.jsonl"),
        "--cache-dir",
        str(tmp_path / "hf-cache"),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stderr) == (1, f"error: {empty}: is empty: it holds no rows to convert\n")
    csv_file = tmp_path / "empty.csv"
    csv_file.write_bytes(b"")
    from pargs.adapters import mt_post_edits
    from pargs.adapters.sources import LoadOptions

    with pytest.raises(RecordError, match=r"empty.csv: is empty: it holds no rows to convert"):
        mt_post_edits.convert(csv_file, "train", tmp_path / "o.jsonl", load=LoadOptions(cache_dir=str(tmp_path)))
