"""Reward-model training paths: dense vs materialised prefixes, encoder RMs, margins, LoRA, export, precision."""

from __future__ import annotations

import json
import math

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForSequenceClassification

from pargs.datamodules import PreferenceDataModule
from pargs.datamodules.prefix_rows import PrefixRows
from pargs.errors import ConfigError
from pargs.lit import RewardModule
from pargs.models.encoding import encode_prompt, encode_response, pad_batch
from pargs.models.loading import ModelSpec, load_tokenizer
from pargs.models.reward_model import sequence_rewards


def _trainer(tmp_path, **kw):
    return L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        num_sanity_val_steps=0,
        **kw,
    )


def _data(synthetic_dir, tokenizer_dir, **kw):
    args = dict(train_file=str(synthetic_dir / "pairs_train.jsonl"), tokenizer=str(tokenizer_dir), batch_size=8)
    args.update(kw)
    return PreferenceDataModule(**args)


def test_materialising_every_prefix_equals_the_dense_loss(synthetic_dir, model_dirs):
    spec = ModelSpec(
        path=str(model_dirs["reference"]), config={"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}
    )
    module = RewardModule(spec, weighting="term")
    module.configure_model()
    module.model.double().eval()
    pairs = _data(synthetic_dir, model_dirs["reference"], batch_size=16)
    pairs.setup("fit")
    dense_batch = pairs.collate_fn()(pairs.datasets["train"][:16])
    rows = PrefixRows(pairs.datasets["train"][:16], "all", seed=0)
    rows_batch = pairs.collate_fn()([rows[k] for k in range(len(rows))])
    assert rows_batch["prefix_rows"] and not dense_batch["prefix_rows"]
    assert len(rows) == sum(max(len(p["chosen"]), len(p["rejected"])) for p in pairs.datasets["train"][:16])
    dense, materialised = module._loss(dense_batch), module._loss(rows_batch)
    assert dense.item() == pytest.approx(materialised.item(), abs=1e-10)


def test_sampled_prefix_rows_follow_ratio_seed_and_epoch(synthetic_dir, model_dirs):
    data = _data(synthetic_dir, model_dirs["reference"], prefix_rows=1.5, seed=3)
    data.setup("fit")
    rows = data.dataset("train")
    n = len(data.datasets["train"])
    assert len(rows) == round(1.5 * n)
    first = list(rows.index)
    rows.set_epoch(1)
    assert rows.index != first
    rows.set_epoch(0)
    assert rows.index == first  # a fixed function of (seed, epoch)
    for k in range(len(rows)):
        p, i = rows.index[k]
        pair = data.datasets["train"][p]
        assert 1 <= i <= max(len(pair["chosen"]), len(pair["rejected"]))
        row = rows[k]
        assert row["chosen"] == pair["chosen"][:i] and row["rejected"] == pair["rejected"][:i]
    with pytest.raises(ConfigError, match="ratio"):
        PrefixRows(data.datasets["train"], -1.0, seed=0)


def test_encoder_reward_model_trains_on_prefix_rows_and_logs_prefix_accuracy(tmp_path, synthetic_dir, encoder_dir):
    module = RewardModule(ModelSpec(path=str(encoder_dir)), lr=1e-3)
    data = _data(synthetic_dir, encoder_dir, prefix_rows=1.0, val_file=str(synthetic_dir / "pairs_val.jsonl"))
    trainer = _trainer(tmp_path, max_steps=4, limit_val_batches=2, val_check_interval=2)
    trainer.fit(module, data)
    metrics = trainer.callback_metrics
    for key in ("val/acc", "val/acc@25%", "val/acc@50%", "val/acc@75%", "val/acc@100%", "val/full_loss"):
        assert key in metrics and math.isfinite(float(metrics[key]))
    # the encoder sees "[CLS] prompt [SEP] response [SEP]"
    tok = load_tokenizer(ModelSpec(path=str(encoder_dir)))
    ids = encode_prompt(tok, "write a review of the zoo about the shop :") + encode_response(tok, "it was good .")
    assert tok.convert_ids_to_tokens(ids)[0] == "[CLS]" and tok.convert_ids_to_tokens(ids).count("[SEP]") == 2


def test_encoder_without_prefix_rows_is_refused(tmp_path, synthetic_dir, encoder_dir):
    with pytest.raises(ConfigError, match="prefix_rows"):
        _trainer(tmp_path, max_steps=1).fit(
            RewardModule(ModelSpec(path=str(encoder_dir))), _data(synthetic_dir, encoder_dir)
        )


@pytest.mark.parametrize("rows,data_weighting,model_weighting", [("all", "term", "pair"), (1.0, "pair", "term")])
def test_prefix_rows_must_weigh_terms_like_the_loss(
    tmp_path, synthetic_dir, encoder_dir, rows, data_weighting, model_weighting
):
    module = RewardModule(ModelSpec(path=str(encoder_dir)), weighting=model_weighting)
    data = _data(synthetic_dir, encoder_dir, prefix_rows=rows, prefix_weighting=data_weighting)
    with pytest.raises(ConfigError, match="weighting"):
        _trainer(tmp_path, max_steps=1).fit(module, data)


def test_encoder_prefix_reward_ignores_later_tokens(encoder_dir):
    """rewards_at on an encoder masks out everything after the prefix: equal to scoring the cut row alone."""
    from pargs.models.reward_model import rewards_at

    tok = load_tokenizer(ModelSpec(path=str(encoder_dir)))
    model = AutoModelForSequenceClassification.from_pretrained(encoder_dir).eval()
    full = encode_prompt(tok, "write a review of the zoo about the shop :") + encode_response(
        tok, "the shop was good ."
    )
    ids, mask = pad_batch([full], tok.pad_token_id)
    for cut in (12, 14, len(full) - 1):
        alone, alone_mask = pad_batch([full[: cut + 1]], tok.pad_token_id)
        expected = sequence_rewards(model, alone, alone_mask)
        assert rewards_at(model, ids, mask, torch.tensor([cut])).item() == pytest.approx(expected.item(), abs=1e-5)


def test_per_record_margin_enters_the_loss(tmp_path, synthetic_dir, model_dirs):
    records = [json.loads(x) for x in (synthetic_dir / "pairs_train.jsonl").read_text().splitlines()[:4]]
    for k, rec in enumerate(records):
        rec["margin"] = 0.5 * k
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    module = RewardModule(ModelSpec(path=str(model_dirs["reference"])), objective="full")
    module.configure_model()
    module.model.eval()
    data = _data(tmp_path, model_dirs["reference"], train_file=str(path), batch_size=4)
    data.setup("fit")
    batch = data.collate_fn()(data.datasets["train"])
    assert batch["margin"].tolist() == [0.0, 0.5, 1.0, 1.5]
    r = sequence_rewards(module.model, batch["input_ids"], batch["attention_mask"])
    expected = (-F.logsigmoid(r[:4] - r[4:] - batch["margin"])).mean()
    assert module._loss(batch).item() == pytest.approx(expected.item(), abs=1e-6)


@pytest.mark.parametrize("family", ["causal", "encoder"])
def test_export_round_trip_gives_identical_rewards(tmp_path, synthetic_dir, model_dirs, encoder_dir, family):
    path = model_dirs["reference"] if family == "causal" else encoder_dir
    export = tmp_path / "export"
    module = RewardModule(ModelSpec(path=str(path)), objective="full", export_dir=str(export))
    _trainer(tmp_path, max_steps=2).fit(module, _data(synthetic_dir, path))
    reloaded = AutoModelForSequenceClassification.from_pretrained(export).eval()
    module.model.eval()
    data = _data(synthetic_dir, export)
    data.setup("fit")
    batch = data.collate_fn()(data.datasets["train"][:8])
    before = sequence_rewards(module.model, batch["input_ids"], batch["attention_mask"])
    after = sequence_rewards(reloaded, batch["input_ids"], batch["attention_mask"])
    assert torch.equal(before, after)
    assert (export / "model.safetensors").is_file()


def test_lora_trains_adapters_and_head_and_exports_merged(tmp_path, synthetic_dir, model_dirs):
    export = tmp_path / "lora_export"
    module = RewardModule(
        ModelSpec(path=str(model_dirs["reference"])),
        lora={"r": 4, "alpha": 8, "target_modules": ["c_attn"]},
        lr=1e-2,
        export_dir=str(export),
    )
    _trainer(tmp_path, max_steps=3).fit(module, _data(synthetic_dir, model_dirs["reference"]))
    trainable = {n for n, p in module.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "score" in n for n in trainable)
    assert any("score" in n for n in trainable)
    module.model.eval()
    merged = AutoModelForSequenceClassification.from_pretrained(export).eval()
    data = _data(synthetic_dir, export)
    data.setup("fit")
    batch = data.collate_fn()(data.datasets["train"][:8])
    torch.testing.assert_close(
        sequence_rewards(merged, batch["input_ids"], batch["attention_mask"]),
        sequence_rewards(module.model, batch["input_ids"], batch["attention_mask"]),
        atol=1e-5,
        rtol=1e-5,
    )


@pytest.mark.parametrize("options", [{"precision": "bf16-mixed"}, {}])
def test_bf16_mixed_and_gradient_checkpointing_train(tmp_path, synthetic_dir, model_dirs, options):
    module = RewardModule(ModelSpec(path=str(model_dirs["reference"])), gradient_checkpointing=not options)
    trainer = _trainer(tmp_path, max_steps=2, **options)
    trainer.fit(module, _data(synthetic_dir, model_dirs["reference"]))
    assert math.isfinite(float(trainer.callback_metrics["train/loss"]))
    assert module.model.is_gradient_checkpointing == (not options)
