"""A model directory's digest follows its content: the bytes of the files ``from_pretrained`` reads, not the
path, not the modification time; a file is read again only when its size or time changed."""

from __future__ import annotations

import hashlib
import os
import shutil

from pargs.lit.manifest import differences
from pargs.models.identity import FileDigests


def _by_hand(folder, names) -> str:
    """The documented digest, computed independently: sha256 over "name\\0sha256(bytes)\\n" in name order."""
    combined = hashlib.sha256()
    for name in sorted(names):
        combined.update(f"{name}\0{hashlib.sha256((folder / name).read_bytes()).hexdigest()}\n".encode())
    return "sha256:" + combined.hexdigest()


def test_the_digest_is_that_of_the_files_from_pretrained_reads(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "gpt2"}')
    (model / "model.safetensors").write_bytes(bytes(range(256)) * 64)
    (model / "optimizer.pt").write_bytes(b"training state")  # not read by from_pretrained
    (model / "checkpoint-10").mkdir()  # sub-folders neither
    digest = FileDigests().directory(model)
    assert digest == _by_hand(model, ["config.json", "model.safetensors"])
    (model / "optimizer.pt").write_bytes(b"other state")
    assert FileDigests().directory(model) == digest


def test_same_bytes_elsewhere_or_touched_give_the_same_digest_other_bytes_another(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"\x01" * 1000)
    digests = FileDigests()
    before = digests.directory(model)
    shutil.copytree(model, tmp_path / "moved")
    os.utime(tmp_path / "moved" / "model.safetensors", ns=(1, 1))
    assert digests.directory(tmp_path / "moved") == before
    (model / "model.safetensors").write_bytes(b"\x02" * 1000)  # retrained: same size, other bytes, newer time
    assert digests.directory(model) == _by_hand(model, ["model.safetensors"]) != before


def test_a_file_whose_size_and_time_did_not_change_is_not_read_again(tmp_path):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"\x01" * 1000)
    first = FileDigests()
    digest = first.files([weights])[weights]
    stat = weights.stat()
    weights.write_bytes(b"\x02" * 1000)  # the documented blind spot: same size, time set back
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    again = FileDigests(first.cache)
    assert again.files([weights])[weights] == digest and again.hashed_bytes == 0
    assert FileDigests().files([weights])[weights] == hashlib.sha256(b"\x02" * 1000).hexdigest()


def test_a_name_that_is_neither_local_nor_downloaded_stands_for_itself(tmp_path):
    assert FileDigests().source("no-such-org/no-such-model") is None
    assert FileDigests().source(str(tmp_path / "missing")) is None


def test_a_location_counts_only_when_a_content_is_unknown():
    old = {"beta": 1.5, "scorers.rm.model.path": "runs/a/rm", "scorers.rm.model.files": "sha256:aa"}
    moved = dict(old, **{"scorers.rm.model.path": "runs/b/rm"})
    assert differences(old, moved) == []
    retrained = dict(old, **{"scorers.rm.model.files": "sha256:bb"})
    assert differences(old, retrained) == [("scorers.rm.model.files", "sha256:aa", "sha256:bb")]
    by_name = {"policies.p.path": "org/model", "policies.p.files": None}
    downloaded = {"policies.p.path": "org/model", "policies.p.files": "hub:org/model@abc"}
    assert differences(by_name, downloaded) == []
    assert differences(by_name, {"policies.p.path": "org/other", "policies.p.files": None}) == [
        ("policies.p.path", "org/model", "org/other")
    ]


def test_a_downloaded_hub_model_is_named_by_its_cached_commit(tmp_path, monkeypatch):
    import huggingface_hub.constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models--org--tiny"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "config.json").write_text("{}")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    assert FileDigests().source("org/tiny") == f"hub:org/tiny@{commit}"
