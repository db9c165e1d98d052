"""The prediction writer repairs torn files left by a run on more processes than the resumed one, holds its
directory alone, and keeps only the lines that the current settings and prompts would write."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from pargs.errors import ConfigError
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


class _Module:
    """A decoding module as the writer sees it: the settings that decide each method's lines."""

    def __init__(self, **settings) -> None:
        self.settings = settings

    def prediction_settings(self, digests):
        return self.settings


def _setup(folder, module, rank=0, world=1, on_change="refuse", prompts=None):
    writer = JsonlPredictionWriter(str(folder), on_change=on_change)
    datamodule = SimpleNamespace(records=prompts) if prompts is not None else None
    writer.setup(SimpleNamespace(global_rank=rank, world_size=world, datamodule=datamodule), module, "predict")
    return writer


def _rec(pid, method, prompt="p", sample=0):
    return json.dumps({"id": pid, "method": method, "sample": sample, "prompt": prompt, "reference": []}) + "\n"


def test_a_second_writer_on_the_same_directory_is_refused_until_the_first_ends(tmp_path):
    first = _setup(tmp_path, _Module(a={"beta": 1}))
    with pytest.raises(
        ConfigError,
        match=rf"predictions directory {tmp_path} is in use by another pargs predict "
        rf"\(pid {os.getpid()} on host ",
    ):
        _setup(tmp_path, _Module(a={"beta": 1}))
    first.teardown(None, None, "predict")
    _setup(tmp_path, _Module(a={"beta": 1})).teardown(None, None, "predict")


def test_restart_removes_the_changed_method_from_every_rank_file_and_keeps_the_rest(tmp_path):
    _setup(tmp_path, _Module(a={"beta": 1}, b={"k": 4})).teardown(None, None, "predict")  # the record
    (tmp_path / "predictions-rank0.jsonl").write_text(_rec("1", "a") + _rec("1", "b") + _rec("1", "gone"))
    (tmp_path / "predictions-rank1.jsonl").write_text(_rec("2", "b") + _rec("2", "a"))
    changed = _Module(a={"beta": 1}, b={"k": 5})
    with pytest.raises(ConfigError, match=r"method 'b' \(2 lines\): k 4 -> 5\. "):
        _setup(tmp_path, changed)
    _setup(tmp_path, changed, on_change="restart").teardown(None, None, "predict")
    assert (tmp_path / "predictions-rank0.jsonl").read_text() == _rec("1", "a") + _rec("1", "gone")
    assert (tmp_path / "predictions-rank1.jsonl").read_text() == _rec("2", "a")
    recorded = json.loads((tmp_path / "manifest.json").read_text())["methods"]
    assert recorded == {"a": {"settings": {"beta": 1}}, "b": {"settings": {"k": 5}}}


def test_a_record_without_lines_binds_nothing(tmp_path):
    _setup(tmp_path, _Module(a={"beta": 1})).teardown(None, None, "predict")  # a run that stopped before decoding
    _setup(tmp_path, _Module(a={"beta": 2})).teardown(None, None, "predict")
    assert json.loads((tmp_path / "manifest.json").read_text())["methods"]["a"] == {"settings": {"beta": 2}}


def test_lines_of_another_prompt_are_refused_and_restarted_alone(tmp_path):
    _setup(tmp_path, _Module(a={})).teardown(None, None, "predict")
    (tmp_path / "predictions-rank0.jsonl").write_text(_rec("1", "a", "old") + _rec("2", "a", "same"))
    prompts = [
        {"id": "1", "prompt": "new", "_file": "prompts.jsonl"},
        {"id": "2", "prompt": "same"},
        {"id": "3", "prompt": "added"},
    ]
    with pytest.raises(
        ConfigError,
        match=r"holds 1 line decoded from another prompt or other references than "
        r"prompts.jsonl holds now for their id \(ids '1'\)",
    ):
        _setup(tmp_path, _Module(a={}), prompts=prompts)
    writer = _setup(tmp_path, _Module(a={}), prompts=prompts, on_change="restart")
    assert writer.done == {("2", "a", 0)}
    writer.teardown(None, None, "predict")


@pytest.mark.parametrize(
    ("text", "why"),
    [('{"methods": {"top-k": ', "Expecting value"), ("[1, 2]", "no `methods` object"), (b"\xff\xfe", "utf-8")],
)
def test_a_manifest_that_cannot_be_read_is_one_clear_error(tmp_path, text, why):
    from pargs.lit.manifest import read_manifest, write_manifest

    path = tmp_path / "manifest.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ConfigError) as err:
        read_manifest(tmp_path)
    message = str(err.value)
    assert message.startswith(f"{path} is not a pargs predictions manifest (") and why in message
    assert "--on_change restart" in message and "\n" not in message
    assert path.read_bytes() == (text if isinstance(text, bytes) else text.encode())  # nothing is overwritten
    write_manifest(tmp_path, {"methods": {"top-k": {"settings": {"k": 10}}}})  # a good one reads back
    assert read_manifest(tmp_path)["methods"] == {"top-k": {"settings": {"k": 10}}}
