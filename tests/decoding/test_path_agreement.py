"""Greedy tokens of every token loop against pargs' eager loop, weighed where they differ
(``benchmarks/gpu_agreement.py`` explains the measure).

float32: the static / captured / compiled paths and Hugging Face's greedy ``generate`` give the eager tokens.
bfloat16: a path may part from the eager tokens only where the reference's best and second logit were tied at
bfloat16's resolution; a decode that goes wrong (here: fed another context) parts where the gap is as usual, so
the measure tells the two apart. The same runs on CUDA (marked ``gpu``) with the graphs and compiled paths.
"""

import pytest
import torch
from transformers import LlamaForCausalLM

import pargs.decoding.static_loop as static_loop
from benchmarks.gpu_agreement import compare, greedy_tokens, hf_greedy_tokens, margins
from benchmarks.gpu_case import build, llama_config
from pargs.tasks.word_tokenizer import build_word_tokenizer

#: bfloat16 units (spacing at the best logit) under which two logits count as tied; the median gap is ~15
TIE_UNITS = 4.0
N = 24


@pytest.fixture(scope="module")
def setup():
    tokenizer = build_word_tokenizer([f"w{i}" for i in range(509)])
    g = torch.Generator().manual_seed(0)
    prompts = [" ".join(f"w{int(i)}" for i in torch.randint(0, 509, (12,), generator=g)) for _ in range(8)]
    return tokenizer, prompts


def _models(device):
    return [
        build(LlamaForCausalLM, llama_config("tiny", 512), dtype, device, 0)
        for dtype in (torch.float32, torch.bfloat16)
    ]


def _check(device, paths, setup):
    tokenizer, prompts = setup
    truth, half = _models(device)
    eager = greedy_tokens(truth, tokenizer, prompts, "eager", N)
    for path in paths:
        assert greedy_tokens(truth, tokenizer, prompts, path, N) == eager, path
    assert hf_greedy_tokens(truth, tokenizer, prompts, N) == eager
    eager_half = greedy_tokens(half, tokenizer, prompts, "eager", N)
    gaps = margins(truth, tokenizer, prompts, eager_half)
    assert float(gaps.median()) > 3 * TIE_UNITS  # ties are the exception
    for path in [*paths, "hf"]:
        other = (
            hf_greedy_tokens(half, tokenizer, prompts, N)
            if path == "hf"
            else greedy_tokens(half, tokenizer, prompts, path, N)
        )
        c = compare(eager_half, other, gaps)
        assert all(g < TIE_UNITS for g in c["gaps at differences"]), (path, c)
    return truth, half, eager_half, gaps


def test_paths_agree_in_float32_and_part_only_at_ties_in_bfloat16(setup, monkeypatch):
    monkeypatch.setattr(static_loop, "COMPILE_BACKEND", "aot_eager")
    static_loop.release_sessions()
    _check("cpu", ["static", "compiled"], setup)
    static_loop.release_sessions()


def test_a_decode_fed_another_context_parts_at_a_usual_gap(setup):
    """The measure is not blind: tokens decoded after a prompt with its first word changed differ from the
    reference where the reference's choice was clear."""
    tokenizer, prompts = setup
    truth, half = _models("cpu")
    eager = greedy_tokens(half, tokenizer, prompts, "eager", N)
    other = greedy_tokens(half, tokenizer, [" ".join(["w5", *p.split()[1:]]) for p in prompts], "eager", N)
    c = compare(eager, other, margins(truth, tokenizer, prompts, eager))
    assert c["rows same"] < len(prompts) and max(c["gaps at differences"]) > 3 * TIE_UNITS


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
def test_paths_agree_on_cuda(setup):
    """graphs and compiled (Inductor, captured) on CUDA; prints the bfloat16 agreement."""
    static_loop.release_sessions()
    _, _, eager_half, gaps = _check("cuda", ["graphs", "compiled"], setup)
    print(f"bfloat16 median gap {float(gaps.median()):.1f} units")
    static_loop.release_sessions()
