"""Token agreement between decoding paths where it means something: greedy, float32 and bfloat16, and each
divergence weighed by how close the reference's choice was.

On random weights the logits are nearly flat: at many steps the best and the second logit are closer than
bfloat16 can tell apart (its spacing near a logit x is 2^-7 |x| rounded down to a power of two: ~0.008 near 1.5).
Two correct paths (pargs' eager loop and a captured step, whose attention sums in another order) then break the
tie differently and part, and "0/8 rows identical" says nothing. Making the distribution more peaked does not
help: scaling the logits scales their gaps and their spacing alike; damping the layers' outputs (so that less
of the logit comes from the attention that differs between paths) was tried on CPU and left as many ties.

So each divergence is weighed: where a path first differs from the eager reference, the reference's gap between
its best and second logit at that step (float32 model, teacher-forced on the reference's tokens), in units of
bfloat16's spacing at the best logit. A correct path parts only at ties (under ~1 unit); a wrong cache, mask or
position parts where the gap is as large as usual (the median over all steps is given for scale). In float32
the paths must give the same tokens.

Paths compared with pargs' eager loop: ``graphs`` (``static`` on CPU), ``compiled`` when asked for, and Hugging
Face greedy ``generate``; nothing is suppressed but EOS (``min_new_tokens = max_new_tokens`` in both).
"""

from __future__ import annotations

import statistics

import torch
from transformers import LlamaForCausalLM

from benchmarks.gpu_case import build, llama_config
from pargs.decoding.engine import encode_prompts, generate
from pargs.decoding.methods import preset
from pargs.tasks.word_tokenizer import build_word_tokenizer

GREEDY = preset("greedy")


def bf16_units(gap: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
    """``gap`` in units of bfloat16's spacing at ``top`` (2^(e - 7) for |top| in [2^e, 2^(e+1)))."""
    exponent = torch.floor(torch.log2(top.abs().clamp(min=torch.finfo(torch.float32).tiny)))
    return gap / torch.exp2(exponent - 7)


def greedy_tokens(policy, tokenizer, prompts: list[str], path: str, n: int) -> list[list[int]]:
    """pargs' greedy tokens on ``path``: exactly ``n`` per row, nothing suppressed but EOS."""
    seeds = torch.arange(len(prompts))
    kw = dict(max_new_tokens=n, min_new_tokens=n, suppress_tokens=[], path=path)
    return generate(policy, tokenizer, prompts, GREEDY, seeds, **kw).token_ids


@torch.no_grad()
def hf_greedy_tokens(policy, tokenizer, prompts: list[str], n: int) -> list[list[int]]:
    """Hugging Face ``generate``'s greedy tokens (dynamic cache), exactly ``n`` per row."""
    ids, mask = encode_prompts(tokenizer, prompts)
    device = next(policy.parameters()).device
    out = policy.generate(
        input_ids=ids.to(device),
        attention_mask=mask.to(device),
        do_sample=False,
        max_new_tokens=n,
        min_new_tokens=n,
        pad_token_id=tokenizer.pad_token_id,
    )
    return out[:, ids.shape[1] :].tolist()


@torch.no_grad()
def margins(policy, tokenizer, prompts: list[str], tokens: list[list[int]]) -> torch.Tensor:
    """``[rows, n]``: at each step, the gap between the best and the second logit of ``policy`` fed the prompt
    and ``tokens`` so far (teacher-forced, one forward of the whole sequence), in units of bfloat16's spacing at
    the best logit (:func:`bf16_units`)."""
    ids, mask = encode_prompts(tokenizer, prompts)
    device = next(policy.parameters()).device
    new = torch.tensor(tokens)
    full = torch.cat([ids, new], 1).to(device)
    full_mask = torch.cat([mask, torch.ones_like(new)], 1).to(device)
    positions = (full_mask.cumsum(-1) - 1).clamp(min=0)
    logits = policy(input_ids=full, attention_mask=full_mask, position_ids=positions).logits.float()
    steps = logits[:, ids.shape[1] - 1 : -1]  # the logits that chose each new token
    top = steps.topk(2, dim=-1).values
    return bf16_units(top[..., 0] - top[..., 1], top[..., 0]).cpu()


def compare(reference: list[list[int]], other: list[list[int]], gaps: torch.Tensor) -> dict:
    """Rows identical, the mean share of a row before its first difference, and the reference's gap at each
    first difference."""
    firsts = [next((i for i, (a, b) in enumerate(zip(r, o)) if a != b), None) for r, o in zip(reference, other)]
    n = len(reference[0])
    at = [float(gaps[row, i]) for row, i in enumerate(firsts) if i is not None]
    return {
        "rows same": sum(i is None for i in firsts),
        "rows": len(reference),
        "share before first difference": statistics.mean(n if i is None else i for i in firsts) / n,
        "gaps at differences": [round(g, 2) for g in at],
    }


def agreement_case(ns) -> dict:
    """Greedy tokens of every path vs pargs' eager loop, in float32 and bfloat16 (``ns.models`` names the Llama
    shape; ``ns.batch`` prompts of ``ns.prompt_len`` tokens; ``--path compiled`` adds the compiled path)."""
    shape = ns.models.split("+")[0]
    vocab = 512 if shape == "tiny" else 32000
    tokenizer = build_word_tokenizer([f"w{i}" for i in range(vocab - 3)])
    g = torch.Generator().manual_seed(0)
    prompts = [
        " ".join(f"w{int(i)}" for i in torch.randint(0, vocab - 3, (ns.prompt_len,), generator=g))
        for _ in range(ns.batch)
    ]
    n = ns.new_tokens
    paths = ["graphs" if ns.device == "cuda" else "static", *(["compiled"] if ns.path == "compiled" else [])]
    truth = build(LlamaForCausalLM, llama_config(shape, vocab), torch.float32, ns.device, 0)
    result = {}
    for dtype in ("float32", "bfloat16"):
        policy = truth if dtype == "float32" else build(truth.__class__, truth.config, torch.bfloat16, ns.device, 0)
        eager = greedy_tokens(policy, tokenizer, prompts, "eager", n)
        gaps = margins(truth, tokenizer, prompts, eager)
        row = {"median gap": round(float(gaps.median()), 2)}
        for path in paths:
            row[path] = compare(eager, greedy_tokens(policy, tokenizer, prompts, path, n), gaps)
        row["HF greedy"] = compare(eager, hf_greedy_tokens(policy, tokenizer, prompts, n), gaps)
        result[dtype] = row
        del policy
    return {"agreement": result, "new tokens": n}


def agreement_lines(result: dict) -> list[str]:
    """The agreement of an ``agree`` case as a markdown table."""
    if "error" in result:
        return [f"failed: {result['error']}"]
    lines = [
        f"Greedy, {result.get('new tokens')} new tokens; each path against pargs' eager loop: rows identical, mean "
        "share of a row before its first difference, and where a row first differs the reference's gap between its "
        "best and second logit in units of bfloat16's spacing there (a correct path differs only at ties, under ~1; "
        "the median gap over all steps is given for scale).",
        "",
        "| dtype | median gap | path | rows identical | before first difference | gaps where rows differ |",
        "|---|---:|---|---:|---:|---|",
    ]
    for dtype, row in result["agreement"].items():
        for path, c in row.items():
            if not isinstance(c, dict):
                continue
            gaps = ", ".join(f"{x:.2f}" for x in c["gaps at differences"]) or "-"
            lines.append(
                f"| {dtype} | {row['median gap']:.1f} | {path} | {c['rows same']}/{c['rows']} | "
                f"{c['share before first difference']:.0%} | {gaps} |"
            )
    return lines
