"""Re-running ``pargs predict``: on a directory that already holds predictions it keeps a line only when this
config would write it (a changed method, model or prompt is refused, or decoded again on request; a second run
on the same directory is refused; a read-only directory is one line), and a variant needs no edited config
(``--predictions DIR``, ``--method NAME.FIELD=VALUE``, ``--on_change``). Runs are in-process
(``pargs.cli.main``, the console script's entry point) where a subprocess would add only its start-up time."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import stat
from pathlib import Path

import pytest
import yaml

from pargs.cli import main
from tests.conftest import make_lm, make_rm
from tests.subprocesses import run_pargs, start_pargs

METHODS = [
    {"name": "top-k", "kind": "sample", "top_k": 10},
    {"name": "pargs", "kind": "guided", "k": 4, "scorer": "rm"},
]


def _config(base: Path, reference: Path, callbacks=(), **init) -> Path:
    """A predict config of the two METHODS reading ``base/rm``, ``base/prompts.jsonl``, writing ``base/preds``."""
    writer = {"class_path": "pargs.lit.JsonlPredictionWriter", "init_args": {"output_dir": str(base / "preds")}}
    cfg = {
        "seed_everything": 0,
        "return_predictions": False,
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "logger": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "default_root_dir": str(base),
            "callbacks": [writer, *callbacks],
        },
        "model": {
            "class_path": "pargs.lit.DecodeModule",
            "init_args": {
                "policies": {"reference": {"path": str(reference)}},
                "scorers": {"rm": {"model": {"path": str(base / "rm")}}},
                "eval_reward": {"oracle": True},
                "max_new_tokens": 6,
                "methods": METHODS,
                **init,
            },
        },
        "data": {
            "class_path": "pargs.datamodules.PromptDataModule",
            "init_args": {"predict_file": str(base / "prompts.jsonl"), "batch_size": 3},
        },
    }
    path = base / "predict.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def first(tmp_path_factory, synthetic_dir, model_dirs):
    """A finished run of METHODS on the 6 test prompts: ``base`` with ``rm/``, ``prompts.jsonl``, ``preds/``."""
    base = tmp_path_factory.mktemp("first")
    shutil.copytree(model_dirs["rm"], base / "rm")
    shutil.copy(synthetic_dir / "prompts_test.jsonl", base / "prompts.jsonl")
    assert main(["predict", "-c", str(_config(base, model_dirs["reference"]))]) == 0
    assert len(_lines(base / "preds")) == 12
    return base


@pytest.fixture
def run(first, tmp_path, model_dirs):
    """A copy of the first run's directory and its config (which the test may change)."""
    base = tmp_path / "run"
    shutil.copytree(first, base)
    return base, _config(base, model_dirs["reference"])


def _lines(preds: Path) -> list[str]:
    return [line for p in sorted(preds.glob("predictions-rank*.jsonl")) for line in p.read_text().splitlines(True)]


def _by_method(preds: Path) -> dict[str, dict[tuple, dict]]:
    out: dict[str, dict] = {}
    for line in _lines(preds):
        rec = json.loads(line)
        rec.pop("decode_seconds")
        out.setdefault(rec["method"], {})[(rec["id"], rec["sample"])] = rec
    return out


def _predict(capsys, *args) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["predict", *args])
    return code, capsys.readouterr().err


REFUSAL = (
    "{preds} holds predictions made with other settings than this config's: {changes}. Resuming would count "
    "them as this config's: write to another directory (pargs predict --predictions DIR), keep both under "
    "another name (--method {method}.name=NEW_NAME) or decode them again here (--on_change restart removes "
    "these lines, and only these)"
)


def test_a_changed_beta_is_refused_before_decoding_through_the_cli(run):
    base, cfg = run
    before = _lines(base / "preds")
    proc = run_pargs("predict", "-c", str(cfg), "--method", "pargs.beta=3")
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1] == "pargs: error: " + REFUSAL.format(
        preds=base / "preds", changes="method 'pargs' (6 lines): beta 1.5 -> 3.0", method="pargs"
    )
    assert "Traceback" not in proc.stderr and "Loading weights" not in proc.stderr  # no model was loaded
    assert _lines(base / "preds") == before


