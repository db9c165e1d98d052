"""A model or tokenizer path that cannot be loaded fails at once, as one line naming the config key and the
path, without the network: fit, predict (policies, scorers, eval reward), datamodules, judge,
prefix-agreement, sweep (issue 13, section 4)."""

from __future__ import annotations

import json
import os
import socket

import pytest
import yaml

from pargs.cli import main
from tests.helpers import fit_yaml, predict_yaml
from tests.subprocesses import run_pargs


@pytest.fixture
def no_network(monkeypatch):
    """Record (and refuse) every attempt to reach a host; the Hub is not in offline mode."""
    import huggingface_hub.constants

    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    return attempts


def _predict_config(tmp_path, policy, scorer, prompts, eval_reward=None):
    decode_args = {
        "policies": {"reference": {"path": str(policy)}},
        "scorers": {"rm": {"model": {"path": str(scorer)}}},
        "eval_reward": eval_reward or {"oracle": True},
        "max_new_tokens": 2,
        "methods": [{"name": "pargs", "kind": "guided", "k": 2, "scorer": "rm"}],
    }
    return predict_yaml(tmp_path, decode_args, {"predict_file": str(prompts), "limit": 1})


def _fit_config(tmp_path, module, model_args, tokenizer, train_file):
    data = {
        "class_path": "pargs.datamodules.PreferenceDataModule",
        "init_args": {"train_file": str(train_file), "tokenizer": str(tokenizer), "batch_size": 2},
    }
    path = fit_yaml(tmp_path, {"class_path": f"pargs.lit.{module}", "init_args": model_args}, data)
    return ["fit", "-c", str(path)]


def _one_line_error(rc, err, *needles):
    assert rc == 1, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in:\n{err}"
    return lines[0]


def test_predict_relative_policy_path_that_does_not_exist(tmp_path, monkeypatch, model_dirs, synthetic_dir):
    """The CLI run a user makes: `runs/reference` next to a `runs/` folder without it is a local path."""
    (tmp_path / "runs").mkdir()
    config = _predict_config(tmp_path, "runs/reference", model_dirs["rm"], synthetic_dir / "prompts_test.jsonl")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the code before this fix went to the Hub (80 s of retries) first
    result = run_pargs("predict", "-c", str(config), timeout=300)
    line = _one_line_error(
        result.returncode,
        result.stderr,
        "model.init_args.policies.reference.path",
        "'runs/reference' does not exist",
        str(tmp_path / "runs" / "reference"),
    )
    assert line.startswith("pargs: error: ")


def test_predict_checks_every_path_before_any_model_loads(
    tmp_path, monkeypatch, model_dirs, synthetic_dir, capsys, no_network
):
    import pargs.lit.decode

    loaded = []
    monkeypatch.setattr(pargs.lit.decode, "load_causal_lm", lambda *a, **k: loaded.append(a))
    monkeypatch.setattr(pargs.lit.decode, "load_tokenizer", lambda *a, **k: loaded.append(a))
    (tmp_path / "models").mkdir()
    monkeypatch.chdir(tmp_path)
    config = _predict_config(tmp_path, model_dirs["reference"], "models/rm", synthetic_dir / "prompts_test.jsonl")
    rc = main(["predict", "-c", str(config)])
    _one_line_error(rc, capsys.readouterr().err, "model.init_args.scorers.rm.model.path", "'models/rm'")
    assert loaded == []  # the policy (listed first) was not loaded
    assert no_network == []


def test_predict_eval_reward_path(tmp_path, model_dirs, synthetic_dir, capsys, no_network):
    missing = tmp_path / "nowhere" / "eval_rm"
    config = _predict_config(
        tmp_path,
        model_dirs["reference"],
        model_dirs["rm"],
        synthetic_dir / "prompts_test.jsonl",
        eval_reward={"model": {"path": str(missing)}},
    )
    rc = main(["predict", "-c", str(config)])
    _one_line_error(rc, capsys.readouterr().err, "model.init_args.eval_reward.model.path", str(missing))
    assert no_network == []


