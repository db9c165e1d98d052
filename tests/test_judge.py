"""``pargs judge``: win / tie / lose of one method against the others, from prediction files."""

from __future__ import annotations

import json

import pytest

from pargs.cli import main
from pargs.file_names import file_name
from pargs.metrics.judge import LocalLMJudge, win_tie_rate
from pargs.tasks.word_tokenizer import build_word_tokenizer
from tests.conftest import make_lm


def longer_is_better(prompt: str, first: str, second: str) -> str:
    """A judge for hand-worked cases: the longer response (in characters) wins."""
    return "A" if len(first) > len(second) else "B" if len(second) > len(first) else "tie"


def always_first(prompt: str, first: str, second: str) -> str:
    """A judge with pure position bias: judged in both orders, every prompt is a tie."""
    return "A"


def make_longer_is_better():
    """A zero-argument factory, as ``--judge module:factory`` may name."""
    return longer_is_better


def _write_predictions(run_dir, responses: dict[tuple[str, str, int], str]) -> None:
    (run_dir / "predictions").mkdir(parents=True)
    lines = [
        json.dumps(
            {
                "id": pid,
                "method": method,
                "sample": sample,
                "prompt": f"p{pid}",
                "response": text,
                "tokens": len(text.split()),
                "decode_seconds": 0.1,
                "reward": None,
            }
        )
        for (pid, method, sample), text in responses.items()
    ]
    (run_dir / "predictions" / "predictions-rank0.jsonl").write_text("\n".join(lines) + "\n")


HAND = {
    ("1", "pargs", 0): "long answer",
    ("1", "top-k", 0): "short",
    ("1", "args", 0): "x y",
    ("2", "pargs", 0): "x",
    ("2", "top-k", 0): "longer",
    ("2", "args", 0): "xyz",
    ("3", "pargs", 0): "same",
    ("3", "top-k", 0): "same",
    ("3", "args", 0): "a much longer answer",
    ("4", "pargs", 0): "only pargs has prompt 4",  # unpaired: left out
    ("1", "pargs", 1): "",  # another sample: not judged with --sample 0
}


@pytest.mark.parametrize("judge", ["tests.test_judge:longer_is_better", "tests.test_judge:make_longer_is_better"])
def test_judge_table_by_hand(tmp_path, capsys, judge):
    _write_predictions(tmp_path, HAND)
    assert main(["judge", str(tmp_path), "--judge", judge]) == 0
    table = (tmp_path / "report" / "judge_pargs.md").read_text()
    # vs args: prompt 1 win (11 > 3 chars), 2 lose (1 < 3), 3 lose (4 < 20); vs top-k: win, lose, tie
    assert "| args | 3 | 33.3 | 0.0 | 66.7 | 33.3 |" in table
    assert "| top-k | 3 | 33.3 | 33.3 | 33.3 | 66.7 |" in table
    assert table.splitlines()[0] in capsys.readouterr().out


def test_position_bias_cancels_end_to_end(tmp_path, capsys):
    _write_predictions(tmp_path, HAND)
    assert main(["judge", str(tmp_path), "--judge", "tests.test_judge:always_first", "--against", "top-k"]) == 0
    assert "| top-k | 3 | 0.0 | 100.0 | 0.0 | 100.0 |" in (tmp_path / "report" / "judge_pargs.md").read_text()


def test_a_method_named_by_a_path_names_its_output_inside_the_report_folder(tmp_path, capsys):
    """Before: ``--method ../../x`` wrote ``judge_../../x.md``, outside the report folder."""
    evil = "../../escaped"
    _write_predictions(tmp_path / "run", {(p, evil if m == "pargs" else m, s): t for (p, m, s), t in HAND.items()})
    assert main(["judge", str(tmp_path / "run"), "--judge", "tests.test_judge:always_first", "--method", evil]) == 0
    (written,) = (tmp_path / "run" / "report").iterdir()
    assert written.name == f"judge_{file_name(evil)}.md" and written.is_file()


def test_local_model_judge_with_a_template_file(tmp_path, capsys):
    tok = build_word_tokenizer("A B better ? : p1 p2 x y z".split())
    model_dir = tmp_path / "judge_lm"
    lm = make_lm(tok, seed=1)
    lm.save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    template = tmp_path / "template.txt"
    # the second response last, so this untrained LM's verdict depends on the order (seed 1: not all ties)
    template.write_text("{prompt} {first} better ? {second}")
    run = tmp_path / "run"
    responses = {("1", "pargs", 0): "x", ("1", "top-k", 0): "y", ("2", "pargs", 0): "z", ("2", "top-k", 0): "x"}
    _write_predictions(run, responses)
    out = tmp_path / "judge.md"
    assert main(["judge", str(run), "--model", str(model_dir), "--template", str(template), "--out", str(out)]) == 0
    expected = win_tie_rate(LocalLMJudge(lm.eval(), tok, template.read_text()), ["p1", "p2"], ["x", "z"], ["y", "x"])
    assert expected.tie < 1
    assert (
        f"| top-k | 2 | {100 * expected.win:.1f} | {100 * expected.tie:.1f} | {100 * expected.lose:.1f} |"
        in out.read_text()
    )


