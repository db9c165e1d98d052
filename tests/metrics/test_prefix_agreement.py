import importlib

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from pargs.metrics import agreement, pair_prefix_scores, prefix_agreement
from pargs.models.encoding import encode_prompt, encode_response, pad_batch
from pargs.models.loading import ModelSpec, load_tokenizer
from pargs.models.reward_model import sequence_rewards
from pargs.prefixes import prefix_fraction_lengths
from tests.conftest import make_rm


def test_agreement_hand_case(monkeypatch):
    # one pair, prompt of 1 token; chosen 4 tokens, rejected 2 tokens (rule "longest": L = 4)
    r_w = [0.0, 1.0, 0.0, 5.0, 2.0]  # reward after prefix i is at position i (prompt_len + i - 1)
    r_l = [0.0, 0.5, 3.0, 9.0, 9.0]  # positions 3, 4 are padding: never read
    table = torch.tensor([r_w, r_l])
    module = importlib.import_module("pargs.metrics.prefix_agreement")  # the package re-exports a function of that name
    monkeypatch.setattr(
        module,
        "prefix_rewards",
        lambda model, ids, mask, cuts: [table.gather(1, c.unsqueeze(1)).squeeze(1) for c in cuts],
    )
    one, four, two = torch.tensor([1]), torch.tensor([4]), torch.tensor([2])
    fractions = (0.25, 0.5, 0.75, 1.0)
    lengths = [prefix_fraction_lengths(four, two, f, "longest") for f in fractions]
    scores = pair_prefix_scores(None, None, None, one, four, one, two, lengths)
    # 25 %: i = 1: 1.0 vs 0.5 -> 1; 50 %: i = 2: 0.0 vs 3.0 -> 0; 75 %: i = 3: 5.0 vs 3.0 (rejected complete) -> 1
    # 100 %: i = 4: 2.0 vs 3.0 -> 0
    assert [float(agreement(w, r)) for w, r in scores] == [1.0, 0.0, 1.0, 0.0]
    assert float(agreement(torch.tensor([1.0]), torch.tensor([1.0]))) == 0.5


PAIRS = [
    {
        "prompt": "write a review of the zoo about the shop :",
        "chosen": "the shop was good and it was nice .",
        "rejected": "it was bad .",
    },
    {
        "prompt": "write a short review of the car about the engine :",
        "chosen": "the engine was great .",
        "rejected": "the trunk was not good but the engine was okay .",
    },
]


@pytest.mark.parametrize("family", ["causal", "encoder"])
def test_model_driver_equals_scoring_each_prefix_from_scratch(tokenizer, encoder_dir, family):
    if family == "causal":
        rm, tok = make_rm(tokenizer), tokenizer
    else:  # an encoder sees both directions: every prefix must be scored without the tokens after it
        rm = AutoModelForSequenceClassification.from_pretrained(encoder_dir).eval()
        tok = load_tokenizer(ModelSpec(path=str(encoder_dir)))
    got = prefix_agreement(rm, tok, PAIRS, batch_size=2)
    expected = {f: 0.0 for f in got}
    for pair in PAIRS:
        p = encode_prompt(tok, pair["prompt"])
        w, lr = encode_response(tok, pair["chosen"]), encode_response(tok, pair["rejected"])
        n = max(len(w), len(lr))
        for f in got:
            i = int(max(1, -(-n * f // 1)))
            seqs = [p + w[: min(i, len(w))], p + lr[: min(i, len(lr))]]
            ids, mask = pad_batch(seqs, tok.pad_token_id)
            r = sequence_rewards(rm, ids, mask)
            expected[f] += float((r[0] > r[1]).float() + 0.5 * (r[0] == r[1]).float()) / len(PAIRS)
    assert got == pytest.approx(expected)
    assert len(set(got.values())) > 1 or family == "causal"  # the encoder case is not trivially constant
