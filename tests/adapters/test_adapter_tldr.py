"""TL;DR comparisons adapter: the sample in the original release's format, checked by hand."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pargs.adapters import tldr
from pargs.adapters.sources import LoadOptions
from pargs.errors import ConfigError
from pargs.records import RecordError, load_preferences, load_prompts

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "tldr" / "sample"
POST_A = (
    "My roommate (24F) leaves dirty dishes in the sink for days.\n\n"
    "I (23F) don't want to start a fight. How do I bring it up?"
)
TITLE_A = "How do I talk to my roommate about the dishes?"
PROMPT_A = f"SUBREDDIT: r/relationships\nTITLE: {TITLE_A}\nPOST: {POST_A}\nTL;DR:"


@pytest.fixture
def load(tmp_path):
    """Reading options for the original release: split named by each row's "split" field."""
    return LoadOptions(cache_dir=str(tmp_path / "hf-cache"), split_field="split")


def test_sample_train_split(tmp_path, load):
    out, prompts = tmp_path / "tldr.jsonl", tmp_path / "prompts.jsonl"
    report = tldr.convert(SAMPLE, "train", out, prompts_out=prompts, load=load)
    assert (report.read, report.written, report.other_split) == (6, 3, 2)  # one valid1 row, one valid2 row
    assert report.unusable == {"missing choice": 1, "identical responses": 1, "empty response": 1}
    records, _ = load_preferences(out)  # the output loads as the project's schema
    assert records[0] == {
        "id": "tldr-train-0",
        "prompt": PROMPT_A,  # title and post stripped of surrounding whitespace
        "chosen": " My roommate never does her dishes; how do I bring it up without a fight?",  # choice 1
        "rejected": " Roommate dishes.",
        "source": "tldr",
        "meta": {"post_id": "t3_aaa001", "policies": ["sup4_ppo_rm3_kl10", "ref"], "confidence": 8},
    }
    assert records[1]["chosen"] == " Roommate leaves dishes for days, I want to ask her to stop without fighting."
    assert records[1]["rejected"] == " dishes"  # a leading space is added where the release has none
    assert [r["id"] for r in records] == ["tldr-train-0", "tldr-train-1", "tldr-train-5"]

    # unique posts; the reference is the first chosen summary, stripped (load_prompts makes it a list)
    assert load_prompts(prompts) == [
        {
            "id": "t3_aaa001",
            "prompt": PROMPT_A,
            "reference": ["My roommate never does her dishes; how do I bring it up without a fight?"],
        },
        {
            "id": "t3_ccc003",
            "prompt": "SUBREDDIT: r/dogs\nTITLE: Dog barks at cars\n"
            "POST: My dog barks at every car that passes.\nTL;DR:",
            "reference": ["Same summary."],
        },
        {
            "id": "t3_ddd004",
            "prompt": "SUBREDDIT: r/relationships\nTITLE: Forgot a birthday\n"
            "POST: I forgot my best friend's birthday.\nTL;DR:",
            "reference": ["Forgot my friend's birthday, how do I apologise?"],
        },
        {
            "id": "t3_fff006",
            "prompt": "SUBREDDIT: r/AskReddit\nTITLE: Books that changed you\n"
            "POST: What is a book that changed how you think?\nTL;DR:",
            "reference": ["Asking for books that changed how people think."],
        },
    ]
    assert (report.prompts_written, report.prompts_duplicate, report.prompts_skipped) == (
        4,
        1,
        {"no reference": 1},
    )


def test_article_rows_counted_or_converted(tmp_path, load):
    report = tldr.convert(SAMPLE, "valid2", tmp_path / "a.jsonl", load=load)
    assert (report.read, report.written, report.unusable) == (1, 0, {"article instead of post": 1})

    report = tldr.convert(SAMPLE, "valid2", tmp_path / "b.jsonl", article_template=tldr.ARTICLE_TEMPLATE, load=load)
    assert (report.read, report.written) == (1, 1)
    assert report.notes == {"article row (CNN/DM) converted with article_template": 1}
    (record,) = load_preferences(tmp_path / "b.jsonl")[0]
    assert record["prompt"] == (
        "ARTICLE: A storm brought heavy rain and strong winds to the coast on Monday, closing schools.\nTL;DR:"
    )
    assert record["chosen"] == " A storm brought heavy rain and wind to the coast on Monday and closed schools."
    assert record["rejected"] == " Storm closes schools."


def test_hub_layout_parquet_and_custom_template(tmp_path):
    """The hub copy's layout: comparisons/{split}-00000-of-00001.parquet, no split field needed."""
    rows = [json.loads(line) for line in (SAMPLE / "comparisons" / "batch3.json").read_text("utf-8").splitlines()]
    # as on the hub, "extra" always holds a (possibly null) confidence
    rows = [{**r, "extra": {"confidence": r["extra"].get("confidence")}} for r in rows]
    folder = tmp_path / "release" / "comparisons"
    folder.mkdir(parents=True)
    pq.write_table(
        pa.Table.from_pylist([r for r in rows if r["split"] == "train"]),
        folder / "train-00000-of-00001.parquet",
    )
    pq.write_table(
        pa.Table.from_pylist([r for r in rows if r["split"] == "valid1"]),
        folder / "validation-00000-of-00001.parquet",
    )
    load = LoadOptions(cache_dir=str(tmp_path / "hf-cache"))
    report = tldr.convert(
        tmp_path / "release",
        "validation",
        tmp_path / "v.jsonl",
        template="{title}\n\n{post}\n\nTL;DR:",
        load=load,
    )
    assert (report.read, report.written) == (1, 1)
    assert load_preferences(tmp_path / "v.jsonl")[0][0]["prompt"] == (
        "Rent increase\n\nMy landlord wants to raise the rent by 30%.\n\nTL;DR:"
    )
    report = tldr.convert(tmp_path / "release", "train", tmp_path / "t.jsonl", load=load)
    assert (report.read, report.written, report.other_split) == (6, 3, 0)


