"""Machine-translation post-edit adapter: the CSV sample, checked by hand."""

from pathlib import Path

import pytest

from pargs.adapters import mt_post_edits
from pargs.adapters.sources import LoadOptions
from pargs.errors import ConfigError
from pargs.records import RecordError, load_preferences, load_prompts

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "mt_post_edits" / "sample" / "test.csv"


@pytest.fixture
def load(tmp_path):
    """Reading options with a private datasets cache."""
    return LoadOptions(cache_dir=str(tmp_path / "hf-cache"))


def prompt(src):
    """The default prompt for a source sentence, written out by hand."""
    return "Translate English to German:\n" + src + "\nGerman:"


def test_sample_csv(tmp_path, load):
    out, prompts = tmp_path / "mt.jsonl", tmp_path / "prompts.jsonl"
    report = mt_post_edits.convert(SAMPLE, "test", out, prompts_out=prompts, load=load)
    assert (report.read, report.written) == (8, 4)
    assert report.unusable == {"identical responses": 2, "empty response": 1, "empty prompt": 1}
    assert report.examples["identical responses"] == ["mt_post_edits-test-0", "mt_post_edits-test-6"]
    records, _ = load_preferences(out)  # the output loads as the project's schema
    assert records[0] == {
        "id": "mt_post_edits-test-1",
        "prompt": "Translate English to German:\nI would like a coffee, please.\nGerman:",
        "chosen": " Ich hätte gern einen Kaffee, bitte.",
        "rejected": " Ich möchte einen Kaffee, bitte.",
        "source": "mt_post_edits",
    }
    # CSV quoting: doubled quotes and a newline inside a cell
    assert records[1]["prompt"] == prompt('He said "Hello" and left.')
    assert records[1]["rejected"] == ' Er sagte "Hallo" und ging.'
    assert records[3]["chosen"] == " Erste Zeile.\nZweite Zeile."

    # one prompt per source sentence, even where the post-edit left the MT unchanged (references as lists)
    assert load_prompts(prompts) == [
        {
            "id": "mt_post_edits-test-0",
            "prompt": prompt("The cat sits on the mat."),
            "reference": ["Die Katze sitzt auf der Matte."],
        },
        {
            "id": "mt_post_edits-test-1",
            "prompt": prompt("I would like a coffee, please."),
            "reference": ["Ich hätte gern einen Kaffee, bitte."],
        },
        {
            "id": "mt_post_edits-test-4",
            "prompt": prompt('He said "Hello" and left.'),
            "reference": ["Er sagte „Hallo“ und ging."],
        },
        {"id": "mt_post_edits-test-6", "prompt": prompt("Good morning."), "reference": ["Guten Morgen."]},
        {
            "id": "mt_post_edits-test-7",
            "prompt": prompt("First line.\nSecond line."),
            "reference": ["Erste Zeile.\nZweite Zeile."],
        },
    ]
    assert report.prompts_duplicate == 1
    assert report.prompts_skipped == {"no reference": 1, "no prompt for this row": 1}


def test_column_names_id_and_template(tmp_path, load):
    path = tmp_path / "pe.tsv"
    path.write_text("sid\tsource\thyp\tpost\ns-1\tThank you.\tDanke.\tVielen Dank.\n", encoding="utf-8")
    report = mt_post_edits.convert(
        path,
        "dev",
        tmp_path / "out.jsonl",
        template="English: {src}\nGerman:",
        src_field="source",
        mt_field="hyp",
        pe_field="post",
        id_field="sid",
        load=load,
    )
    assert report.written == 1
    assert load_preferences(tmp_path / "out.jsonl")[0] == [
        {
            "id": "s-1",
            "prompt": "English: Thank you.\nGerman:",
            "chosen": " Vielen Dank.",
            "rejected": " Danke.",
            "source": "mt_post_edits",
        }
    ]


def test_template_must_hold_src(tmp_path):
    with pytest.raises(ConfigError, match=r"must contain \{src\}"):
        mt_post_edits.convert(SAMPLE, "test", tmp_path / "x.jsonl", template="Translate:\nGerman:")


def test_missing_column_and_wrong_type(tmp_path, load):
    with pytest.raises(RecordError) as err:
        mt_post_edits.convert(SAMPLE, "test", tmp_path / "x.jsonl", pe_field="post_edit", load=load)
    assert str(err.value).startswith(f"{SAMPLE}: field 'post_edit' is not a column of this source (it has src, mt, pe)")

    path = tmp_path / "pe.jsonl"
    path.write_text('{"src": "Hi.", "mt": "Hallo.", "pe": "Hallo!"}\n{"src": ["Hi."], "mt": "x", "pe": "y"}\n')
    with pytest.raises(RecordError, match=r"pe\.jsonl, line 2: field 'src' must be a string, got list"):
        mt_post_edits.convert(path, "test", tmp_path / "x.jsonl", load=load)
    assert not (tmp_path / "x.jsonl").exists()