def test_bad_judge_inputs(tmp_path, capsys, model_dirs):
    _write_predictions(tmp_path, HAND)
    bad = tmp_path / "template.txt"
    bad.write_text("{prompt} {first} which is better?")
    assert main(["judge", str(tmp_path), "--model", str(model_dirs["reference"]), "--template", str(bad)]) == 1
    assert f"{bad}: the judge template must contain" in capsys.readouterr().err
    assert main(["judge", str(tmp_path), "--judge", "tests.test_judge:longer_is_better", "--against", "dpo"]) == 1
    assert "methods ['dpo'] are not in the predictions" in capsys.readouterr().err
    assert main(["judge", str(tmp_path), "--judge", "tests.test_judge:longer_is_better", "--against", "pargs"]) == 1
    assert "--against must name other methods, each once" in capsys.readouterr().err
    assert main(["judge", str(tmp_path), "--judge", "tests.test_judge:no_such_judge"]) == 1
    assert "no_such_judge" in capsys.readouterr().err
    # the synthetic task's word tokenizer has no 'A' / 'B': every verdict would silently be a tie
    assert main(["judge", str(tmp_path), "--model", str(model_dirs["reference"])]) == 1
    assert "no distinct tokens for ' A' and ' B'" in capsys.readouterr().err


def test_judge_prompt_longer_than_the_judge_context(tmp_path, capsys):
    tok = build_word_tokenizer("A B better ? p1 x".split())
    model_dir = tmp_path / "judge_lm"
    make_lm(tok).save_pretrained(model_dir)  # 96 positions
    tok.save_pretrained(model_dir)
    run = tmp_path / "run"
    _write_predictions(run, {("1", "pargs", 0): " ".join(["x"] * 80), ("1", "top-k", 0): "x"})
    assert main(["judge", str(run), "--model", str(model_dir)]) == 1
    err = capsys.readouterr().err
    assert "judging prompt id '1' (pargs vs top-k): the judge prompt has" in err and "takes at most 96" in err
    assert "Traceback" not in err


STAFF, PHONE = "write a review of the hotel about the staff :", "write a short review of the phone about the price :"


def test_bundled_oracle_judge_end_to_end(tmp_path, capsys):
    """``--judge pargs.tasks.synthetic_judge:judge`` on synthetic prompts; the oracle rewards worked by hand
    from its rules (pargs/tasks/synthetic.py): favourable clause about the asked aspect + 1, unfinished - 2."""
    run = tmp_path / "run"
    prompts = {"1": STAFF, "2": STAFF, "3": PHONE}
    responses = {
        ("1", "pargs", 0): "the staff was great .",  # 2 + 1 = 3
        ("1", "top-k", 0): "the staff was awful .",  # -2 + 1 = -1: pargs wins
        ("2", "pargs", 0): "the staff was nice .",  # 1 + 1 = 2
        ("2", "top-k", 0): "the staff was slightly great .",  # 0.5 * 2 + 1 = 2: a tie, other words
        ("3", "pargs", 0): "the price was great",  # 2 + 1 - 2 (unfinished) = 1
        ("3", "top-k", 0): "the price was good .",  # 1 + 1 = 2: pargs loses
    }
    (run / "predictions").mkdir(parents=True)
    lines = [
        json.dumps(
            {
                "id": pid,
                "method": m,
                "sample": s,
                "prompt": prompts[pid],
                "response": text,
                "tokens": len(text.split()),
                "decode_seconds": 0.1,
                "reward": None,
            }
        )
        for (pid, m, s), text in responses.items()
    ]
    (run / "predictions" / "predictions-rank0.jsonl").write_text("\n".join(lines) + "\n")
    assert main(["judge", str(run), "--judge", "pargs.tasks.synthetic_judge:judge"]) == 0
    assert "| top-k | 3 | 33.3 | 33.3 | 33.3 | 66.7 |" in (run / "report" / "judge_pargs.md").read_text()


def test_oracle_judge_margin_and_foreign_prompts(tmp_path, capsys):
    from pargs.tasks.synthetic_judge import OracleJudge, judge

    # 3 vs -1 by hand: B wins shown second, A shown first; a margin of 4 makes it a tie
    assert judge(STAFF, "the staff was awful .", "the staff was great .") == "B"
    assert judge(STAFF, "the staff was great .", "the staff was awful .") == "A"
    assert OracleJudge(tie_margin=4.0)(STAFF, "the staff was great .", "the staff was awful .") == "tie"
    run = tmp_path / "run"
    _write_predictions(run, {("7", "pargs", 0): "x", ("7", "top-k", 0): "y"})  # prompts "p7": not synthetic
    assert main(["judge", str(run), "--judge", "pargs.tasks.synthetic_judge:judge"]) == 1
    err = capsys.readouterr().err
    assert "judging prompt id '7' (pargs vs top-k): not a prompt of the synthetic task: 'p7'" in err
