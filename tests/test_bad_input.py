"""Every bad input gets one clear message and a non-zero exit, never a traceback from inside a library.

Each case runs the real command line (``pargs.cli.main``) on a config that is wrong in one way.
"""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
import yaml
from transformers import GPT2Config, GPT2ForSequenceClassification

from pargs.cli import main
from pargs.tasks.word_tokenizer import build_word_tokenizer
from tests.helpers import fit_yaml, predict_yaml


def _fit(tmp_path, model_dirs, train_file, **data_args):
    model = {"class_path": "pargs.lit.RewardModule", "init_args": {"model": {"path": str(model_dirs["reference"])}}}
    data = {
        "class_path": "pargs.datamodules.PreferenceDataModule",
        "init_args": {"train_file": str(train_file), "tokenizer": str(model_dirs["reference"]), **data_args},
    }
    return ["fit", "-c", str(fit_yaml(tmp_path, model, data))]


def _predict(tmp_path, model_dirs, prompts_file, methods=None, scorer_dir=None, **module_args):
    decode_args = {
        "policies": {"reference": {"path": str(model_dirs["reference"])}},
        "scorers": {"rm": {"model": {"path": str(scorer_dir or model_dirs["rm"])}}},
        "eval_reward": {"oracle": True},
        "max_new_tokens": 4,
        "methods": methods or [{"name": "pargs", "kind": "guided", "k": 3, "scorer": "rm"}],
        **module_args,
    }
    return ["predict", "-c", str(predict_yaml(tmp_path, decode_args, {"predict_file": str(prompts_file)}))]


def _fails(args, capsys, *needles, code=1):
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == code, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, f"{needle!r} not in:\n{err}"
    return err


GOOD = {
    "id": "a",
    "prompt": "write a review of the zoo about the shop :",
    "chosen": "the shop was good .",
    "rejected": "it was bad .",
}


@pytest.mark.parametrize(
    "line,needles",
    [
        ('{"id": "b", "prompt": "p", "chosen": "c", "rejected": ', ["line 2", "not valid JSON"]),
        ('{"id": "b", "prompt": "p", "chosen": "c"}', ["line 2", "field 'rejected' is missing"]),
        (
            '{"id": "b", "prompt": ["p"], "chosen": "c", "rejected": "r"}',
            ["line 2", "field 'prompt' must be str, got list"],
        ),
        (
            '{"id": "b", "prompt": "p", "chosen": "", "rejected": "r"}',
            ["line 2", "field 'chosen' empty response", "drop_unusable"],
        ),
        ('{"id": "b", "prompt": "p", "chosen": "same", "rejected": "same"}', ["line 2", "identical to chosen"]),
        (b'{"id": "b", "prompt": "caf\xe9", "chosen": "c", "rejected": "r"}', ["line 2", "not valid UTF-8"]),
    ],
)
def test_bad_training_records(tmp_path, model_dirs, capsys, line, needles):
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b"\n" + (line if isinstance(line, bytes) else line.encode()) + b"\n")
    _fails(_fit(tmp_path, model_dirs, path), capsys, str(path), *needles)


def test_sequences_longer_than_the_model(tmp_path, model_dirs, capsys):
    path = tmp_path / "pairs.jsonl"
    long = " ".join(["the shop was good and"] * 30) + " ."
    path.write_text(json.dumps(dict(GOOD, chosen=long)) + "\n")
    _fails(
        _fit(tmp_path, model_dirs, path, max_length=None),
        capsys,
        f"{path}, line 1: field 'chosen' (id 'a') makes a sequence (prompt + response) of",
        "positions",
        "max_length to at most 96",
    )


def test_unknown_config_key(tmp_path, model_dirs, capsys, synthetic_dir):
    args = _predict(tmp_path, model_dirs, synthetic_dir / "prompts_test.jsonl", max_new_tokenz=3)
    _fails(args, capsys, "invalid configuration", "max_new_tokenz", code=2)


@pytest.mark.parametrize("beta", [-1.0, math.inf, math.nan])
def test_beta_negative_or_not_finite(tmp_path, model_dirs, capsys, synthetic_dir, beta):
    methods = [{"name": "pargs", "kind": "guided", "k": 3, "beta": beta, "scorer": "rm"}]
    _fails(
        _predict(tmp_path, model_dirs, synthetic_dir / "prompts_test.jsonl", methods),
        capsys,
        "decoding method 'pargs': beta must be a finite number >= 0",
    )


@pytest.mark.parametrize(
    "method",
    [
        {"name": "pargs", "kind": "guided", "k": 3, "weight": 2.0, "scorer": "rm"},
        {"preset": "pargs", "scorer": "rm", "weight": 2.0},
    ],
)
def test_the_old_name_weight_says_it_is_now_beta(tmp_path, model_dirs, capsys, synthetic_dir, method):
    _fails(
        _predict(tmp_path, model_dirs, synthetic_dir / "prompts_test.jsonl", [method]),
        capsys,
        "decoding method 'pargs': `weight` was renamed to `beta`; write beta: 2.0",
    )


