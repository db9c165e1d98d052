"""The paper's recipes: each config's numbers as the appendix gives them, and each config run for real with tiny
stand-ins of its models (same architecture classes: GPT-2, Llama, Mistral, Gemma, Phi, DeBERTa-v2), no network.

A stand-in replaces every hub name and every ``runs/...`` model the config reads; the task's data files are
replaced by the tiny synthetic task's. Fit configs train two steps and export; predict configs decode two prompts
with every method. The classes the modules load are checked, so a config that would build the wrong model class
(a Phi RM loaded as a causal LM, say) fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from transformers import (
    DebertaV2Config,
    DebertaV2ForSequenceClassification,
    GemmaConfig,
    GemmaForCausalLM,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    PhiConfig,
    PhiForSequenceClassification,
)

from pargs.cli import main
from pargs.decoding.methods import DecodeMethod
from pargs.tasks.synthetic import vocabulary
from pargs.tasks.word_tokenizer import build_word_tokenizer
from tests.configs.test_configs import build
from tests.conftest import build_encoder_tokenizer

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "lightning_configs"
RECIPES = sorted(
    [
        *(CONFIGS / "decode").glob("*.yaml"),
        *(CONFIGS / "baselines").glob("dpo_*.yaml"),
        *(CONFIGS / "reward").glob("*deberta.yaml"),
        *(CONFIGS / "reward").glob("*phi15*.yaml"),
    ]
)
RECIPES = [p for p in RECIPES if p.name not in ("dpo_ddp.yaml", "dpo_fsdp2.yaml")]  # the quickstart's DPO variants

#: hub name -> (the stand-in's architecture, causal LM or reward model): the class the real checkpoint loads as
STAND_INS = {
    "vistagi/gpt2-large-tldr-sum": ("gpt2", "lm"),  # GPT2-large, SFT on TL;DR
    "meta-llama/Llama-2-7b-hf": ("llama", "lm"),
    "HuggingFaceH4/zephyr-7b-beta": ("mistral", "lm"),
    "google/gemma-2b": ("gemma", "lm"),
    "microsoft/phi-1_5": ("phi", "rm"),
    "OpenAssistant/reward-model-deberta-v3-large": ("deberta-v2", "rm"),
}
#: models a recipe reads from runs/ (another recipe's export) -> the architecture that recipe trains
RUN_MODELS = {
    "runs/tldr_deberta/rm_partial": "deberta-v2",
    "runs/hh_rlhf_deberta/rm_partial": "deberta-v2",
    "runs/ultrafeedback_phi15/rm_partial": "phi",
    "runs/ultrafeedback_phi15_full/rm_full": "phi",
    "runs/mt_post_edits_rm/rm_partial": "phi",  # no shipped recipe: the config suggests starting from the Phi one
    "runs/mt_post_edits_rm/rm_full": "phi",
}
LM_CLASSES = {
    "gpt2": GPT2LMHeadModel,
    "llama": LlamaForCausalLM,
    "mistral": MistralForCausalLM,
    "gemma": GemmaForCausalLM,
}
RM_CLASSES = {"phi": PhiForSequenceClassification, "deberta-v2": DebertaV2ForSequenceClassification}


def _tiny_config(family: str, tok):
    ids = {
        "vocab_size": len(tok),
        "pad_token_id": tok.pad_token_id,
        "eos_token_id": tok.eos_token_id,
        "bos_token_id": tok.eos_token_id,
        "num_labels": 1,
    }
    decoder = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "max_position_embeddings": 128,
        **ids,
    }
    if family == "gpt2":
        return GPT2Config(n_layer=2, n_embd=32, n_head=2, n_positions=128, **ids)
    if family == "llama":
        return LlamaConfig(num_key_value_heads=2, **decoder)
    if family == "mistral":
        return MistralConfig(num_key_value_heads=1, **decoder)
    if family == "gemma":
        return GemmaConfig(num_key_value_heads=1, head_dim=16, **decoder)
    if family == "phi":
        return PhiConfig(partial_rotary_factor=0.5, **decoder)
    if family == "deberta-v2":
        return DebertaV2Config(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=128,
            type_vocab_size=0,
            vocab_size=len(tok),
            pad_token_id=tok.pad_token_id,
            num_labels=1,
        )
    raise KeyError(family)


def _save_stand_in(path: Path, family: str, role: str) -> Path:
    tok = build_encoder_tokenizer() if family == "deberta-v2" else build_word_tokenizer(vocabulary())
    torch.manual_seed(0)
    cls = (RM_CLASSES if role == "rm" else LM_CLASSES)[family]
    cls(_tiny_config(family, tok)).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory) -> dict[str, Path]:
    """Hub name or runs/ path -> a tiny model directory of the same architecture class."""
    root = tmp_path_factory.mktemp("stand_ins")
    out = {name: _save_stand_in(root / name.replace("/", "--"), *spec) for name, spec in STAND_INS.items()}
    out.update(
        {name: _save_stand_in(root / name.replace("/", "--"), family, "rm") for name, family in RUN_MODELS.items()}
    )
    return out


def _local(path: Path, tmp: Path, stand_ins: dict[str, Path], synthetic_dir: Path) -> Path:
    """The config with its models replaced by stand-ins, its data by the synthetic task's, its outputs in tmp."""

    def swap(value, key=None):
        if isinstance(value, dict):
            return {k: swap(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        if isinstance(value, str) and value in stand_ins and key != "export_dir":  # a model the config reads
            return str(stand_ins[value])
        if isinstance(value, str) and value.startswith("runs/"):  # what the config writes
            return str(tmp / value)
        return value

    config = swap(yaml.safe_load(path.read_text()))
    data = config["data"]["init_args"]
    for key, name in (
        ("train_file", "pairs_train.jsonl"),
        ("val_file", "pairs_val.jsonl"),
        ("predict_file", "prompts_test.jsonl"),
    ):
        if key in data:
            data[key] = str(synthetic_dir / name)
    local = tmp / path.name
    local.write_text(yaml.safe_dump(config))
    return local


def test_every_model_a_recipe_reads_has_a_stand_in():
    assert RECIPES and {p.parent.name for p in RECIPES} == {"decode", "baselines", "reward"}
    for path in RECIPES:
        config = yaml.safe_load(path.read_text())
        names = {
            v
            for v in _strings(config)
            if "/" in v and not v.startswith(("runs/", "data/", "lightning.", "pargs.", "transformers."))
        }
        unknown = names - set(STAND_INS) - set(RUN_MODELS)
        assert not unknown, f"{path.name}: add a stand-in for {unknown}"
        runs = {v for v in _strings(config) if v.startswith("runs/") and v.endswith(("rm_partial", "rm_full"))}
        assert runs <= set(RUN_MODELS) | {config["model"]["init_args"].get("export_dir")}, path.name


def _strings(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def test_the_recipes_carry_the_papers_numbers():
    def load(rel):
        return yaml.safe_load((CONFIGS / rel).read_text())

    # prefix ratio (Table 15): 2x TL;DR, 1.5x HH; UltraFeedback's Phi RM is causal: the dense loss, every prefix
    assert load("reward/tldr_deberta.yaml")["data"]["init_args"]["prefix_rows"] == 2.0
    assert load("reward/hh_rlhf_deberta.yaml")["data"]["init_args"]["prefix_rows"] == 1.5
    for name, objective in (("ultrafeedback_phi15", "partial"), ("ultrafeedback_phi15_full", "full")):
        config = load(f"reward/{name}.yaml")
        assert config["model"]["init_args"]["model"]["path"] == "microsoft/phi-1_5"  # Table 7
        assert config["model"]["init_args"]["objective"] == objective
        assert config["data"]["init_args"]["prefix_rows"] is None
    assert not (CONFIGS / "reward" / "ultrafeedback_deberta.yaml").exists()
    for task in ("tldr", "hh_rlhf"):  # DPO (Table 8)
        init = load(f"baselines/dpo_{task}.yaml")["model"]["init_args"]
        assert (init["lora"]["r"], init["lora"]["alpha"], init["lr"]) == (16, 16, 5e-5)
    # decoding: each task's base LM and beta (Tables 6 and 7); the paper's methods with k = 10, N = 10
    expected = {
        "tldr": ("vistagi/gpt2-large-tldr-sum", 1.5),
        "hh_rlhf": ("meta-llama/Llama-2-7b-hf", 2.0),
        "ultrafeedback": ("HuggingFaceH4/zephyr-7b-beta", 1.0),
        "mt_post_edits": ("google/gemma-2b", 1.5),
    }
    assert {p.stem for p in (CONFIGS / "decode").glob("*.yaml")} == set(expected)
    for task, (policy, beta) in expected.items():
        init = load(f"decode/{task}.yaml")["model"]["init_args"]
        assert init["policies"]["reference"]["path"] == policy
        methods = {m.name: m for m in (DecodeMethod(**m) for m in init["methods"])}
        assert set(methods) == {"top-k", "best-of-10", "args", "pargs", "pargs-g"}
        assert {m.beta for m in methods.values() if m.kind == "guided"} == {beta}
        assert {m.k for m in methods.values() if m.kind == "guided"} == {10} and methods["best-of-10"].n == 10
    for path in RECIPES:  # every recipe names where its numbers come from
        assert "Table" in path.read_text() or "not given in the paper" in path.read_text(), path.name


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recipe_runs_with_tiny_stand_ins(path, tmp_path, stand_ins, synthetic_dir, capsys):
    local = _local(path, tmp_path, stand_ins, synthetic_dir)
    config = yaml.safe_load(path.read_text())
    command = path.read_text().split()[2]
    cpu = [
        "--trainer.accelerator=cpu",
        "--trainer.devices=1",
        "--trainer.precision=32-true",
        "--trainer.enable_progress_bar=false",
    ]
    if command == "fit":
        init = config["model"]["init_args"]
        family, role = STAND_INS[init["model"]["path"]]
        steps = [
            "--trainer.max_steps=2",
            "--trainer.accumulate_grad_batches=1",
            "--trainer.limit_train_batches=2",
            "--trainer.limit_val_batches=1",
            "--trainer.val_check_interval=1.0",
            "--trainer.logger=false",
        ]
        assert main(["fit", "-c", str(local), *cpu, *steps]) == 0
        exported = json.loads((tmp_path / init["export_dir"] / "config.json").read_text())
        expected = (RM_CLASSES if role == "rm" else LM_CLASSES)[family].__name__
        assert exported["architectures"] == [expected]
        return
    # predict: the module loads the stand-ins as the classes the real models load as, then decodes every method
    model = build(["predict", "-c", str(local), *cpu]).model
    model.configure_model()
    policy_family, _ = STAND_INS[config["model"]["init_args"]["policies"]["reference"]["path"]]
    assert type(model.policies["reference"]) is LM_CLASSES[policy_family]
    for name, spec in {
        **config["model"]["init_args"]["scorers"],
        "__eval__": config["model"]["init_args"]["eval_reward"],
    }.items():
        source = spec["model"]["path"]
        family = STAND_INS[source][0] if source in STAND_INS else RUN_MODELS[source]
        assert type(model.reward_models[name]) is RM_CLASSES[family], name
    assert (
        main(
            [
                "predict",
                "-c",
                str(local),
                *cpu,
                "--model.init_args.max_new_tokens=3",
                "--data.init_args.limit=2",
                "--data.init_args.batch_size=2",
            ]
        )
        == 0
    )
    out = tmp_path / config["trainer"]["callbacks"][0]["init_args"]["output_dir"]
    lines = [json.loads(x) for f in out.glob("*.jsonl") for x in f.read_text().splitlines()]
    assert sorted({r["method"] for r in lines}) == ["args", "best-of-10", "pargs", "pargs-g", "top-k"]
    assert all(isinstance(r["reward"], float) for r in lines) and len(lines) == 5 * 2
