"""Decoding rules by kind: presets with overrides, a new rule from one file, each rule's FLOPs estimate.

Decoded tokens are checked against slow decoders written here (no cache, the whole sequence re-run
every step), and FLOPs against hand-worked values.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from pargs.cli import main
from pargs.decoding.engine import generate
from pargs.decoding.methods import PRESETS, DecodeMethod, preset
from pargs.decoding.noise import stable_seed
from pargs.decoding.registry import register, rule_for
from pargs.decoding.rules.base import TokenRule
from pargs.errors import ConfigError
from pargs.metrics.flops import Shape
from pargs.models.encoding import decode_response, encode_prompt
from tests.decoding import runner_up_rule  # noqa: F401  (registers kind "runner_up")
from tests.decoding.reference_decoder import reference_guided_decode
from tests.helpers import predict_yaml

PROMPTS = [
    "write a review of the hotel about the staff :",
    "write a short review of the phone about the price :",
    "write a detailed review of the movie about the plot :",
]


@torch.no_grad()
def slow_decode(lm, tokenizer, prompt: str, max_new_tokens: int, rank: int) -> list[int]:
    """Each step: the policy on the whole sequence, padding and unknown banned, the ``rank``-th most likely token."""
    ids, out = encode_prompt(tokenizer, prompt), []
    for _ in range(max_new_tokens):
        logits = lm(input_ids=torch.tensor([ids + out])).logits[0, -1]
        logits[[tokenizer.pad_token_id, tokenizer.unk_token_id]] = float("-inf")
        out.append(int(logits.topk(rank + 1).indices[rank]))
        if out[-1] == tokenizer.eos_token_id:
            break
    return out


def test_a_preset_with_overrides_is_the_method_spelled_out():
    method = DecodeMethod(preset="pargs", scorer="partial", beta=2.0, samples=10, name="pargs-b2")
    assert method == DecodeMethod(
        name="pargs-b2",
        kind="guided",
        k=10,
        beta=2.0,
        greedy=False,
        scorer="partial",
        samples=10,
        top_k=0,
        top_p=1.0,
        temperature=1.0,
        n=10,
        policy="reference",
        noise_key="pargs",  # the preset's: a variant draws the same noise as the preset it varies
    )
    assert DecodeMethod(preset="args").name == "args" and DecodeMethod(preset="args").scorer == "full"
    # an override back to the plain default still wins over the preset
    assert DecodeMethod(preset="pargs-g", greedy=False).greedy is False
    assert DecodeMethod(preset="top-k", top_k=0).top_k == 0
    # a built method carries no preset: replacing a field changes only that field
    assert replace(preset("args"), scorer="other").greedy is True
    assert preset("args-sampled") == DecodeMethod("args-sampled", kind="guided", k=10, beta=1.5, scorer="full")
    assert set(PRESETS) >= {"greedy", "top-k", "best-of-n", "args", "args-sampled", "pargs", "pargs-g", "cd-fudge"}


def test_uses_scorer_comes_from_the_rule():
    assert [preset(p).uses_scorer for p in ("greedy", "top-k", "best-of-n", "args", "pargs")] == [
        False,
        False,
        True,
        True,
        True,
    ]
    assert DecodeMethod("r", kind="runner_up").uses_scorer is False


def test_bad_method_configs_say_what_to_change():
    with pytest.raises(ConfigError, match=r"decoding method 'pargs': `weight` was renamed to `beta`"):
        DecodeMethod(preset="pargs", weight=2.0)
    with pytest.raises(ConfigError, match=r"unknown preset 'parg'; known: \['args'"):
        DecodeMethod(preset="parg")
    with pytest.raises(ConfigError, match="needs a `name`"):
        DecodeMethod(kind="sample")
    with pytest.raises(ConfigError, match=r"kind must be one of \[.*'guided'.*\], got 'nope'"):
        DecodeMethod("x", kind="nope")
    with pytest.raises(ConfigError, match="already registered"):

        @register("sample")
        class Other(TokenRule):
            pass

    assert type(rule_for("sample")).__name__ == "Sample"  # the refused class did not replace it


def test_a_rule_from_one_file_decodes_through_generate(lm, tokenizer):
    seeds = torch.tensor([stable_seed(0, i) for i in range(len(PROMPTS))])
    gen = generate(lm, tokenizer, PROMPTS, DecodeMethod("runner-up", kind="runner_up"), seeds, max_new_tokens=8)
    assert gen.token_ids == [slow_decode(lm, tokenizer, p, 8, rank=1) for p in PROMPTS]


def test_new_rule_and_presets_as_rows_of_a_predict_run(tmp_path, lm, rm, tokenizer, model_dirs, synthetic_dir):
    """The toy rule is one config line of a real ``pargs predict``; ``greedy`` and ``args-sampled`` are rows too."""
    decode_args = {
        "policies": {"reference": {"path": str(model_dirs["reference"])}},
        "scorers": {"full": {"model": {"path": str(model_dirs["rm"])}}},
        "max_new_tokens": 6,
        "methods": [
            {"name": "runner-up", "kind": "runner_up"},
            {"preset": "greedy"},
            {"preset": "args-sampled", "samples": 2},
        ],
    }
    path = predict_yaml(tmp_path, decode_args, {"predict_file": str(synthetic_dir / "prompts_test.jsonl"), "limit": 3})
    assert main(["predict", "-c", str(path)]) == 0
    records = [json.loads(x) for x in (tmp_path / "preds" / "predictions-rank0.jsonl").read_text().splitlines()]
    assert sorted((r["method"], r["sample"]) for r in records) == sorted(
        [("runner-up", 0)] * 3 + [("greedy", 0)] * 3 + [("args-sampled", s) for s in (0, 1)] * 3
    )
    lm_shape = Shape(2, 32)  # conftest's tiny models: 2 layers, d_model 32 (policy and RM alike)
    for r in records:
        if r["method"] == "args-sampled":
            ids = reference_guided_decode(
                lm, rm, tokenizer, r["prompt"], r["seed"], k=10, beta=1.5, greedy=False, max_new_tokens=6
            )
        else:
            ids = slow_decode(lm, tokenizer, r["prompt"], 6, rank=1 if r["method"] == "runner-up" else 0)
        assert r["response"] == decode_response(tokenizer, ids), r["method"]
        assert r["scorer"] == ("full" if r["method"] == "args-sampled" else None)
        n_prompt = len(encode_prompt(tokenizer, r["prompt"]))
        plain = lm_shape.span_flops(n_prompt, r["tokens"])
        assert r["flops"] == plain * (11 if r["method"] == "args-sampled" else 1)  # + k = 10 RM tokens a step


def test_each_rule_counts_flops_by_the_papers_convention():
    """Prompt prefill excluded for every method; guided: the policy's token + k RM tokens a step (cached or not);
    Best-of-N: n plain responses, the RM's scoring of the finished ones excluded (pargs/metrics/flops.py)."""
    lm, rm = Shape(2, 4), Shape(1, 2)  # f_lm(c) = 768 + 16 c, f_rm(c) = 96 + 4 c
    assert lm.span_flops(3, 2) == 816 + 832 and rm.span_flops(3, 2) == 108 + 112
    top_k, pargs, bon = preset("top-k"), preset("pargs", k=5), preset("best-of-n", n=3)
    # 2 new tokens after a 3-token prompt: the policy at contexts 3 and 4 (816 + 832), no prefill of the prompt
    assert top_k.rule.flops(top_k, lm, rm, prompt_tokens=3, new_tokens=2) == 1648
    assert pargs.rule.flops(pargs, lm, rm, 3, 2) == 1648 + 5 * (108 + 112)  # k = 5 candidates a step
    # the text path re-encodes what it scores, but the convention counts k RM token-forwards a step all the same
    assert pargs.rule.flops(pargs, lm, rm, 3, 2, scoring="from_scratch") == 1648 + 5 * (108 + 112)
    assert bon.rule.flops(bon, lm, rm, 3, 2) == 3 * 1648  # n = 3 responses; 9x overhead at n = 10
    assert preset("best-of-n").rule.flops(preset("best-of-n"), lm, rm, 3, 2) == 10 * 1648
    assert pargs.rule.flops(pargs, lm, None, 3, 2) == 1648  # the oracle costs no model FLOPs
    assert bon.rule.flops(bon, lm, None, 3, 2) == 3 * 1648
    with pytest.raises(ValueError, match="scoring must be cached or from_scratch"):
        pargs.rule.flops(pargs, lm, rm, 3, 2, scoring="cache")