def test_fit_model_path(tmp_path, model_dirs, synthetic_dir, capsys, no_network):
    args = _fit_config(
        tmp_path,
        "RewardModule",
        {"model": {"path": "./reward-init"}},
        model_dirs["reference"],
        synthetic_dir / "pairs_val.jsonl",
    )
    _one_line_error(main(args), capsys.readouterr().err, "model.init_args.model.path", "'./reward-init' does not exist")
    assert no_network == []


def test_fit_model_tokenizer_path(tmp_path, model_dirs, synthetic_dir, capsys, no_network):
    spec = {"path": str(model_dirs["rm"]), "tokenizer": "~/no-such-tokenizer-dir"}
    args = _fit_config(
        tmp_path, "RewardModule", {"model": spec}, model_dirs["reference"], synthetic_dir / "pairs_val.jsonl"
    )
    _one_line_error(
        main(args),
        capsys.readouterr().err,
        "model.init_args.model.tokenizer",
        "'~/no-such-tokenizer-dir' does not exist",
    )
    assert no_network == []


def test_fit_dpo_reference_path(tmp_path, model_dirs, synthetic_dir, capsys, no_network):
    missing = str(tmp_path / "sft" / "export")
    args = _fit_config(
        tmp_path,
        "DPOModule",
        {"model": {"path": str(model_dirs["reference"])}, "reference": {"path": missing}},
        model_dirs["reference"],
        synthetic_dir / "pairs_val.jsonl",
    )
    _one_line_error(main(args), capsys.readouterr().err, "model.init_args.reference.path", missing)
    assert no_network == []


def test_datamodule_tokenizer_path(tmp_path, model_dirs, synthetic_dir, capsys, no_network):
    args = _fit_config(
        tmp_path,
        "RewardModule",
        {"model": {"path": str(model_dirs["rm"])}},
        "../tok/a/b",
        synthetic_dir / "pairs_val.jsonl",
    )
    _one_line_error(main(args), capsys.readouterr().err, "data.init_args.tokenizer", "'../tok/a/b' does not exist")
    assert no_network == []


def test_a_file_given_as_a_model_directory(tmp_path, model_dirs, synthetic_dir, capsys, no_network):
    args = _fit_config(
        tmp_path,
        "RewardModule",
        {"model": {"path": str(model_dirs["rm"] / "config.json")}},
        model_dirs["reference"],
        synthetic_dir / "pairs_val.jsonl",
    )
    _one_line_error(
        main(args), capsys.readouterr().err, "model.init_args.model.path", "is a file", "give the directory"
    )


def test_hub_name_not_cached_while_offline(tmp_path, monkeypatch, model_dirs, synthetic_dir, capsys):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = _predict_config(
        tmp_path,
        model_dirs["reference"],
        "OpenAssistant/reward-model-deberta-v3-large",
        synthetic_dir / "prompts_test.jsonl",
    )
    _one_line_error(
        main(["predict", "-c", str(config)]),
        capsys.readouterr().err,
        "model.init_args.scorers.rm.model.path",
        "'OpenAssistant/reward-model-deberta-v3-large'",
        "not in the local cache",
        "HF_HUB_OFFLINE",
    )