def test_blank_post_is_an_empty_prompt(tmp_path):
    row = {
        "info": {"id": "t3_x", "post": " \n", "title": "T", "subreddit": "s"},
        "summaries": [{"text": " a"}, {"text": " b"}],
        "choice": 0,
    }
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    report = tldr.convert(path, "train", tmp_path / "out.jsonl", load=LoadOptions(cache_dir=str(tmp_path / "c")))
    assert (report.read, report.written, report.unusable) == (1, 0, {"empty prompt": 1})


def test_bad_template_is_refused_before_reading(tmp_path):
    with pytest.raises(ConfigError, match=r"uses \{author\}; it may only use plain fields among"):
        tldr.convert(SAMPLE, "train", tmp_path / "x.jsonl", template="{author}: {post}\nTL;DR:")


@pytest.mark.parametrize(
    "change, field, message",
    [
        (lambda r: r.update(choice=2), "choice", "must be 0 or 1"),
        (
            lambda r: r["summaries"].append({"text": " third"}),
            "summaries",
            "must hold exactly 2 summaries, got 3",
        ),
        (lambda r: r["info"].update(post=None), "info.post", "is missing or null, and so is info.article"),
        (lambda r: r["summaries"][1].update(text=5), "summaries[1].text", "must be a string, got int"),
        (lambda r: r["info"].pop("title"), "info.title", "is missing or null"),
        (lambda r: r["info"].update(id=None), "info.id", "is missing or null"),
    ],
)
def test_malformed_row_names_file_line_and_field(tmp_path, change, field, message):
    good = {
        "info": {"id": "t3_x", "post": "A post.", "title": "T", "subreddit": "s"},
        "summaries": [{"text": " a"}, {"text": " b"}],
        "choice": 0,
    }
    bad = json.loads(json.dumps(good))
    change(bad)
    path = tmp_path / "batch.jsonl"
    path.write_text(f"{json.dumps(good)}\n{json.dumps(good)}\n{json.dumps(bad)}\n", encoding="utf-8")
    with pytest.raises(RecordError) as err:
        tldr.convert(path, "train", tmp_path / "out.jsonl", load=LoadOptions(cache_dir=str(tmp_path / "c")))
    assert str(err.value).startswith(f"{path}, line 3: field '{field}' {message}")
    assert not (tmp_path / "out.jsonl").exists()


def test_one_file_of_the_release_keeps_only_the_split(tmp_path):
    """batch3.json holds 6 train rows and 1 valid1 row: --split train without --split-field used to write all 7."""
    batch = SAMPLE / "comparisons" / "batch3.json"
    out = tmp_path / "train.jsonl"
    report = tldr.convert(batch, "train", out, load=LoadOptions(cache_dir=str(tmp_path / "hf-cache")))
    assert (report.read, report.other_split, report.other_splits) == (6, 1, {"valid1": 1})
    assert report.split_column == "split"
    assert "1 rows of other splits skipped: 1 valid1, by column 'split'" in report.summary()
    post_ids = {r["meta"]["post_id"] for r in load_preferences(out)[0]}
    valid_ids = {
        json.loads(line)["info"]["id"]
        for line in batch.read_text("utf-8").splitlines()
        if json.loads(line)["split"] != "train"
    }
    assert post_ids and not post_ids & valid_ids
    # "validation" is valid1 + valid2, as on the hub
    report = tldr.convert(
        SAMPLE / "comparisons",
        "validation",
        tmp_path / "v.jsonl",
        load=LoadOptions(cache_dir=str(tmp_path / "hf-cache"), split_field="split"),
    )
    assert (report.read, report.other_split, report.other_splits) == (2, 6, {"train": 6})


def test_a_split_that_no_row_names_fails(tmp_path):
    out = tmp_path / "test.jsonl"
    with pytest.raises(
        ConfigError,
        match=r"no row is of split 'test': the rows name their split in column "
        r"'split' \(6 train, 1 valid1\); pass one of them as the split",
    ):
        tldr.convert(
            SAMPLE / "comparisons" / "batch3.json", "test", out, load=LoadOptions(cache_dir=str(tmp_path / "hf-cache"))
        )
    assert not out.exists()


def test_prepare_script_reports_the_skipped_rows(tmp_path):
    """The command line a user runs on one file of the release, without --split-field."""
    root = SAMPLE.parents[2]
    out = tmp_path / "train.jsonl"
    command = [
        sys.executable,
        "data/tldr/prepare.py",
        "--source",
        "data/tldr/sample/comparisons/batch3.json",
        "--split",
        "train",
        "--out",
        str(out),
        "--cache-dir",
        str(tmp_path / "hf-cache"),
    ]
    env = {**os.environ, "PYTHONPATH": str(root), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        "tldr [train] from data/tldr/sample/comparisons/batch3.json: read 6 rows (1 rows "
        "of other splits skipped: 1 valid1, by column 'split'), wrote 3 "
    ), done.stdout
    assert "the rows name their split in column 'split': kept 6 rows of train, skipped 1 valid1" in done.stderr
    assert len(load_preferences(out)[0]) == 3
