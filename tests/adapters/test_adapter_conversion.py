"""What all adapters share: reading sources, locating errors, atomic writing, reports, scripts, registry."""

import gzip
import importlib.util
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pargs.adapters import ADAPTERS, get_adapter, hh_rlhf, tldr
from pargs.adapters.fields import SourceError, template_fields
from pargs.adapters.sources import LoadOptions
from pargs.errors import ConfigError, SourceUnavailableError
from pargs.records import RecordError, load_preferences

ROOT = Path(__file__).resolve().parents[2]
GOOD = {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!", "rejected": "\n\nHuman: Hi\n\nAssistant: Go away."}


@pytest.fixture
def load(tmp_path):
    """Reading options with a private datasets cache."""
    return LoadOptions(cache_dir=str(tmp_path / "hf-cache"))


def write_lines(path, rows):
    """Write ``rows`` as JSON lines (creating folders); return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_registry():
    assert sorted(ADAPTERS) == ["generic", "hh_rlhf", "mt_post_edits", "tldr", "ultrafeedback"]
    assert get_adapter("hh_rlhf").convert is hh_rlhf.convert
    assert get_adapter("tldr").hub_name == "openai/summarize_from_feedback"
    with pytest.raises(ConfigError, match="unknown dataset adapter 'hh'.*generic, hh_rlhf"):
        get_adapter("hh")


def test_adapters_do_not_import_lightning():
    code = "import sys, pargs.adapters; print(sorted(m for m in sys.modules if m.split('.')[0] == 'lightning'))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "[]\n"), done.stderr


def test_local_sources_never_touch_the_network(tmp_path, load, monkeypatch):
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args[:2])
        raise OSError("network use in a test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    report = hh_rlhf.convert(write_lines(tmp_path / "train.jsonl", [GOOD]), "train", tmp_path / "o.jsonl", load=load)
    assert (report.written, attempts) == (1, [])


def test_error_leaves_existing_output_untouched(tmp_path, load):
    out = tmp_path / "out" / "pairs.jsonl"
    out.parent.mkdir()
    out.write_text("previous run\n")
    rows = [GOOD] * 50 + [{"chosen": GOOD["chosen"], "rejected": None}]
    with pytest.raises(RecordError, match="line 51: field 'rejected' is missing"):
        hh_rlhf.convert(write_lines(tmp_path / "train.jsonl", rows), "train", out, load=load)
    assert out.read_text() == "previous run\n"
    assert [p.name for p in out.parent.iterdir()] == ["pairs.jsonl"]  # no temporary file left behind


def test_gzip_and_json_array_files(tmp_path, load):
    plain = write_lines(tmp_path / "train.jsonl", [GOOD, {**GOOD, "rejected": "\n\nHuman: Hi\n\nAssistant:"}])
    with open(plain, "rb") as src, gzip.open(tmp_path / "copy.jsonl.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    report = hh_rlhf.convert(tmp_path / "copy.jsonl.gz", "train", tmp_path / "gz.jsonl", load=load)
    assert (report.read, report.written, report.unusable) == (2, 1, {"empty response": 1})

    array = tmp_path / "rows.json"
    array.write_text(json.dumps([GOOD, {"chosen": GOOD["chosen"], "rejected": 3}]), encoding="utf-8")
    with pytest.raises(SourceError) as err:
        hh_rlhf.convert(array, "train", tmp_path / "a.jsonl", load=load)
    # a JSON array has no line per row: the error names the row (0-based, as in dataset[1])
    assert str(err.value) == f"{array}, row 1: field 'rejected' must be a string, got int"


def test_invalid_json_line(tmp_path, load):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(GOOD) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(RecordError, match=r"train\.jsonl, line 2: is not valid JSON"):
        hh_rlhf.convert(path, "train", tmp_path / "out.jsonl", load=load)


def test_hub_source_goes_through_load_dataset(tmp_path, monkeypatch):
    """The hub path, with ``datasets.load_dataset`` replaced: no network."""
    import datasets

    calls = []

    def fake_load_dataset(name, config=None, **kwargs):
        calls.append((name, config, kwargs))
        return datasets.Dataset.from_list([GOOD, {"chosen": GOOD["chosen"], "rejected": None}])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    options = LoadOptions(data_dir="harmless-base", revision="abc123", cache_dir=str(tmp_path / "c"))
    with pytest.raises(SourceError) as err:
        hh_rlhf.convert("Anthropic/hh-rlhf", "train", tmp_path / "out.jsonl", load=options)
    assert calls == [
        (
            "Anthropic/hh-rlhf",
            None,
            {
                "split": "train",
                "data_dir": "harmless-base",
                "revision": "abc123",
                "cache_dir": str(tmp_path / "c"),
            },
        )
    ]
    assert str(err.value) == "Anthropic/hh-rlhf [train], row 1: field 'rejected' is missing or null"

    calls.clear()
    monkeypatch.setattr(
        datasets,
        "load_dataset",
        lambda name, config=None, **kw: (
            calls.append(config) or datasets.Dataset.from_dict({"info": [], "summaries": [], "choice": []})
        ),
    )
    report = tldr.convert("openai/summarize_from_feedback", "train", tmp_path / "t.jsonl")
    assert calls == ["comparisons"]  # the adapter's default configuration
    assert (report.read, (tmp_path / "t.jsonl").read_text()) == (0, "")


def test_hub_errors_say_what_to_do(tmp_path, monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(SourceUnavailableError, match="pass its local path as the source") as err:
        hh_rlhf.convert("Anthropic/hh-rlhf", "train", tmp_path / "out.jsonl")
    assert isinstance(err.value.__cause__, ConnectionError)


def test_source_errors(tmp_path, load):
    with pytest.raises(RecordError, match="not found: pass an existing file or folder"):
        hh_rlhf.convert(tmp_path / "missing.jsonl", "train", tmp_path / "o.jsonl", load=load)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(RecordError, match="unsupported format"):
        hh_rlhf.convert(tmp_path / "notes.txt", "train", tmp_path / "o.jsonl", load=load)
    write_lines(tmp_path / "rel" / "test.jsonl", [GOOD])
    with pytest.raises(RecordError, match=r"has no file for split 'train' .* it holds: test\.jsonl"):
        hh_rlhf.convert(tmp_path / "rel", "train", tmp_path / "o.jsonl", load=load)
    with pytest.raises(ConfigError, match="config and revision apply to hub datasets"):
        hh_rlhf.convert(tmp_path / "rel", "test", tmp_path / "o.jsonl", load=LoadOptions(revision="main"))
    with pytest.raises(ConfigError, match="split_field selects rows of a local copy"):
        hh_rlhf.convert("Anthropic/hh-rlhf", "train", tmp_path / "o.jsonl", load=LoadOptions(split_field="split"))
    with pytest.raises(ConfigError, match="would overwrite the source file"):
        hh_rlhf.convert(tmp_path / "rel" / "test.jsonl", "test", tmp_path / "rel" / "test.jsonl", load=load)
    with pytest.raises(RecordError, match="field 'chosen' is not a column of this source"):
        hh_rlhf.convert(write_lines(tmp_path / "x.jsonl", [{"text": "a"}]), "x", tmp_path / "o.jsonl", load=load)


def test_a_csv_header_that_is_not_utf8_names_the_file(tmp_path, load):
    bad = tmp_path / "pe.csv"
    bad.write_bytes(b"src,mt,p\xe9\nHello,Hallo,Hallo\n")
    with pytest.raises(RecordError) as err:
        get_adapter("mt_post_edits").convert(bad, "test", tmp_path / "o.jsonl", load=load)
    assert str(err.value).startswith(f"{bad}, line 1: cannot read its header line as UTF-8 text (")


def test_split_folders_and_shards(tmp_path, load):
    write_lines(tmp_path / "rel" / "train" / "part-0.jsonl", [GOOD])
    write_lines(tmp_path / "rel" / "train" / "part-1.jsonl", [GOOD, GOOD])
    write_lines(tmp_path / "rel" / "test-00000-of-00001.jsonl", [GOOD])
    write_lines(tmp_path / "rel" / ".cache" / "train.jsonl", [GOOD])  # hidden: never read
    report = hh_rlhf.convert(tmp_path / "rel", "train", tmp_path / "o.jsonl", load=load)
    assert (report.read, len(report.files)) == (3, 2)
    report = hh_rlhf.convert(tmp_path / "rel", "test", tmp_path / "o.jsonl", load=load)
    assert report.files == [str(tmp_path / "rel" / "test-00000-of-00001.jsonl")]


def test_template_fields():
    assert template_fields("{a} and {b}, {a}", ("a", "b"), "t") == ["a", "b", "a"]
    assert template_fields("literal {{braces}} {a}", ("a",), "t") == ["a"]
    with pytest.raises(ConfigError, match=r"uses \{a:>5\}"):
        template_fields("{a:>5}", ("a",), "t")
    with pytest.raises(ConfigError, match=r"uses \{\}"):
        template_fields("{}", ("a",), "t")


def _load_script(name):
    spec = importlib.util.spec_from_file_location(f"prepare_{name}", ROOT / "data" / name / "prepare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "name, args, read, written",
    [
        ("hh_rlhf", "--source data/hh_rlhf/sample", 9, 3),
        ("tldr", "--source data/tldr/sample --split-field split --prompts-out {tmp}/p.jsonl", 6, 3),
        ("ultrafeedback", "--source data/ultrafeedback/sample --split test_prefs --keep-ties", 7, 4),
        ("mt_post_edits", "--source data/mt_post_edits/sample/test.csv --template 'EN: {src}\\nDE:'", 8, 4),
        (
            "generic",
            "--source data/generic/sample/train.jsonl --prompt question --chosen good --rejected bad "
            "--id qid --meta-field topic",
            6,
            3,
        ),
        ("generic", "--source data/generic/sample/train.jsonl --mapping data/generic/sample/mapping.yaml", 6, 3),
    ],
)
def test_prepare_scripts_on_samples(tmp_path, monkeypatch, name, args, read, written):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "out.jsonl"
    argv = shlex.split(args.replace("{tmp}", str(tmp_path)))
    report = _load_script(name).main([*argv, "--out", str(out), "--cache-dir", str(tmp_path / "hf-cache")])
    assert (report.read, report.written) == (read, written)
    assert report.read == report.written + sum(report.unusable.values())
    records, load_report = load_preferences(out)  # no drop_unusable needed: nothing unusable is written
    assert len(records) == written and not load_report.dropped
    assert {r["source"] for r in records} == {name}
    json.dumps(report.as_dict())
    if name == "mt_post_edits":
        assert records[0]["prompt"] == "EN: I would like a coffee, please.\nDE:"


def test_generic_mapping_file_equals_the_flags_and_names_bad_keys(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    script = _load_script("generic")
    source = ["--source", "data/generic/sample/train.jsonl", "--cache-dir", str(tmp_path / "hf-cache")]
    script.main(
        [
            *source,
            "--prompt",
            "question",
            "--chosen",
            "good",
            "--rejected",
            "bad",
            "--id",
            "qid",
            "--meta-field",
            "topic",
            "--out",
            str(tmp_path / "flags.jsonl"),
        ]
    )
    script.main([*source, "--mapping", "data/generic/sample/mapping.yaml", "--out", str(tmp_path / "file.jsonl")])
    assert (tmp_path / "flags.jsonl").read_text() == (tmp_path / "file.jsonl").read_text()
    bad = tmp_path / "mapping.yaml"
    bad.write_text("prompt: question\nresponse: good\n")
    with pytest.raises(RecordError, match=rf"{bad}: field 'response' is not a mapping key"):
        script.main([*source, "--mapping", str(bad), "--out", str(tmp_path / "bad.jsonl")])
    assert not (tmp_path / "bad.jsonl").exists()


@pytest.mark.parametrize(
    "script, args, message",
    [  # each was a ValueError / RuntimeError before it was a ConfigError
        (
            "mt_post_edits",
            "--source data/mt_post_edits/sample/test.csv --template 'EN: x'",
            "template 'EN: x' must contain {src}, where the source sentence goes",
        ),
        (
            "tldr",
            "--source data/tldr/sample --split-field split --template '{author}'",
            "template '{author}' uses {author}; it may only use plain fields among {subreddit}, {title}, {post} "
            "(write {{ and }} for literal braces)",
        ),
        (
            "hh_rlhf",
            "--source data/hh_rlhf/sample --revision main",
            "config and revision apply to hub datasets, but data/hh_rlhf/sample is a local path: drop them",
        ),
        (
            "hh_rlhf",
            "--source Anthropic/hh-rlhf",
            "could not load 'Anthropic/hh-rlhf' (config None, split 'train') from the Hugging Face Hub: ",
        ),
    ],
)
def test_prepare_script_errors_are_one_line(tmp_path, script, args, message):
    command = [
        sys.executable,
        f"data/{script}/prepare.py",
        *shlex.split(args),
        "--out",
        str(tmp_path / "o.jsonl"),
        "--cache-dir",
        str(tmp_path / "hf-cache"),
    ]
    # offline: the hub source fails at once, as it does without a network
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf-home"),
    }
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith(f"error: {message}") and done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "o.jsonl").exists()


def test_prepare_script_prints_the_report(tmp_path):
    """The command line itself, once: it prints the report, and a bad source fails with its message."""
    out = tmp_path / "out.jsonl"
    command = [sys.executable, "data/hh_rlhf/prepare.py", "--source", "data/hh_rlhf/sample"]
    command += ["--out", str(out), "--cache-dir", str(tmp_path / "hf-cache")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("hh_rlhf [train] from data/hh_rlhf/sample: read 9 rows, wrote 3 ")
    assert "1  unparseable transcript: dialogues differ  (e.g. hh_rlhf-train-7)" in done.stdout

    command[3] = str(tmp_path / "missing.jsonl")
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    missing = tmp_path / "missing.jsonl"
    assert done.stderr == f"error: {missing}: not found: pass an existing file or folder, or a hub dataset name\n"
