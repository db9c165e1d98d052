"""The study's evidence files (pargs/study/evidence_files.py, pargs/study/csv_gz.py): exact round trips,
reproducible bytes, and one-line errors for a folder that is not evidence."""

from __future__ import annotations

import gzip
import json
import math

import pytest

from pargs.errors import ConfigError
from pargs.study.csv_gz import read_csv_gz, write_csv_gz
from pargs.study.evidence_files import MANIFEST, Tables, load_tables, save
from pargs.study.plan import FULL, SMOKE, plan_from_dict
from pargs.study.report import report_folder

COLUMNS = {"seed": int, "method": str, "prompt": str, "reward": float, "self_rouge_l": "float?", "flag": "bool?"}


def test_rows_read_back_exactly_and_the_bytes_repeat(tmp_path):
    rows = [
        {"seed": 0, "method": "pargs", "prompt": 'a, "quoted"\nprompt', "reward": 0.1 + 0.2, "self_rouge_l": None,
         "flag": True},
        {"seed": 1, "method": "top-k", "prompt": "p1", "reward": -1e-300, "self_rouge_l": math.inf, "flag": None},
        {"seed": 2, "method": "x", "prompt": "p2", "reward": math.nan, "self_rouge_l": 2 / 3, "flag": False},
    ]  # fmt: skip
    write_csv_gz(tmp_path / "a.csv.gz", list(COLUMNS), rows)
    back = read_csv_gz(tmp_path / "a.csv.gz", COLUMNS)
    assert back[0] == rows[0] and back[0]["reward"] == 0.30000000000000004  # every bit of the float
    assert back[1] == rows[1]
    assert math.isnan(back[2]["reward"]) and {k: v for k, v in back[2].items() if k != "reward"} == {
        k: v for k, v in rows[2].items() if k != "reward"
    }
    write_csv_gz(tmp_path / "b.csv.gz", list(COLUMNS), rows)
    assert (tmp_path / "a.csv.gz").read_bytes() == (tmp_path / "b.csv.gz").read_bytes()  # no time stamp, no name


def test_a_folder_that_is_not_evidence_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="manifest.json is missing"):
        load_tables(tmp_path)
    with pytest.raises(ConfigError, match="no study evidence there"):
        report_folder(tmp_path)
    save(Tables({"seeds": [0]}, {"ablation.csv.gz": []}), tmp_path / "evidence")
    assert report_folder(tmp_path) == tmp_path
    assert json.loads((tmp_path / "evidence" / MANIFEST).read_text())["files"] == {
        "ablation.csv.gz": ["seed", "method", "prompt", "samples", "reward"]
    }
    with gzip.open(tmp_path / "evidence" / "ablation.csv.gz", "wt") as fh:
        fh.write("seed,method\n0,pargs\n")
    with pytest.raises(ConfigError, match=r"ablation.csv.gz: columns \['prompt', 'samples', 'reward'\] are missing"):
        load_tables(tmp_path / "evidence")
    manifest = json.loads((tmp_path / "evidence" / MANIFEST).read_text())
    (tmp_path / "evidence" / MANIFEST).write_text(json.dumps({**manifest, "format": 99}))
    with pytest.raises(ConfigError, match="evidence format 99"):
        load_tables(tmp_path / "evidence")


def test_a_plan_survives_json():
    for plan in (FULL, SMOKE):
        assert plan_from_dict(json.loads(json.dumps(plan.as_dict()))) == plan
    assert plan_from_dict({**SMOKE.as_dict(), "a_later_field": 1}) == SMOKE  # unknown fields left out