def test_k_larger_than_the_vocabulary(tmp_path, model_dirs, capsys, synthetic_dir):
    methods = [{"name": "pargs", "kind": "guided", "k": 100_000, "scorer": "rm"}]
    _fails(
        _predict(tmp_path, model_dirs, synthetic_dir / "prompts_test.jsonl", methods),
        capsys,
        "k=100000 is larger than the vocabulary",
    )


def test_prompt_longer_than_the_context(tmp_path, model_dirs, capsys):
    path = tmp_path / "prompts.jsonl"
    path.write_text(
        json.dumps({"id": "ok", "prompt": "write a review of the zoo about the shop :"})
        + "\n"
        + json.dumps({"id": "long", "prompt": " ".join(["write"] * 200)})
        + "\n"
    )
    _fails(_predict(tmp_path, model_dirs, path), capsys, f"{path}, line 2: field 'prompt' (id 'long') has 200 tokens")
    assert not (tmp_path / "preds" / "predictions-rank0.jsonl").read_text()  # nothing half-done is presented


def test_reward_model_with_two_outputs(tmp_path, model_dirs, capsys, synthetic_dir, tokenizer):
    two = tmp_path / "two_label_rm"
    cfg = GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=len(tokenizer), num_labels=2, pad_token_id=0)
    GPT2ForSequenceClassification(cfg).save_pretrained(two)
    tokenizer.save_pretrained(two)
    _fails(
        _predict(tmp_path, model_dirs, synthetic_dir / "prompts_test.jsonl", scorer_dir=two),
        capsys,
        "has 2 outputs; a reward model needs exactly one",
    )


def test_tokenizer_that_does_not_match_the_model(tmp_path, model_dirs, capsys, synthetic_dir):
    mismatched = tmp_path / "rm_with_a_bigger_tokenizer"
    shutil.copytree(model_dirs["rm"], mismatched)
    build_word_tokenizer([f"w{i}" for i in range(500)]).save_pretrained(mismatched)
    _fails(
        _predict(tmp_path, model_dirs, synthetic_dir / "prompts_test.jsonl", scorer_dir=mismatched),
        capsys,
        "has 503 tokens but model",
        "they do not belong together",
    )


def test_checkpoints_load_with_weights_only(tmp_path, model_dirs, synthetic_dir):
    args = _fit(tmp_path, model_dirs, synthetic_dir / "pairs_train.jsonl")
    cfg = yaml.safe_load(open(args[2]))
    cfg["trainer"]["enable_checkpointing"] = True
    open(args[2], "w").write(yaml.safe_dump(cfg))
    assert main(args) == 0
    (ckpt,) = list(tmp_path.rglob("*.ckpt"))
    state = torch.load(ckpt, weights_only=True)  # plain data only: no pickled classes to trust
    assert state["hyper_parameters"]["model"]["path"] == str(model_dirs["reference"])
    assert "pargs_rng_state" in state


@pytest.mark.parametrize("extra,expected", [([], True), (["--weights_only", "false"], False)])
def test_lightning_commands_load_checkpoints_with_weights_only_by_default(
    tmp_path, model_dirs, synthetic_dir, capsys, extra, expected
):
    """Lightning leaves ``weights_only`` unset (False for a checkpoint URL); pargs sets it unless told otherwise."""
    with pytest.raises(SystemExit) as exit_info:
        main([*_fit(tmp_path, model_dirs, synthetic_dir / "pairs_train.jsonl"), *extra, "--print_config"])
    assert exit_info.value.code in (0, None)
    assert yaml.safe_load(capsys.readouterr().out)["weights_only"] is expected


@pytest.mark.parametrize(("key", "name"), [("policies", "ref.v2"), ("scorers", "rows-1.5x"), ("scorers", "")])
def test_a_model_name_torch_cannot_hold_is_one_clear_error(key, name):
    """Policy and scorer names key torch ModuleDicts, which refuse a dot: say so before anything loads."""
    from pargs.decoding.build import RewardSpec
    from pargs.decoding.methods import preset
    from pargs.errors import ConfigError
    from pargs.lit.decode import DecodeModule
    from pargs.models.loading import ModelSpec

    policies = {"ref.v2" if key == "policies" else "reference": ModelSpec(path="nowhere")}
    scorers = {name if key == "scorers" else "rm": RewardSpec(oracle=True)}
    with pytest.raises(ConfigError) as err:
        DecodeModule(policies, [preset("top-k")], scorers=scorers)
    assert str(err.value).startswith(f"model.init_args.{key}: the name {name!r} cannot name a model")