def _other_weights(path: Path, tokenizer, build) -> None:
    """Replace the model in ``path`` by another one of the same shapes (a retrained model, same path)."""
    build(tokenizer, seed=7).save_pretrained(path)


@pytest.mark.parametrize(
    "change, args, expected",
    [
        ("k", ["--method", "pargs.k=3"], "method 'pargs' (6 lines): k 4 -> 3"),
        (
            "max_new_tokens",
            ["--model.init_args.max_new_tokens", "5"],
            "method 'top-k' (6 lines): max_new_tokens 6 -> 5; method 'pargs' (6 lines): max_new_tokens 6 -> 5",
        ),
        (
            "stop_strings",
            ["--model.init_args.stop_strings", "['.']"],
            "method 'top-k' (6 lines): stop_strings None -> ['.']; "
            "method 'pargs' (6 lines): stop_strings None -> ['.']",
        ),
        (
            "seed",
            ["--model.init_args.seed", "1"],
            "method 'top-k' (6 lines): seed 0 -> 1; method 'pargs' (6 lines): seed 0 -> 1",
        ),
        ("scorer weights", [], "method 'pargs' (6 lines): scorers.rm.model.files sha256:{old} -> sha256:{new}"),
    ],
)
def test_what_decides_a_line_is_compared(run, capsys, tokenizer, change, args, expected):
    base, cfg = run
    old = new = None
    if change == "scorer weights":
        recorded = json.loads((base / "preds" / "manifest.json").read_text())["methods"]["pargs"]["settings"]
        old = recorded["scorers.rm.model.files"].removeprefix("sha256:")[:12]
        _other_weights(base / "rm", tokenizer, make_rm)
    before = _lines(base / "preds")
    code, err = _predict(capsys, "-c", str(cfg), *args)
    if change == "scorer weights":
        settings = json.loads((base / "preds" / "manifest.json").read_text())["methods"]["pargs"]["settings"]
        assert settings["scorers.rm.model.files"].removeprefix("sha256:")[:12] == old  # the record is unchanged
        from pargs.models.identity import FileDigests

        new = FileDigests().directory(base / "rm").removeprefix("sha256:")[:12]
        assert new != old
    assert code == 1
    method = "pargs" if expected.startswith("method 'pargs'") else "top-k"
    assert err.strip().splitlines()[-1] == "pargs: error: " + REFUSAL.format(
        preds=base / "preds", changes=expected.format(old=old, new=new), method=method
    )
    assert _lines(base / "preds") == before


def test_a_new_policy_is_refused_but_a_moved_or_touched_model_resumes(run, capsys, tokenizer):
    base, cfg = run
    before = _lines(base / "preds")
    shutil.move(base / "rm", base / "rm-moved")  # same files elsewhere: the same model
    os.utime(base / "rm-moved" / "model.safetensors")  # touched: read again, same bytes
    code, err = _predict(capsys, "-c", str(cfg), "--model.init_args.scorers.rm.model.path", str(base / "rm-moved"))
    assert code == 0, err[-3000:]
    assert _lines(base / "preds") == before
    other = base / "policy"
    _other_weights(other, tokenizer, make_lm)
    tokenizer.save_pretrained(other)
    code, err = _predict(
        capsys,
        "-c",
        str(cfg),
        "--model.init_args.scorers.rm.model.path",
        str(base / "rm-moved"),
        "--model.init_args.policies.reference.path",
        str(other),
    )
    assert code == 1
    assert "method 'top-k' (6 lines): policies.reference.files sha256:" in err
    assert "method 'pargs' (6 lines): policies.reference.files sha256:" in err
    assert _lines(base / "preds") == before