def test_hub_names_and_local_paths(tmp_path, monkeypatch):
    """Which strings are Hub names (looked up on the Hub) and which are local paths (must exist)."""
    import huggingface_hub
    import huggingface_hub.constants
    from huggingface_hub.errors import RepositoryNotFoundError

    from pargs.errors import ConfigError
    from pargs.models.loading import check_model_source, is_hub_name

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    for name in ("gpt2", "OpenAssistant/reward-model-deberta-v3-large", "meta-llama/Llama-3.1-8B", "owner/x.y_z"):
        assert is_hub_name(name), name
    for path in ("./gpt2", "/abs/model", "~/model", "a/b/c", "runs/rm", "../model", "model--v2", "name."):
        assert not is_hub_name(path), path
    # offline: a Hub name that is cached passes, one that is not fails, and the Hub is never asked
    cache = tmp_path / "hub-cache"
    (cache / "models--owner--cached" / "snapshots" / "abc123").mkdir(parents=True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    asked = []

    def model_info(repo_id, **kwargs):
        asked.append(repo_id)
        if repo_id == "owner/missing":
            raise RepositoryNotFoundError.__new__(RepositoryNotFoundError)
        if repo_id == "owner/unreachable":
            raise ConnectionError("no route to host")

    monkeypatch.setattr(huggingface_hub, "model_info", model_info)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    check_model_source("owner/cached", "key")
    with pytest.raises(ConfigError, match="^key: 'owner/uncached' is no local directory .* not in the local cache"):
        check_model_source("owner/uncached", "key")
    assert asked == []
    # online: one lookup, without the loader's minute of retries; a cached name needs none
    monkeypatch.delenv("HF_HUB_OFFLINE")
    check_model_source("owner/cached", "key")
    check_model_source("owner/uncached", "key")
    with pytest.raises(ConfigError, match="^key: 'owner/missing' .* the Hub has no such model"):
        check_model_source("owner/missing", "key")
    with pytest.raises(ConfigError, match="^key: 'owner/unreachable' .* cannot be reached .*no route to host"):
        check_model_source("owner/unreachable", "key")
    assert asked == ["owner/uncached", "owner/missing", "owner/unreachable"]
    # an existing local folder wins over a Hub name of the same spelling
    (tmp_path / "gpt2").mkdir()
    check_model_source("gpt2", "key")
    assert asked == ["owner/uncached", "owner/missing", "owner/unreachable"]


def test_prefix_agreement_checks_every_rm_first(tmp_path, model_dirs, synthetic_dir, capsys, monkeypatch, no_network):
    import pargs.models.loading

    loaded = []
    monkeypatch.setattr(pargs.models.loading, "load_reward_model", lambda *a, **k: loaded.append(a))
    missing = tmp_path / "rm-b"
    rc = main(
        [
            "prefix-agreement",
            "--pairs",
            str(synthetic_dir / "pairs_val.jsonl"),
            "--rm",
            str(model_dirs["rm"]),
            str(missing),
        ]
    )
    _one_line_error(rc, capsys.readouterr().err, "--rm", str(missing), "does not exist")
    assert loaded == []


def test_judge_model_path(tmp_path, capsys, no_network):
    preds = tmp_path / "run" / "predictions"
    preds.mkdir(parents=True)
    rows = [
        {
            "id": str(i),
            "prompt": "p",
            "response": f"r{m}",
            "reward": 0.0,
            "method": m,
            "sample": 0,
            "tokens": 1,
            "decode_seconds": 0.1,
        }
        for i in range(2)
        for m in ("pargs", "greedy")
    ]
    (preds / "predictions-rank0.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    rc = main(["judge", str(tmp_path / "run"), "--model", "./judges/lm"])
    _one_line_error(rc, capsys.readouterr().err, "--model", "'./judges/lm' does not exist")
    assert no_network == []
    # a relative path whose first folder is not here either reads as a Hub name: online, the Hub is asked once
    rc = main(["judge", str(tmp_path / "run"), "--model", "judges/lm"])
    _one_line_error(
        rc,
        capsys.readouterr().err,
        "--model: 'judges/lm' is no local directory",
        os.path.abspath("judges/lm"),
        "the Hub cannot be reached",
        "HF_HUB_OFFLINE=1",
    )
    assert 0 < len(no_network) <= 2  # one lookup (an address, then a connection), not a minute of retries


def test_sweep_policy_path(tmp_path, model_dirs, synthetic_dir, capsys, no_network):
    config = _predict_config(
        tmp_path, tmp_path / "missing-policy", model_dirs["rm"], synthetic_dir / "prompts_test.jsonl"
    )
    rc = main(["sweep", "-c", str(config), "--betas", "1.0", "--ks", "2", "--out", str(tmp_path / "sweep")])
    _one_line_error(
        rc, capsys.readouterr().err, "model.init_args.policies.reference.path", str(tmp_path / "missing-policy")
    )
    assert no_network == []


def test_a_missing_model_path_leaves_nothing_written(tmp_path, model_dirs, synthetic_dir, capsys, no_network):
    """Checked with the data files, before Lightning makes a run directory or writes config.yaml."""
    args = _fit_config(
        tmp_path,
        "RewardModule",
        {"model": {"path": "./reward-init"}},
        model_dirs["reference"],
        synthetic_dir / "pairs_val.jsonl",
    )
    cfg = yaml.safe_load(open(args[2]))
    cfg["trainer"].pop("logger")  # Lightning's default TensorBoard logger: lightning_logs/version_0
    (tmp_path / "fit.yaml").write_text(yaml.safe_dump(cfg))
    _one_line_error(main(args), capsys.readouterr().err, "model.init_args.model.path")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.yaml"]


def _policy_dir(path, tokenizer, remote_code: bool = False, pickle_extra: bool = False):
    """The tiny reference LM saved as a user might find one: with an ``auto_map`` to code of its own (and a model
    type transformers does not ship), or as a ``pytorch_model.bin`` pickle that holds a ``datetime.date``."""
    import datetime

    import torch

    from tests.conftest import make_lm

    model = make_lm(tokenizer)
    tokenizer.save_pretrained(path)
    if pickle_extra:
        model.config.save_pretrained(path)
        torch.save({**model.state_dict(), "saved_on": datetime.date(2024, 1, 1)}, path / "pytorch_model.bin")
        return path
    model.save_pretrained(path)
    if remote_code:
        config = json.loads((path / "config.json").read_text())
        classes = {"AutoConfig": "configuration_home.HomeConfig", "AutoModelForCausalLM": "modeling_home.HomeLM"}
        config.update(model_type="home_made", auto_map=classes)
        (path / "config.json").write_text(json.dumps(config))
    return path


def test_a_model_with_its_own_code_names_the_option_that_allows_it(
    tmp_path, tokenizer, model_dirs, synthetic_dir, capsys, no_network
):
    """Before: transformers' ValueError traceback ("Please pass the argument `trust_remote_code=True`")."""
    policy = _policy_dir(tmp_path / "home_made", tokenizer, remote_code=True)
    config = _predict_config(tmp_path, policy, model_dirs["rm"], synthetic_dir / "prompts_test.jsonl")
    rc = main(["predict", "-c", str(config)])
    line = _one_line_error(rc, capsys.readouterr().err)
    assert line == (
        f"pargs: error: model.init_args.policies.reference.path: {str(policy)!r} needs its own Python code to load "
        "(the auto_map of its config.json), which pargs runs only when told to: if you trust that code, set "
        "model.init_args.policies.reference.trust_remote_code: true; or use a model whose architecture transformers "
        "ships"
    )


def test_a_pickle_that_weights_only_refuses_names_the_file_and_the_conversion(
    tmp_path, tokenizer, model_dirs, synthetic_dir, capsys, no_network
):
    """Before: torch's UnpicklingError traceback, naming neither the file nor the config key."""
    policy = _policy_dir(tmp_path / "pickled", tokenizer, pickle_extra=True)
    config = _predict_config(tmp_path, policy, model_dirs["rm"], synthetic_dir / "prompts_test.jsonl")
    rc = main(["predict", "-c", str(config)])
    line = _one_line_error(rc, capsys.readouterr().err)
    assert line == (
        f"pargs: error: model.init_args.policies.reference.path: {policy / 'pytorch_model.bin'} holds Python objects "
        "besides tensors, which loading with weights_only refuses (unpickling them could run code); if you trust the "
        "file, convert it to safetensors once, e.g. "
        f"AutoModelForCausalLM.from_pretrained({str(policy)!r}, weights_only=False).save_pretrained(DIR) (DIR gets a "
        "model.safetensors), then give DIR"
    )
