"""CD-FUDGE: the prefix value loss against a per-prefix computation, rollouts written by `predict` read by
the value datamodule, and decoding guided by the trained value model against the slow reference decoder."""

from __future__ import annotations

import json

import lightning as L
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

from pargs.datamodules import PromptDataModule, RolloutDataModule
from pargs.decoding.build import RewardSpec
from pargs.decoding.cached_scorer import CachedCausalScorer
from pargs.decoding.methods import DecodeMethod, preset
from pargs.decoding.noise import stable_seed
from pargs.decoding.text_reward import ModelReward
from pargs.errors import ConfigError
from pargs.lit import DecodeModule, JsonlPredictionWriter, ValueModule
from pargs.models.encoding import encode_prompt, encode_response
from pargs.models.loading import ModelSpec
from pargs.models.reward_model import sequence_rewards
from pargs.records import RecordError, load_prompts, load_rollouts
from tests.decoding.reference_decoder import reference_guided_decode

HOTEL = "write a review of the hotel about the staff :"
PHONE = "write a short review of the phone about the price :"
ROLLOUTS = [
    {"id": "a", "sample": 0, "prompt": HOTEL, "response": "the staff was great .", "reward": 1.5, "stop": "eos"},
    {
        "id": "a",
        "sample": 1,
        "prompt": HOTEL,
        "response": "the room was bad and the pool",
        "reward": -2.0,
        "stop": "length",
    },
    {"id": "b", "sample": 0, "prompt": PHONE, "response": "it was okay .", "reward": 0.25},  # no `stop`: finished
]


def _trainer(tmp_path, **kw) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        **kw,
    )


def _write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_value_loss_equals_a_per_prefix_computation(tmp_path, tokenizer, model_dirs):
    path = _write(tmp_path / "rollouts.jsonl", ROLLOUTS)
    data = RolloutDataModule(str(path), str(model_dirs["reference"]), batch_size=3)
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    module = ValueModule(ModelSpec(path=str(model_dirs["rm"])))
    module.configure_model()
    model = module.model.double().eval()  # dropout off: the deterministic function
    loss, _ = module.value_loss(batch)

    terms = []
    for rec in ROLLOUTS:
        prompt = encode_prompt(tokenizer, rec["prompt"])
        response = encode_response(tokenizer, rec["response"], add_eos=rec.get("stop", "eos") != "length")
        for i in range(1, len(response) + 1):  # every prefix, scored on its own, regressed to the final reward
            ids = torch.tensor([prompt + response[:i]])
            terms.append((sequence_rewards(model, ids, torch.ones_like(ids)).item() - rec["reward"]) ** 2)
    assert len(terms) == 6 + 7 + 5  # 'the staff was great . <eos>', the unfinished 7 words, 'it was okay . <eos>'
    assert loss.item() == pytest.approx(sum(terms) / len(terms), abs=1e-10)


def test_a_rollout_longer_than_the_model_is_named_by_file_line_and_field(tmp_path, model_dirs):
    runs = tmp_path / "rollouts"  # a predict output directory: the long rollout is in the second rank's file
    runs.mkdir()
    _write(runs / "predictions-rank0.jsonl", ROLLOUTS[:1])
    long = dict(ROLLOUTS[2], id="long", response=" ".join(["the staff was great and"] * 30) + " .")
    _write(runs / "predictions-rank1.jsonl", [ROLLOUTS[2], long])
    data = RolloutDataModule(str(runs), str(model_dirs["reference"]), batch_size=2, max_length=None)
    with pytest.raises(ConfigError, match=r"predictions-rank1.jsonl, line 2: field 'response' \(id 'long/"):
        _trainer(tmp_path, max_steps=1).fit(ValueModule(ModelSpec(path=str(model_dirs["rm"]))), datamodule=data)


def test_bad_rollouts_fail_with_file_line_and_field(tmp_path):
    dup = _write(tmp_path / "dup.jsonl", [ROLLOUTS[0], ROLLOUTS[1], ROLLOUTS[0]])
    with pytest.raises(RecordError, match=r"dup.jsonl, line 3: field 'id' duplicate rollout"):
        load_rollouts(dup)
    unscored = _write(tmp_path / "unscored.jsonl", [dict(ROLLOUTS[0], reward=None)])
    with pytest.raises(RecordError, match=r"line 1: field 'reward' must be int or float, got NoneType"):
        load_rollouts(unscored)
    nan = _write(tmp_path / "nan.jsonl", [dict(ROLLOUTS[0], reward=float("nan"))])
    with pytest.raises(RecordError, match="finite"):
        load_rollouts(nan)