def test_restart_decodes_the_changed_method_again_and_keeps_the_others(run, capsys, tmp_path):
    base, cfg = run
    old = _by_method(base / "preds")
    old_top_k = [line for line in _lines(base / "preds") if json.loads(line)["method"] == "top-k"]
    code, err = _predict(capsys, "-c", str(cfg), "--method", "pargs.beta=0", "--on_change", "restart")
    assert code == 0, err[-3000:]
    assert "on_change restart: removed the 6 lines of method 'pargs' (beta 1.5 -> 0.0); it is decoded again" in err
    # an independent run of the changed config in an empty directory (beta 0: the reward no longer steers, so its
    # lines differ from beta 1.5's)
    fresh = tmp_path / "fresh"
    code, err = _predict(capsys, "-c", str(cfg), "--method", "pargs.beta=0", "--predictions", str(fresh))
    assert code == 0, err[-3000:]
    restarted, independent = _by_method(base / "preds"), _by_method(fresh)
    for key, rec in restarted["pargs"].items():
        assert rec == independent["pargs"][key], key
    assert restarted["pargs"].keys() == independent["pargs"].keys()
    assert restarted["pargs"] != old["pargs"]
    assert [line for line in _lines(base / "preds") if json.loads(line)["method"] == "top-k"] == old_top_k
    assert json.loads((base / "preds" / "manifest.json").read_text())["methods"]["pargs"]["settings"]["beta"] == 0.0
    # the new record binds: the same change resumes (nothing new), the old beta is refused now
    code, err = _predict(capsys, "-c", str(cfg), "--method", "pargs.beta=0")
    assert code == 0 and len(_lines(base / "preds")) == 12
    code, err = _predict(capsys, "-c", str(cfg))
    assert code == 1 and "method 'pargs' (6 lines): beta 0.0 -> 1.5" in err


def test_a_renamed_variant_runs_next_to_the_old_lines_which_are_kept(run, capsys):
    base, cfg = run
    old = _by_method(base / "preds")
    code, err = _predict(capsys, "-c", str(cfg), "--method", "pargs.name=pargs-b3", "--method", "pargs.beta=3")
    assert code == 0, err[-3000:]
    now = _by_method(base / "preds")
    assert now["pargs"] == old["pargs"] and now["top-k"] == old["top-k"] and len(now["pargs-b3"]) == 6
    assert f"{base / 'preds'}: the lines of 'pargs' (6) (not in this config) are kept as they are, not checked" in err
    recorded = json.loads((base / "preds" / "manifest.json").read_text())["methods"]
    assert recorded["pargs"]["settings"]["beta"] == 1.5 and recorded["pargs-b3"]["settings"]["beta"] == 3.0


def test_lines_without_a_record_are_refused_until_adopted(run, capsys):
    base, cfg = run
    (base / "preds" / "manifest.json").unlink()  # a directory written before pargs kept a record
    before = _lines(base / "preds")
    code, err = _predict(capsys, "-c", str(cfg))
    assert code == 1
    assert err.strip().splitlines()[-1] == (
        f"pargs: error: {base / 'preds'} holds predictions with no record of the settings that made them (no "
        "manifest.json: written before pargs kept one): method 'top-k' (6 lines), method 'pargs' (6 lines). Resuming "
        "would count them as this config's: write to another directory (pargs predict --predictions DIR), decode "
        "them again here (--on_change restart removes these lines, and only these) or if this config made the "
        "unrecorded lines, keep them (--on_change adopt)"
    )
    code, err = _predict(capsys, "-c", str(cfg), "--on_change", "adopt")
    assert code == 0, err[-3000:]
    assert _lines(base / "preds") == before
    code, err = _predict(capsys, "-c", str(cfg), "--method", "pargs.beta=3")
    assert code == 1 and "beta 1.5 -> 3.0" in err


