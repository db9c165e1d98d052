import json

import pytest

from pargs.records import RecordError, load_preferences, load_prompts, write_jsonl

GOOD = {"id": "a", "prompt": "p", "chosen": "c", "rejected": "r"}


def _write(path, lines):
    path.write_bytes(b"".join(line if isinstance(line, bytes) else (line + "\n").encode() for line in lines))
    return path


@pytest.mark.parametrize(
    "line,field,needle",
    [
        ('{"id": "b", "prompt": "p", "chosen": "c"}', "rejected", "missing"),
        ('{"id": "b", "prompt": 3, "chosen": "c", "rejected": "r"}', "prompt", "must be str"),
        ('{"id": "b", "prompt": "p", "chosen": "c", "rejected": "r"', None, "not valid JSON"),
        ('["a list"]', None, "JSON object"),
        ('{"id": "a", "prompt": "p", "chosen": "c", "rejected": "r"}', "id", "duplicate id"),
        ('{"id": "b", "prompt": "p", "chosen": "  ", "rejected": "r"}', "chosen", "empty response"),
        ('{"id": "b", "prompt": "p", "chosen": "same", "rejected": "same"}', "rejected", "identical"),
    ],
)
def test_bad_lines_name_file_line_and_field(tmp_path, line, field, needle):
    path = _write(tmp_path / "pairs.jsonl", [json.dumps(GOOD), "", line])
    with pytest.raises(RecordError) as err:
        load_preferences(path)
    assert err.value.line == 3 and err.value.field == field and err.value.path == str(path)
    assert needle in str(err.value) and f"{path}, line 3" in str(err.value)


def test_invalid_utf8_is_reported_with_its_line(tmp_path):
    path = _write(tmp_path / "pairs.jsonl", [json.dumps(GOOD), b'{"id": "\xff"}\n'])
    with pytest.raises(RecordError, match="line 2.*UTF-8"):
        load_preferences(path)


def test_unusable_records_are_counted_when_dropping(tmp_path):
    lines = [json.dumps(GOOD), json.dumps(dict(GOOD, id="b", chosen="")), json.dumps(dict(GOOD, id="c", chosen="r"))]
    records, report = load_preferences(_write(tmp_path / "p.jsonl", lines), drop_unusable=True)
    assert [r["id"] for r in records] == ["a"]
    assert report.kept == 1 and report.dropped == {"empty response": 1, "identical to chosen": 1}


def test_prompt_references_become_lists_and_integer_ids_strings(tmp_path):
    lines = [json.dumps({"id": 1, "prompt": "p"}), json.dumps({"id": 2, "prompt": "q", "reference": "r"})]
    records = load_prompts(_write(tmp_path / "q.jsonl", lines))
    assert records == [{"id": "1", "prompt": "p", "reference": []}, {"id": "2", "prompt": "q", "reference": ["r"]}]
    assert [r["_line"] for r in load_prompts(tmp_path / "q.jsonl", with_line=True)] == [1, 2]


def test_write_is_atomic_and_keeps_the_old_file_on_error(tmp_path):
    path = tmp_path / "out.jsonl"
    write_jsonl(path, [GOOD])

    def broken():
        yield GOOD
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_jsonl(path, broken())
    assert path.read_text() == json.dumps(GOOD) + "\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]
