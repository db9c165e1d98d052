import json
import math
import random

import pytest
from transformers import AutoTokenizer

from pargs.records import load_preferences, load_prompts, load_sft
from pargs.tasks.synthetic import Prompt, WriterConfig, but_contrast, oracle_reward, split_prompts, write_response
from pargs.tasks.synthetic_prepare import SyntheticSizes, prepare_synthetic

P = "write a short review of the hotel about the staff :"


@pytest.mark.parametrize(
    "response,expected",
    [
        # one clause: great = +2, mentions the staff (+1), short holds, complete
        ("the staff was great .", 2 + 1),
        # 'not' flips and halves: not great = -1; 'very' scales by 1.5: very good = 1.5
        ("the staff was not great and the room was very good .", (-1 + 1.5) / math.sqrt(2) + 1),
        # 'but' halves everything before it: 0.5 * 2 + (-2) = -1
        ("the staff was great but the pool was awful .", (0.5 * 2 - 2) / math.sqrt(2) + 1),
        # three clauses miss the 'short' request (-1); the room twice (-0.5)
        ("the room was good , the room was good and the staff was good .", 3 / math.sqrt(3) + 1 - 1 - 0.5),
        # off-topic aspect (-1), malformed clause (-1), unfinished (-2), staff never mentioned (-1)
        ("the battery was good and staff great", 1 / math.sqrt(2) - 1 - 1 - 1 - 2),
    ],
)
def test_oracle_hand_values(response, expected):
    assert oracle_reward(P, response) == pytest.approx(expected)


def test_oracle_depends_on_the_whole_response():
    # the same first clause ends up good or bad depending on what follows it
    assert (
        oracle_reward(P, "the staff was great .") > 0 > oracle_reward(P, "the staff was great but the room was awful")
    )


def test_prompt_round_trip_and_rejects_foreign_text():
    assert Prompt.parse(P) == Prompt("hotel", "staff", "short")
    with pytest.raises(ValueError, match="not a prompt"):
        Prompt.parse("write a poem :")


def test_held_out_prompts_are_disjoint_and_deterministic():
    train, held = split_prompts(0, 120)
    assert len(held) == 120 and not set(train) & set(held)
    assert split_prompts(0, 120) == (train, held)


def test_writer_only_uses_known_words_and_always_finishes():
    from pargs.tasks.synthetic import vocabulary

    words = set(vocabulary())
    rng = random.Random(0)
    for _ in range(200):
        text = write_response(Prompt("cafe", "coffee", ""), rng, WriterConfig())
        assert set(text.split()) <= words and text.endswith(" .")


def test_prepare_is_deterministic_and_readable_by_the_loaders(tmp_path):
    sizes = SyntheticSizes(seed=3, n_sft=30, n_sft_val=5, n_pairs=20, n_pairs_val=5, n_test=4)
    a, b = prepare_synthetic(tmp_path / "a", sizes), prepare_synthetic(tmp_path / "b", sizes)
    assert a == b
    for name in ("sft_train", "pairs_train", "prompts_test"):
        assert (tmp_path / "a" / f"{name}.jsonl").read_bytes() == (tmp_path / "b" / f"{name}.jsonl").read_bytes()
    pairs, _ = load_preferences(tmp_path / "a" / "pairs_train.jsonl")
    assert len(pairs) == 20 and all(p["chosen"] != p["rejected"] for p in pairs)
    assert len(load_sft(tmp_path / "a" / "sft_train.jsonl")[0]) == 30
    prompts = load_prompts(tmp_path / "a" / "prompts_test.jsonl")
    held = {p.text for p in split_prompts(3, sizes.n_heldout_prompts)[1]}
    assert all(p["prompt"] in held and p["reference"] for p in prompts)
    meta = json.loads((tmp_path / "a" / "task.json").read_text())
    assert meta["files"]["pairs_train"]["records"] == 20


def test_validation_prompts_are_further_held_out_combinations(tmp_path):
    """``n_val_prompts`` adds held-out combinations that are neither test nor training prompts; the test prompt
    combinations stay the ones drawn without it, and 0 (the quickstart's default) writes no validation file."""
    base = dict(seed=2, n_sft=30, n_sft_val=5, n_pairs=20, n_pairs_val=5, n_heldout_prompts=10, n_test=10)
    prepare_synthetic(tmp_path / "plain", SyntheticSizes(**base))
    meta = prepare_synthetic(tmp_path / "val", SyntheticSizes(**base, n_val_prompts=7))
    assert not (tmp_path / "plain" / "prompts_val.jsonl").exists()
    val = [r["prompt"] for r in load_prompts(tmp_path / "val" / "prompts_val.jsonl")]
    test = {r["prompt"] for r in load_prompts(tmp_path / "val" / "prompts_test.jsonl")}
    train = {r["prompt"] for r in load_prompts(tmp_path / "val" / "prompts_train.jsonl")}
    assert len(set(val)) == 7 and not set(val) & test and not set(val) & train
    assert len(train) == 360 - 10 - 7 and meta["n_validation_prompt_combinations"] == 7
    plain_test = [(r["id"], r["prompt"]) for r in load_prompts(tmp_path / "plain" / "prompts_test.jsonl")]
    assert [(r["id"], r["prompt"]) for r in load_prompts(tmp_path / "val" / "prompts_test.jsonl")] == plain_test
    # a different seed draws other validation combinations
    prepare_synthetic(tmp_path / "other", SyntheticSizes(**{**base, "seed": 5}, n_val_prompts=7))
    assert {r["prompt"] for r in load_prompts(tmp_path / "other" / "prompts_val.jsonl")} != set(val)


def test_saved_tokenizer_loads_with_autotokenizer_and_round_trips(tmp_path):
    prepare_synthetic(tmp_path, SyntheticSizes(n_sft=2, n_sft_val=1, n_pairs=2, n_pairs_val=1, n_test=1))
    tok = AutoTokenizer.from_pretrained(tmp_path / "tokenizer")
    text = "the staff was not very good but it was great ."
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.unk_token_id not in ids and tok.decode(ids) == text
    assert tok.pad_token_id == 0 and tok.eos_token_id == 2


@pytest.mark.parametrize(
    "response,expected",
    [
        # before the 'but': good = +1; whole: 0.5 * 1 - 2 = -1.5, the other sign
        ("the room was good but the staff was awful .", True),
        # negative turned positive: -1 before; whole: 0.5 * -1 + 2 = 1.5
        ("the room was bad but the staff was great .", True),
        # before: great = +2; whole: 0.5 * 2 - 1 = 0, levelled but not overturned
        ("the room was great but the staff was bad .", False),
        # two clauses before: 1 + 1 = 2; whole: 0.5 + 0.5 - 2 = -1
        ("the room was good and the staff was nice but the pool was awful .", True),
        # the last 'but' counts: before it, 0.5 * 1 - 1 = -0.5; whole: 0.25 - 0.5 + 2 = 1.75
        ("the room was good but the staff was bad but the pool was great .", True),
        # the same two clauses without a 'but' (no contrast by definition), and with the same sign on both sides
        ("the room was good and the staff was awful .", False),
        ("the room was good but the staff was great .", False),
        # a malformed clause before the 'but' carries no sentiment: 0 before
        ("the room good but the staff was bad .", False),
        # 'not bad' is +0.5: before -1, whole -0.5 + 0.5 = 0
        ("the room was bad but the staff was not bad .", False),
        # an unfinished response is judged on the words it has
        ("it was good but it was bad", True),
    ],
)
def test_but_contrast_hand_cases(response, expected):
    assert but_contrast(response) is expected
