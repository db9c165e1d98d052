"""Shared fixtures: a word-level tokenizer and tiny GPT-2 models built from configs (no network)."""

from __future__ import annotations

import os

import pytest
import torch
from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2LMHeadModel

from pargs.tasks.synthetic import vocabulary
from pargs.tasks.synthetic_prepare import SyntheticSizes, prepare_synthetic
from pargs.tasks.word_tokenizer import build_word_tokenizer

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)  # one core per xdist worker


@pytest.fixture(scope="session")
def tokenizer():
    return build_word_tokenizer(vocabulary())


def tiny_config(tokenizer, n_layer: int = 2, n_embd: int = 32, **kw) -> GPT2Config:
    return GPT2Config(
        n_layer=n_layer,
        n_embd=n_embd,
        n_head=2,
        n_positions=96,
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
        num_labels=1,
        **kw,
    )


def make_lm(tokenizer, seed: int = 0, **kw) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    return GPT2LMHeadModel(tiny_config(tokenizer, **kw)).eval()


def make_rm(tokenizer, seed: int = 1, **kw) -> GPT2ForSequenceClassification:
    torch.manual_seed(seed)
    model = GPT2ForSequenceClassification(tiny_config(tokenizer, **kw)).eval()
    with torch.no_grad():  # a head large enough that rewards differ visibly between candidates
        model.score.weight.normal_(0, 1.0)
    return model


@pytest.fixture(scope="session")
def lm(tokenizer):
    return make_lm(tokenizer)


@pytest.fixture(scope="session")
def rm(tokenizer):
    return make_rm(tokenizer)


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory):
    """A small synthetic task on disk (data files + tokenizer directory)."""
    out = tmp_path_factory.mktemp("synthetic")
    prepare_synthetic(out, SyntheticSizes(seed=0, n_sft=200, n_sft_val=20, n_pairs=64, n_pairs_val=16, n_test=6))
    return out


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory, tokenizer):
    """Tiny untrained reference LM and reward model saved as Hugging Face directories."""
    out = tmp_path_factory.mktemp("models")
    paths = {}
    for name, model in (("reference", make_lm(tokenizer)), ("rm", make_rm(tokenizer))):
        path = out / name
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
        paths[name] = path
    return paths


@pytest.fixture(autouse=True)
def _lightning_logs_to_current_stderr():
    """Lightning's log handlers keep the stderr of the test that imported it; point them at this test's."""
    import logging
    import sys

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        for handler in logging.getLogger(name).handlers:
            if type(handler).__module__.startswith("_pytest"):
                continue  # pytest puts its capture handlers on loggers that do not propagate (pargs' Lightning)
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                handler.stream = sys.stderr  # not setStream(): it flushes the old, closed stream
    yield


def build_encoder_tokenizer():
    """A BERT-style word tokenizer: ``[CLS] text [SEP]``, no EOS token (pargs ends responses with [SEP])."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    vocab = {w: i for i, w in enumerate(specials + vocabulary())}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]"
    )


@pytest.fixture(scope="session")
def encoder_dir(tmp_path_factory):
    """A tiny BERT sequence classifier (one label) with its tokenizer, saved as a Hugging Face directory."""
    from transformers import BertConfig, BertForSequenceClassification

    tok = build_encoder_tokenizer()
    torch.manual_seed(5)
    cfg = BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=96,
        num_labels=1,
        pad_token_id=0,
    )
    path = tmp_path_factory.mktemp("encoder") / "bert_rm"
    BertForSequenceClassification(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path
