"""``benchmarks/decoding_gpu.py --merge``: the rows of a later GPU run go into the table of an earlier one, every
number marked with the run it came from, and the quickstart section of the table already there is kept."""

import json

from benchmarks.decoding_gpu import main


def _line(case, tok_s, **extra):
    row = {"case": case, "versions": "NVIDIA H200", "tok/s": tok_s, "new tokens": 128, "first call s": 3.0}
    return json.dumps({**row, "calls s": [1.0, 1.0], **extra})


def test_a_later_run_replaces_and_adds_rows_each_marked_with_its_run(tmp_path):
    first, last = tmp_path / "final.jsonl", tmp_path / "last.jsonl"
    first.write_text(
        "\n".join(
            [
                _line("graphs, top-k, 7b, batch 8", 1006.0),
                _line("graphs, pargs, 7b+1b, batch 8", 648.0),
                json.dumps({"error": "no result (exit timeout): (killed: out of time)", "wall s": 20.3}),  # no name
            ]
        )
    )
    last.write_text(
        "\n".join([_line("compiled, pargs, 7b+1b, batch 8", 1180.0), _line("graphs, pargs, 7b+1b, batch 8", 700.0)])
    )
    out = tmp_path / "results"
    out.mkdir()
    (out / "decoding_gpu.md").write_text("# old\n\n## The quickstart on this GPU\n\n- (total 62.4 s)\n")
    main(["--out", str(out), "--merge", str(first), "H200, day 1", "--merge", str(last), "H200, day 2"])
    text = (out / "decoding_gpu.md").read_text()
    assert "[1] H200, day 1 (`final.jsonl`); [2] H200, day 2 (`last.jsonl`)" in text
    assert "| 8 | top-k, 7B | 1,006 [1] | - |" in text
    assert "| 8 | PARGS 7B + 1B RM | 700 [2] | 1,180 [2] | - | - | - |" in text  # graphs replaced, compiled added
    assert "| 1,100 | yes |" in text
    assert "- graphs, pargs, 7b+1b, batch 8 [1]: " in text and "- graphs, pargs, 7b+1b, batch 8 [2]: " in text
    assert text.rstrip().endswith("## The quickstart on this GPU\n\n- (total 62.4 s)") and "# old" not in text


def test_a_later_case_that_measured_nothing_keeps_the_earlier_number(tmp_path):
    first, last = tmp_path / "final.jsonl", tmp_path / "last.jsonl"
    first.write_text(_line("graphs, pargs, 7b+1b, batch 8", 648.0))
    timeout = {"error": "no result (exit timeout): (killed: out of time)", "case": "graphs, pargs, 7b+1b, batch 8"}
    last.write_text(json.dumps(timeout))
    out = tmp_path / "results"
    main(["--out", str(out), "--merge", str(first), "run 1", "--merge", str(last), "run 2"])
    text = (out / "decoding_gpu.md").read_text()
    assert "| 8 | PARGS 7B + 1B RM | 648 [1] |" in text  # not "out of time [2]"
    assert "- graphs, pargs, 7b+1b, batch 8 [2]: " in text  # the failed attempt is still listed
