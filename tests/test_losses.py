"""The dense partial-sequence loss against a slow reference that scores every prefix on its own."""

import math

import pytest
import torch
import torch.nn.functional as F

from pargs.losses import bradley_terry_loss, dpo_loss, full_bt_loss, partial_bt_loss
from pargs.models.encoding import encode_prompt, encode_response, pad_batch
from pargs.models.reward_model import sequence_rewards, token_rewards
from tests.conftest import make_rm

PAIRS = [
    (
        "write a review of the hotel about the staff :",
        "the staff was great .",
        "the room was bad and the pool was okay .",
    ),
    ("write a short review of the phone about the price :", "it was good .", "the price was not very good ."),
    (
        "write a detailed review of the book about the story :",
        "the story was dull but the cover was nice .",
        "it was .",
    ),
]


def _batch(tokenizer):
    rows, prompt_len, resp_len = [], [], []
    for side in (1, 2):
        for pair in PAIRS:
            p, r = encode_prompt(tokenizer, pair[0]), encode_response(tokenizer, pair[side])
            rows.append(p + r)
            prompt_len.append(len(p))
            resp_len.append(len(r))
    ids, mask = pad_batch(rows, tokenizer.pad_token_id)
    return ids, mask, torch.tensor(prompt_len), torch.tensor(resp_len)


def _slow_partial_loss(model, tokenizer, rule, weighting="term"):
    """One forward pass per prefix, each prefix encoded from scratch: the definition of the loss."""
    per_pair = []
    for prompt, chosen, rejected in PAIRS:
        p = encode_prompt(tokenizer, prompt)
        w, lr = encode_response(tokenizer, chosen), encode_response(tokenizer, rejected)
        n = max(len(w), len(lr)) if rule == "longest" else min(len(w), len(lr))
        terms = []
        for i in range(1, n + 1):
            seqs = [p + w[: min(i, len(w))], p + lr[: min(i, len(lr))]]
            ids, mask = pad_batch(seqs, tokenizer.pad_token_id)
            r = sequence_rewards(model, ids, mask)
            terms.append(-F.logsigmoid(r[0] - r[1]))
        per_pair.append(torch.stack(terms))
    if weighting == "term":
        return torch.cat(per_pair).mean()
    return torch.stack([t.mean() for t in per_pair]).mean()


@pytest.mark.parametrize("rule", ["longest", "shortest"])
@pytest.mark.parametrize("weighting", ["term", "pair"])
def test_dense_partial_loss_equals_per_prefix_reference(tokenizer, rule, weighting):
    model = make_rm(tokenizer).double()
    ids, mask, pl, rl = _batch(tokenizer)
    rewards, _ = token_rewards(model, ids, mask)
    b = len(PAIRS)
    dense = partial_bt_loss(rewards[:b], rewards[b:], pl[:b], rl[:b], pl[b:], rl[b:], rule, weighting=weighting)
    dense.backward()
    dense_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    slow = _slow_partial_loss(model, tokenizer, rule, weighting)
    slow.backward()
    assert dense.item() == pytest.approx(slow.item(), abs=1e-10)
    for g_dense, p in zip(dense_grads, model.parameters()):
        torch.testing.assert_close(g_dense, p.grad, atol=1e-10, rtol=1e-8)


def test_full_loss_reads_the_last_response_token(tokenizer):
    model = make_rm(tokenizer)
    ids, mask, pl, rl = _batch(tokenizer)
    rewards, _ = token_rewards(model, ids, mask)
    b = len(PAIRS)
    loss = full_bt_loss(rewards[:b], rewards[b:], pl[:b], rl[:b], pl[b:], rl[b:])
    whole = sequence_rewards(model, ids, mask)  # each full sequence scored as a sequence classifier
    assert loss.item() == pytest.approx((-F.logsigmoid(whole[:b] - whole[b:])).mean().item(), abs=1e-6)


def test_bradley_terry_hand_values():
    # terms: -log sigmoid(1) = 0.31326, -log sigmoid(-2) = 2.12693, -log sigmoid(0) = 0.69315
    rw = torch.tensor([[1.0, -1.0], [0.5, 9.0]])
    rl = torch.tensor([[0.0, 1.0], [0.5, 0.0]])
    mask = torch.tensor([[True, True], [True, False]])
    a, b, c = 0.3132617, 2.1269280, 0.6931472
    assert bradley_terry_loss(rw, rl, mask).item() == pytest.approx((a + b + c) / 3, abs=1e-6)
    assert bradley_terry_loss(rw, rl, mask, weighting="pair").item() == pytest.approx(((a + b) / 2 + c) / 2, abs=1e-6)
    # a margin of 1 per pair shifts every difference of that pair
    with_margin = bradley_terry_loss(rw, rl, mask, margin=torch.tensor([1.0, 0.0]))
    expected = (-math.log(0.5) - math.log(1 / (1 + math.exp(3))) + c) / 3
    assert with_margin.item() == pytest.approx(expected, abs=1e-6)
    # centring adds coef * mean((rw + rl)^2) over the terms
    centred = bradley_terry_loss(rw, rl, mask, center_coef=0.1)
    assert centred.item() == pytest.approx((a + b + c) / 3 + 0.1 * (1 + 0 + 1) / 3, abs=1e-6)
    # ... and, with pair weighting, per pair first: pair 1 (1 + 0) / 2, pair 2 (1) / 1
    centred_pairs = bradley_terry_loss(rw, rl, mask, weighting="pair", center_coef=0.1)
    assert centred_pairs.item() == pytest.approx(((a + b) / 2 + c) / 2 + 0.1 * (0.5 + 1) / 2, abs=1e-6)


def test_dpo_loss_hand_value():
    loss, chosen, rejected = dpo_loss(
        torch.tensor([-1.0]), torch.tensor([-3.0]), torch.tensor([-2.0]), torch.tensor([-2.0]), beta=0.5
    )
    # logits = 0.5 * ((-1 + 2) - (-3 + 2)) = 1
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-6)
    assert chosen.item() == pytest.approx(0.5) and rejected.item() == pytest.approx(-0.5)
