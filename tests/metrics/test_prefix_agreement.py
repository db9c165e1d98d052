import pytest
import torch

from pargs.metrics import agreement_from_token_rewards, prefix_agreement
from pargs.models.encoding import encode_prompt, encode_response, pad_batch
from pargs.models.reward_model import sequence_rewards
from tests.conftest import make_rm


def test_agreement_hand_case():
    # one pair, prompt of 1 token; chosen 4 tokens, rejected 2 tokens (rule "longest": L = 4)
    r_w = torch.tensor([[0.0, 1.0, 0.0, 5.0, 2.0]])  # reward after prefix i is at position i (prompt_len + i - 1)
    r_l = torch.tensor([[0.0, 0.5, 3.0, 9.0, 9.0]])  # positions 3, 4 are padding: never read
    agree = agreement_from_token_rewards(r_w, r_l, torch.tensor([1]), torch.tensor([4]), torch.tensor([1]),
                                         torch.tensor([2]))
    # 25 %: i = 1: 1.0 vs 0.5 -> 1; 50 %: i = 2: 0.0 vs 3.0 -> 0; 75 %: i = 3: 5.0 vs 3.0 (rejected complete) -> 1
    # 100 %: i = 4: 2.0 vs 3.0 -> 0
    assert {f: float(v) for f, v in agree.items()} == {0.25: 1.0, 0.5: 0.0, 0.75: 1.0, 1.0: 0.0}


def test_model_driver_equals_scoring_each_prefix_from_scratch(tokenizer):
    rm = make_rm(tokenizer)
    pairs = [
        {"prompt": "write a review of the zoo about the shop :", "chosen": "the shop was good and it was nice .",
         "rejected": "it was bad ."},
        {"prompt": "write a short review of the car about the engine :", "chosen": "the engine was great .",
         "rejected": "the trunk was not good but the engine was okay ."},
    ]
    got = prefix_agreement(rm, tokenizer, pairs, batch_size=1)
    expected = {f: 0.0 for f in got}
    for pair in pairs:
        p = encode_prompt(tokenizer, pair["prompt"])
        w, lr = encode_response(tokenizer, pair["chosen"]), encode_response(tokenizer, pair["rejected"])
        n = max(len(w), len(lr))
        for f in got:
            i = max(1, -(-n * f // 1))
            i = int(i)
            seqs = [p + w[: min(i, len(w))], p + lr[: min(i, len(lr))]]
            ids, mask = pad_batch(seqs, tokenizer.pad_token_id)
            r = sequence_rewards(rm, ids, mask)
            expected[f] += float((r[0] > r[1]).float() + 0.5 * (r[0] == r[1]).float()) / len(pairs)
    assert got == pytest.approx(expected)
