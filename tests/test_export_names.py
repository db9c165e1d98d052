"""Which names a sharded export drops: only tied aliases, whatever wrappers FSDP1 or checkpointing add."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper
from transformers import GPT2ForSequenceClassification, GPT2LMHeadModel

from pargs.lit.fsdp2 import clean_name, tied_aliases
from tests.conftest import tiny_config
from tests.subprocesses import ROOT, free_port


@pytest.mark.parametrize("wrap", [False, True])
def test_tied_aliases(tokenizer, wrap):
    lm, rm = GPT2LMHeadModel(tiny_config(tokenizer)), GPT2ForSequenceClassification(tiny_config(tokenizer))
    if wrap:  # activation checkpointing inserts "_checkpoint_wrapped_module." into every block's names
        for model in (lm, rm):
            blocks = model.transformer.h
            for i in range(len(blocks)):
                blocks[i] = checkpoint_wrapper(blocks[i])
        assert any("_checkpoint_wrapped_module" in n for n, _ in lm.named_parameters())
    assert tied_aliases(lm) == {"lm_head.weight"}
    assert tied_aliases(rm) == set()


def test_clean_name():
    assert clean_name("transformer.h.0._fsdp_wrapped_module._checkpoint_wrapped_module.attn.c_attn.weight") == (
        "transformer.h.0.attn.c_attn.weight"
    )


FSDP1_EXPORT = """
import sys, torch, torch.distributed as dist
from types import SimpleNamespace
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2LMHeadModel
from pargs.lit.export import export_pretrained
from pargs.lit.fsdp2 import is_sharded
from pargs.tasks.word_tokenizer import build_word_tokenizer

dist.init_process_group("gloo", rank=0, world_size=1)
tokenizer = build_word_tokenizer(["a", "b"])
for cls in (GPT2LMHeadModel, GPT2ForSequenceClassification):
    torch.manual_seed(0)
    model = cls(GPT2Config(n_layer=2, n_embd=16, n_head=2, vocab_size=len(tokenizer), n_positions=32, pad_token_id=0))
    plain = {k: v.clone() for k, v in model.state_dict().items()}
    for i in range(len(model.transformer.h)):
        model.transformer.h[i] = FSDP(model.transformer.h[i], use_orig_params=True, device_id=torch.device("cpu"))
    assert is_sharded(model)
    out = f"{sys.argv[1]}/{cls.__name__}"
    export_pretrained(SimpleNamespace(model=model, tokenizer=tokenizer, trainer=SimpleNamespace(is_global_zero=True)),
                      out)
    back = cls.from_pretrained(out).state_dict()
    assert back.keys() == plain.keys()
    for k in plain:
        assert torch.equal(back[k], plain[k]), k
print("ok")
"""


def test_fsdp1_export_keeps_every_block(tmp_path):
    """Lightning's FSDP strategy wraps each block in FSDP1 (names gain ``_fsdp_wrapped_module.``): the export
    must still hold every block's weights (one CPU process, gloo)."""
    env = {"PYTHONPATH": str(ROOT), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "PATH": ""}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(FSDP1_EXPORT), str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]
