"""``pargs predict`` counts the ``generate`` calls of each shape its run will make, so that ``auto`` weighs a
capture's or a compile's one-time cost against the whole run (pargs/lit/decode.py, calls_per_shape)."""

import lightning as L

import pargs.lit.decode as decode_module
from pargs.datamodules import PromptDataModule
from pargs.decoding.build import RewardSpec
from pargs.decoding.methods import DecodeMethod
from pargs.lit import DecodeModule
from pargs.models.loading import ModelSpec


def _batches(*sizes):
    ids = iter(range(100))
    return [[{"id": f"p{next(ids)}", "prompt": "x"} for _ in range(n)] for n in sizes]


def test_calls_per_shape_by_hand():
    ten = DecodeMethod("s", kind="sample", samples=10)
    batches = _batches(16, 16, 8)  # 40 prompts in batches of 16
    # rows_per_call None: a call per 16 prompts' worth of rows, so 10 calls of 16 per full batch, 10 of 8 in the last
    assert decode_module.calls_per_shape(batches, ten, set(), None) == {16: 20, 8: 10}
    # 32 rows a call: 160 rows = 5 calls of 32; 80 rows = 32 + 32 + 16
    assert decode_module.calls_per_shape(batches, ten, set(), 32) == {32: 12, 16: 1}
    # 24 rows a call: 160 = 6 x 24 + 16; 80 = 3 x 24 + 8; a call of 24 rows runs in the 24-row bucket
    assert decode_module.calls_per_shape(batches, ten, set(), 24) == {24: 15, 16: 2, 8: 1}
    # rows written by an earlier run are not decoded again: prompt p0 done for every sample, p1 for 5 of them
    done = {("p0", "s", i) for i in range(10)} | {("p1", "s", i) for i in range(5)}
    # batch 1: 160 - 15 = 145 rows = 9 calls of 16 + 1 call of 1 row; batch 2: 10 of 16; batch 3: 10 of 8
    assert decode_module.calls_per_shape(batches, ten, done, None) == {16: 19, 8: 10, 1: 1}
    # one sample, 4 rows a call: the last batch of 5 prompts makes a call of 4 and one of 1
    assert decode_module.calls_per_shape(_batches(4, 4, 5), DecodeMethod("g", kind="sample"), set(), 4) == {4: 3, 1: 1}
    # a call of 5 rows runs in the 8-row bucket, with the calls of 8
    assert decode_module.calls_per_shape(_batches(8, 5), DecodeMethod("g", kind="sample"), set(), None) == {8: 2}


def test_predict_passes_each_call_the_count_of_its_shape(tmp_path, synthetic_dir, model_dirs, monkeypatch):
    """6 test prompts in batches of 4, 3 samples, 5 rows a call: batch 1 (12 rows) = 5 + 5 + 2, batch 2 (6 rows)
    = 5 + 1; the buckets 8 (three calls), 2 (one) and 1 (one). Every call asks for its path with the count of its
    bucket."""
    seen = []
    real = decode_module.choose_path

    def recording(path, method, policy, scorer, stop, device, calls=1):
        seen.append(calls)
        return real(path, method, policy, scorer, stop, device, calls)

    monkeypatch.setattr(decode_module, "choose_path", recording)
    module = DecodeModule(
        {"reference": ModelSpec(path=str(model_dirs["reference"]))},
        [DecodeMethod("s", kind="sample", top_k=10, samples=3)],
        eval_reward=RewardSpec(oracle=True),
        max_new_tokens=4,
        rows_per_call=5,
    )
    trainer = L.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, default_root_dir=tmp_path
    )
    data = PromptDataModule(str(synthetic_dir / "prompts_test.jsonl"), batch_size=4)
    trainer.predict(module, datamodule=data, return_predictions=False)
    assert trainer.predict_loop.batch_progress.total.completed == 2  # counting the calls consumed no batch
    assert module._calls == {"s": {8: 3, 2: 1, 1: 1}}
    assert seen == [3, 3, 1, 3, 1]


def test_a_captured_path_warms_up_once_per_bucket_of_rows(tmp_path, synthetic_dir, model_dirs, monkeypatch):
    """Each bucket of rows has its own captured step: its first call would time the capture, so every bucket gets
    an untimed warm-up call of its rows (here 5 + 5 + 2 rows, then 5 + 1: buckets 8, 2 and 1)."""
    from pargs.decoding.engine import Generation

    decoded = []

    def fake_generate(policy, tokenizer, prompts, method, seeds, max_new_tokens, path, **kw):
        decoded.append((len(prompts), max_new_tokens, path))
        return Generation([[5]] * len(prompts), ["x"] * len(prompts), ["eos"] * len(prompts))

    monkeypatch.setattr(decode_module, "choose_path", lambda *args: "graphs")
    monkeypatch.setattr(decode_module, "generate", fake_generate)
    module = DecodeModule(
        {"reference": ModelSpec(path=str(model_dirs["reference"]))},
        [DecodeMethod("s", kind="sample", top_k=10, samples=3)],
        eval_reward=RewardSpec(oracle=True),
        max_new_tokens=4,
        rows_per_call=5,
    )
    trainer = L.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, default_root_dir=tmp_path
    )
    trainer.predict(
        module,
        datamodule=PromptDataModule(str(synthetic_dir / "prompts_test.jsonl"), batch_size=4),
        return_predictions=False,
    )
    # batch 1: warm-up (8-row bucket), 5, 5, warm-up (2), 2; batch 2: 5 (warm already), warm-up (1), 1
    assert [rows for rows, _, _ in decoded] == [5, 5, 5, 2, 2, 5, 1, 1]
    assert {(tokens, path) for _, tokens, path in decoded} == {(4, "graphs")}