def test_an_edited_prompt_is_refused_and_a_smaller_limit_resumes(run, capsys):
    base, cfg = run
    before = _lines(base / "preds")
    code, err = _predict(capsys, "-c", str(cfg), "--data.init_args.limit", "3")
    assert code == 0 and _lines(base / "preds") == before  # fewer prompts: every line still holds
    prompts = [json.loads(x) for x in (base / "prompts.jsonl").read_text().splitlines()]
    prompts[1]["prompt"] = prompts[0]["prompt"]  # another prompt the task's oracle knows
    (base / "prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in prompts))
    code, err = _predict(capsys, "-c", str(cfg))
    assert code == 1
    assert (
        f"{base / 'preds'} holds 2 lines decoded from another prompt or other references than "
        f"{base / 'prompts.jsonl'} holds now for their id (ids {prompts[1]['id']!r})"
    ) in err
    assert _lines(base / "preds") == before
    code, err = _predict(capsys, "-c", str(cfg), "--on_change", "restart")
    assert code == 0, err[-3000:]
    now = _by_method(base / "preds")
    assert all(len(v) == 6 for v in now.values())
    assert {r["prompt"] for m in now.values() for (i, _), r in m.items() if i == prompts[1]["id"]} == {
        prompts[1]["prompt"]
    }


def test_a_second_run_on_the_same_directory_is_refused(tmp_path, synthetic_dir, model_dirs, capsys):
    shutil.copytree(model_dirs["rm"], tmp_path / "rm")
    shutil.copy(synthetic_dir / "prompts_test.jsonl", tmp_path / "prompts.jsonl")
    go = tmp_path / "go"
    os.mkfifo(go)
    paused = _config(
        tmp_path,
        model_dirs["reference"],
        callbacks=[{"class_path": "tests.helpers.PauseDuringPredict", "init_args": {"go": str(go)}}],
    ).rename(tmp_path / "a.yaml")
    first = start_pargs("predict", "-c", str(paused))
    try:
        seen = []
        for line in first.stderr:  # up to the first batch: it holds the lock and has written nothing yet
            seen.append(line)
            if line.strip() == "PAUSED":
                break
        else:
            raise AssertionError("the first run ended before its first batch:\n" + "".join(seen)[-3000:])
        code, err = _predict(capsys, "-c", str(_config(tmp_path, model_dirs["reference"])))
        assert code == 1
        last = err.strip().splitlines()[-1]
        assert last.startswith(
            f"pargs: error: predictions directory {tmp_path / 'preds'} is in use by another pargs "
            f"predict (pid {first.pid} on host "
        )
        assert last.endswith(
            f"; lock {tmp_path / 'preds' / 'predict.lock'}): wait for it to finish, or write to "
            "another directory (pargs predict --predictions DIR)"
        )
        with open(go, "w") as fh:
            fh.write("go")
        out, rest = first.communicate(timeout=600)
        assert first.returncode == 0, rest[-3000:]
    finally:
        if first.poll() is None:
            first.kill()
    lines = [json.loads(x) for x in _lines(tmp_path / "preds")]
    assert len(lines) == 12 and len({(r["id"], r["method"], r["sample"]) for r in lines}) == 12


def _no_root_override() -> None:
    """In the child: drop root's right to write where the permissions say no (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
    leave the bounding set, so the program exec'd next does not get them)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _can_drop_capabilities() -> bool:
    status = Path("/proc/self/status")
    if not status.exists():
        return False
    effective = next(int(line.split()[1], 16) for line in status.read_text().splitlines() if line.startswith("CapEff"))
    return bool(effective & (1 << 8))  # CAP_SETPCAP


@pytest.mark.skipif(
    os.geteuid() == 0 and not _can_drop_capabilities(),
    reason="root without CAP_SETPCAP writes into read-only directories",
)
def test_a_read_only_directory_is_one_line_before_any_model_loads(run):
    base, cfg = run
    preds = base / "preds"
    modes = {p: p.stat().st_mode for p in [preds, *preds.iterdir()]}
    for p in modes:
        p.chmod(stat.S_IMODE(modes[p]) & ~0o222)
    try:
        proc = run_pargs("predict", "-c", str(cfg), preexec_fn=_no_root_override if os.geteuid() == 0 else None)
    finally:
        for p, mode in modes.items():
            p.chmod(stat.S_IMODE(mode))
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        f"pargs: error: cannot write to predictions directory {preds}: Permission denied ({preds / 'predict.lock'}); "
        "make it writable, or write to another directory (pargs predict --predictions DIR)"
    )
    assert "Traceback" not in proc.stderr and "Loading weights" not in proc.stderr


@pytest.mark.parametrize(
    "option, message",
    [
        ("nope.beta=3", "--method nope.beta=3: the config has no method named 'nope'; its methods: top-k, pargs"),
        (
            "pargs.bta=3",
            "--method pargs.bta=3: a method has no field 'bta'; its fields: beta, greedy, k, kind, n, name, "
            "noise_key, policy, preset, samples, scorer, temperature, top_k, top_p",
        ),
        ("pargs.k=many", "--method pargs.k=many: k must be an integer, got 'many'"),
        ("pargs.greedy=2", "--method pargs.greedy=2: greedy must be true or false, got '2'"),
        ("pargs", "--method pargs: write NAME.FIELD=VALUE, e.g. --method pargs.beta=3"),
    ],
)
def test_a_bad_method_option_is_one_line(tmp_path, model_dirs, capsys, option, message):
    code, err = _predict(capsys, "-c", str(_config(tmp_path, model_dirs["reference"])), "--method", option)
    assert code == 1 and err.strip().splitlines()[-1] == "pargs: error: " + message
    assert not (tmp_path / "preds").exists()


def test_predictions_needs_the_writer_callback(tmp_path, model_dirs, capsys):
    cfg = _config(tmp_path, model_dirs["reference"])
    code, err = _predict(capsys, "-c", str(cfg), "--trainer.callbacks=[]", "--predictions", str(tmp_path / "x"))
    assert code == 1 and err.strip().splitlines()[-1] == (
        "pargs: error: --predictions sets the pargs.lit.JsonlPredictionWriter callback of trainer.callbacks, but the "
        "config has none"
    )


def test_a_preset_method_is_found_by_its_preset_name(run, capsys, model_dirs):
    """``{preset: pargs, k: 4, scorer: rm}`` builds the same method as the first run's ``pargs``: it resumes; its
    beta set from the command line is the one compared."""
    base, _ = run
    methods = [METHODS[0], {"preset": "pargs", "k": 4, "scorer": "rm"}]
    cfg = _config(base, model_dirs["reference"], methods=methods)
    before = _lines(base / "preds")
    code, err = _predict(capsys, "-c", str(cfg))
    assert code == 0, err[-3000:]
    assert _lines(base / "preds") == before
    code, err = _predict(capsys, "-c", str(cfg), "--method", "pargs.beta=2", "--method", "top-k.top_k=5")
    assert code == 1
    assert ": method 'top-k' (6 lines): top_k 10 -> 5; method 'pargs' (6 lines): beta 1.5 -> 2.0. " in err


def test_a_new_directory_reuses_the_lines_whose_settings_are_unchanged_and_decodes_the_rest(run, capsys):
    base, cfg = run
    first = _by_method(base / "preds")
    # beta 1000: the untrained RM's rewards differ little between candidates; a large beta makes them decide
    code, err = _predict(capsys, "-c", str(cfg), "--method", "pargs.beta=1000", "--predictions", str(base / "beta3"))
    assert code == 0, err[-3000:]
    assert f"reused from {base / 'preds'} (same settings): 'top-k' (6 lines); decoded here: 'pargs'" in err
    now = _by_method(base / "beta3")
    assert now["top-k"] == first["top-k"]  # copied, timing included
    assert now["pargs"].keys() == first["pargs"].keys() and now["pargs"] != first["pargs"]  # decoded anew
    manifest = json.loads((base / "beta3" / "manifest.json").read_text())
    assert manifest["methods"]["pargs"]["settings"]["beta"] == 1000.0
    assert (
        manifest["methods"]["top-k"]["settings"]
        == json.loads((base / "preds" / "manifest.json").read_text())["methods"]["top-k"]["settings"]
    )
    # --reuse_from none decodes everything, and gives the same lines (the noise of a row is a function of its key)
    code, err = _predict(
        capsys,
        "-c",
        str(cfg),
        "--method",
        "pargs.beta=1000",
        "--predictions",
        str(base / "all"),
        "--reuse_from",
        "none",
    )
    assert code == 0 and "reused from" not in err, err[-3000:]
    again = _by_method(base / "all")
    assert again.keys() == now.keys() and [r["response"] for r in again["top-k"].values()] == [
        r["response"] for r in now["top-k"].values()
    ]


def test_variants_of_a_preset_share_the_noise_and_other_keys_do_not(tmp_path, synthetic_dir, model_dirs, capsys):
    """A renamed copy of a preset draws the same tokens (common random numbers, so a beta comparison is paired);
    a method without a preset, or with another noise_key, draws other noise."""
    shutil.copytree(model_dirs["rm"], tmp_path / "rm")
    shutil.copy(synthetic_dir / "prompts_test.jsonl", tmp_path / "prompts.jsonl")
    methods = [
        {"preset": "pargs", "scorer": "rm"},
        {"preset": "pargs", "name": "pargs-copy", "scorer": "rm"},
        {"preset": "pargs", "name": "pargs-other", "scorer": "rm", "noise_key": "other"},
        {"name": "no-preset", "kind": "guided", "k": 10, "beta": 1.5, "scorer": "rm"},
    ]
    cfg = _config(tmp_path, model_dirs["reference"], methods=methods)
    code, err = _predict(capsys, "-c", str(cfg))
    assert code == 0, err[-3000:]
    got = {m: [r["response"] for _, r in sorted(v.items())] for m, v in _by_method(tmp_path / "preds").items()}
    seeds = {m: [r["seed"] for _, r in sorted(v.items())] for m, v in _by_method(tmp_path / "preds").items()}
    assert got["pargs-copy"] == got["pargs"] and seeds["pargs-copy"] == seeds["pargs"]
    for other in ("pargs-other", "no-preset"):  # the same distribution, other noise: some row differs
        assert not set(seeds[other]) & set(seeds["pargs"]) and got[other] != got["pargs"], other


def test_a_manifest_of_format_1_keeps_its_lines(run, capsys):
    """Format 1 seeded each row from the method's name: read back, that is the method's noise key."""
    base, cfg = run
    path = base / "preds" / "manifest.json"
    manifest = json.loads(path.read_text())
    for entry in manifest["methods"].values():
        del entry["settings"]["noise_key"]
    path.write_text(json.dumps(dict(manifest, format=1)))
    before = _lines(base / "preds")
    code, err = _predict(capsys, "-c", str(cfg))
    assert code == 0, err[-3000:]
    assert _lines(base / "preds") == before


def test_prompts_removed_from_the_file_are_set_aside_by_predict_and_report(run, capsys):
    base, cfg = run
    prompts = (base / "prompts.jsonl").read_text().splitlines(True)
    gone = json.loads(prompts[4])["id"]
    (base / "prompts.jsonl").write_text("".join(prompts[:4] + prompts[5:]))
    before = _lines(base / "preds")
    code, err = _predict(capsys, "-c", str(cfg))
    assert code == 0, err[-3000:]
    assert f"set aside 2 lines of 1 prompts that {base / 'prompts.jsonl'} no longer holds (ids {gone!r})" in err
    assert _lines(base / "preds") == before  # kept in the files
    capsys.readouterr()
    assert main(["report", str(base / "preds"), "--out", str(base / "report")]) == 0
    table = (base / "report" / "results.md").read_text()
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in table.splitlines() if line.startswith("| ")}
    assert rows["top-k"][1] == "5" and rows["pargs"][1] == "5"  # 5 prompts, not 6
    assert "set aside 2 prediction lines of 1 prompts that the prompt file of their last pargs predict" in table
