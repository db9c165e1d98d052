"""The prediction writer repairs torn files left by a run on more processes than the resumed one."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from pargs.lit.writer import JsonlPredictionWriter, file_rank


def _line(pid: str, sample: int = 0) -> str:
    return json.dumps({"id": pid, "method": "top-k", "sample": sample}) + "\n"


@pytest.mark.parametrize("world", [1, 2])
def test_resume_on_fewer_processes_repairs_every_torn_file(tmp_path, world):
    # a 3-process run killed mid-write: ranks 1 and 2 left half a line each
    (tmp_path / "predictions-rank0.jsonl").write_text(_line("a"))
    (tmp_path / "predictions-rank1.jsonl").write_text(_line("b") + '{"id": "c", "meth')
    (tmp_path / "predictions-rank2.jsonl").write_text(_line("d") + '{"id": "e"')
    writers = [JsonlPredictionWriter(str(tmp_path)) for _ in range(world)]
    for rank, writer in enumerate(writers):
        writer.setup(SimpleNamespace(global_rank=rank, world_size=world), None, "predict")
    for writer in writers:
        writer.teardown(None, None, "predict")
    assert (tmp_path / "predictions-rank1.jsonl").read_text() == _line("b")
    assert (tmp_path / "predictions-rank2.jsonl").read_text() == _line("d")
    assert writers[0].done == {("a", "top-k", 0), ("b", "top-k", 0), ("d", "top-k", 0)}


def test_file_rank():
    names = ("predictions-rank0.jsonl", "predictions-rank12.jsonl", "predictions-rankx.jsonl")
    assert [file_rank(Path(n)) for n in names] == [0, 12, None]