def test_rollouts_value_model_and_cd_fudge_decoding_through_the_lightning_modules(
    tmp_path, synthetic_dir, model_dirs, tokenizer
):
    reference, rm = str(model_dirs["reference"]), str(model_dirs["rm"])
    # 1. rollouts: `predict` samples the prompts with the reference LM and scores them with the RM
    rollout_dir = tmp_path / "rollouts"
    decode = DecodeModule(
        {"reference": ModelSpec(path=reference)},
        [DecodeMethod("rollout", kind="sample", top_k=10, samples=3)],
        eval_reward=RewardSpec(model=ModelSpec(path=rm)),
        max_new_tokens=8,
        warmup=False,
    )
    prompts = PromptDataModule(str(synthetic_dir / "prompts_test.jsonl"), batch_size=4)
    _trainer(tmp_path, callbacks=[JsonlPredictionWriter(str(rollout_dir))]).predict(
        decode, datamodule=prompts, return_predictions=False
    )
    records, _ = load_rollouts(rollout_dir)
    assert len(records) == 6 * 3
    rm_model = AutoModelForSequenceClassification.from_pretrained(rm).eval()
    again = ModelReward(rm_model, tokenizer)(
        [r["prompt"] for r in records], [r["response"] for r in records], [r["stop"] != "length" for r in records]
    )
    torch.testing.assert_close(torch.tensor([r["reward"] for r in records]), again, atol=1e-5, rtol=0)

    # 2. the value model trains on them (val split by prompt) and exports a HF directory
    value_dir = tmp_path / "value"
    data = RolloutDataModule(str(rollout_dir), reference, val_fraction=0.3, batch_size=4)
    L.seed_everything(0)
    _trainer(tmp_path, max_steps=3).fit(
        ValueModule(ModelSpec(path=reference), lr=1e-3, export_dir=str(value_dir)), datamodule=data
    )
    val_prompts = {ex["prompt_text"] for ex in data.datasets["val"]}
    assert val_prompts.isdisjoint(ex["prompt_text"] for ex in data.datasets["train"])
    assert data.datasets["val"] and data.datasets["train"]

    # 3. CD-FUDGE: guided decoding with the value model as the scorer named `value`
    out_dir = tmp_path / "preds"
    method = preset("cd-fudge", k=4, beta=2.0)
    assert method.scorer == "value"
    decode = DecodeModule(
        {"reference": ModelSpec(path=reference)},
        [method],
        scorers={"value": RewardSpec(model=ModelSpec(path=str(value_dir)))},
        eval_reward=RewardSpec(oracle=True),
        max_new_tokens=8,
        warmup=False,
    )
    trainer = _trainer(tmp_path, callbacks=[JsonlPredictionWriter(str(out_dir))])
    trainer.predict(
        decode,
        datamodule=PromptDataModule(str(synthetic_dir / "prompts_test.jsonl"), batch_size=4),
        return_predictions=False,
    )
    assert isinstance(decode._scorers["value"], CachedCausalScorer)
    lines = [json.loads(x) for x in (out_dir / "predictions-rank0.jsonl").read_text().splitlines()]
    assert len(lines) == 6 and {r["method"] for r in lines} == {"cd-fudge"}
    lm = AutoModelForCausalLM.from_pretrained(reference).eval()
    value = AutoModelForSequenceClassification.from_pretrained(value_dir).eval()
    by_id = {r["id"]: r for r in lines}
    for rec in load_prompts(synthetic_dir / "prompts_test.jsonl")[:3]:
        seed = stable_seed(0, rec["id"], "cd-fudge", 0)
        tokens = reference_guided_decode(lm, value, tokenizer, rec["prompt"], seed, 4, 2.0, False, 8)
        assert by_id[rec["id"]]["response"] == tokenizer.decode(tokens, skip_special_tokens=True)
