"""The steps of one seed of a study, and running them under the ledger's rule (:mod:`pargs.study.ledger`).

A seed's directory ``<out>/seed-<s>/`` is laid out like a quickstart run (``data/``, ``configs/``,
``models/``, ``checkpoints/``, ``tensorboard/``, ``predictions/<step>/``) plus ``steps/`` (the records),
``tuning.json``, ``ground_truth.json`` and ``decisions.csv.gz``. The seed s is the data's seed, every
``seed_everything`` and every datamodule's and decoder's seed, so each seed redraws the synthetic data, the
model initialisations and the decoding noise.

Main steps, in order: ``data`` (with validation prompts), ``sft``, ``reward_partial``, ``reward_full``,
``dpo-<i>`` (one per DPO grid point), ``value_rollouts``, ``value`` (CD-FUDGE), ``ppo-<i>`` (one per KL
coefficient), ``tune`` (every grid value decoded on the validation prompts, then the choice),
``test`` (every method on the test prompts, tuned and at the paper's beta), ``ground_truth`` (the Monte
Carlo ground truth of prefix preferences and both RMs' agreement with it), ``decisions`` (decision-level
evidence: the Monte Carlo values of the candidates of decoding states, and every scorer's ranking of them,
:mod:`pargs.study.decisions`). Ablation steps:
``ablation-<r>x`` (a materialised-prefix RM per prefix_rows ratio r) and ``ablation_decode``.

Lightning steps copy a shipped config (:mod:`pargs.commands.steps`, as the quickstart does) and run
it through LightningCLI; ``configs/<step>.yaml`` re-runs one by hand.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pargs.commands import signals
from pargs.commands.steps import quiet_steps, run_config, step_config, write_config
from pargs.errors import ConfigError
from pargs.study import decisions
from pargs.study.grids import FIXED_BETA, GUIDED, SELECTION, beta_name, ratio_name
from pargs.study.ledger import Ledger
from pargs.study.plan import StudyPlan

log = logging.getLogger(__name__)

GREEDY = {"pargs-g", "args", "greedy"}  #: presets that decode one deterministic response per prompt


@dataclass
class Step:
    """One step of a seed: what it reads, the config it would run now, and how to run it."""

    name: str
    needs: tuple[str, ...]  #: steps whose outputs it reads (their fingerprints are its inputs)
    build: Callable[[], dict]  #: the config that would run now (called once the needs are done)
    run: Callable[[dict], None]  #: runs the step with that config
    outputs: tuple[str, ...] = ()  #: paths under the seed directory it writes (removed before a fresh run)
    trains: bool = False  #: trains a model (``--reuse`` never does)
    family: str = field(default="")  #: step family for timing tables (``dpo`` for ``dpo-0`` ...)

    def __post_init__(self) -> None:
        self.family = self.family or self.name


class SeedRun:
    """The steps of one seed."""

    def __init__(self, out: Path, seed: int, plan: StudyPlan) -> None:
        self.dir = Path(out).resolve() / f"seed-{seed}"
        self.seed, self.plan = seed, plan
        self.ledger = Ledger(self.dir, seed)

    # ------------------------------------------------------------------ helpers
    def path(self, *parts: str) -> str:
        return str(self.dir.joinpath(*parts))

    def _trainer(self, family: str) -> dict:
        over = {"trainer.enable_progress_bar": False, "trainer.enable_model_summary": False}
        over.update(self.plan.trainer.get("all", {}))
        over.update(self.plan.trainer.get(family, {}))
        return over

    def _fit(
        self,
        name: str,
        source: str,
        budget: str,
        overrides: dict,
        needs: tuple[str, ...],
        export: str,
        family: str = "",
    ) -> Step:
        """A training step from a shipped config, writing ``models/<export>``, ``checkpoints/<name>`` and
        ``tensorboard/<name>``; ``budget`` names its entry of the plan's epochs and trainer overrides."""
        over = {
            "trainer.max_epochs": self.plan.epochs[budget],
            "data.init_args.seed": self.seed,
            **self._trainer(budget),
            "model.init_args.export_dir": self.path("models", export),
            "trainer.callbacks.0.init_args.dirpath": self.path("checkpoints", name),
            "trainer.logger.init_args.name": name,
            **overrides,
        }
        outputs = (f"checkpoints/{name}", f"tensorboard/{name}", f"configs/{name}.yaml", f"models/{export}")

        def build() -> dict:
            return step_config(source, self.dir, self.seed, over)

        def run(cfg: dict) -> None:
            run_config("fit", write_config(cfg, self.dir / "configs" / f"{name}.yaml", "fit", source, "pargs study"))

        return Step(name, needs, build, run, outputs, trains=True, family=family or name)

    def _predict(
        self,
        name: str,
        needs: tuple[str, ...],
        overrides: Callable[[], dict],
        then: Callable[[dict], None] | None = None,
        family: str = "",
    ) -> Step:
        """A decoding step: predict_all.yaml with the methods, policies and prompts of ``overrides()``."""
        source = "quickstart/predict_all"

        def build() -> dict:
            over = {
                "trainer.callbacks.0.init_args.output_dir": self.path("predictions", name),
                "trainer.enable_progress_bar": False,
                "model.init_args.seed": self.seed,
                **overrides(),
            }
            return step_config(source, self.dir, self.seed, over)

        def run(cfg: dict) -> None:
            run_config(
                "predict", write_config(cfg, self.dir / "configs" / f"{name}.yaml", "predict", source, "pargs study")
            )
            if then is not None:
                then(cfg)

        outputs = (f"predictions/{name}", f"configs/{name}.yaml")
        return Step(name, needs, build, run, outputs, family=family or name)

    def _methods(self, samples: int) -> Callable[[str, dict], dict]:
        def method(preset: str, extra: dict) -> dict:
            return {"preset": preset, **extra, "samples": 1 if preset in GREEDY else samples}

        return method

    # ------------------------------------------------------------------ steps
    def dpo_names(self) -> list[str]:
        return [f"dpo-{i}" for i in range(len(self.plan.dpo_grid))]

    def ppo_names(self) -> list[str]:
        return [f"ppo-{i}" for i in range(len(self.plan.ppo_kl))]

    def steps(self) -> list[Step]:
        """The main steps of this seed, in order."""
        plan, s = self.plan, self.seed
        steps = [Step("data", (), self._data_config, self._data, ("data",))]
        steps.append(self._fit("sft", "quickstart/sft", "sft", {}, ("data",), export="reference"))
        for kind in ("partial", "full"):
            steps.append(
                self._fit(
                    f"reward_{kind}", f"quickstart/reward_{kind}", "reward", {}, ("data", "sft"), export=f"rm_{kind}"
                )
            )
        for name, (beta, lr) in zip(self.dpo_names(), plan.dpo_grid):
            over = {"model.init_args.beta": beta, "model.init_args.lr": lr}
            steps.append(self._fit(name, "baselines/dpo", "dpo", over, ("data", "sft"), export=name, family="dpo"))
        limit = {"data.init_args.limit": plan.rollout_prompts} if plan.rollout_prompts else {}
        rollouts = self._predict_rollouts(limit)
        steps.append(rollouts)
        steps.append(self._fit("value", "baselines/value", "value", {}, ("sft", "value_rollouts"), export="value"))
        for name, kl in zip(self.ppo_names(), plan.ppo_kl):
            steps.append(
                self._fit(
                    name,
                    "baselines/ppo",
                    "ppo",
                    {"model.init_args.kl_coef": kl, "model.init_args.seed": s},
                    ("data", "sft", "reward_full"),
                    export=name,
                    family="ppo",
                )
            )
        models = ("data", "sft", "reward_partial", "reward_full", "value", *self.dpo_names(), *self.ppo_names())
        steps.append(self._predict("tune", models, self._tune_overrides, then=self._select))
        steps.append(self._predict("test", (*models, "tune"), self._test_overrides))
        steps.append(
            Step(
                "ground_truth",
                ("data", "sft", "reward_partial", "reward_full"),
                self._gt_config,
                self._ground_truth,
                ("ground_truth.json",),
            )
        )
        steps.append(
            Step(
                "decisions",
                ("data", "sft", "reward_partial", "reward_full", "value"),
                self._decisions_config,
                self._decisions,
                (decisions.FILE,),
            )
        )
        return steps

    def ablation_steps(self) -> list[Step]:
        """The data-size ablation: a materialised-prefix RM per ratio, then PARGS decoding from each."""
        steps = []
        for r in self.plan.ablation_ratios:
            name = ratio_name(r)
            steps.append(
                self._fit(
                    name,
                    "quickstart/reward_partial",
                    "reward",
                    {"data.init_args.prefix_rows": r},
                    ("data", "sft"),
                    export=f"rm_rows-{r:g}x",
                    family="ablation",
                )
            )
        needs = ("data", "sft", "reward_partial", *(ratio_name(r) for r in self.plan.ablation_ratios))
        steps.append(self._predict("ablation_decode", needs, self._ablation_overrides, family="ablation_decode"))
        return steps

    # ------------------------------------------------------------------ data
    def _data_config(self) -> dict:
        return {"sizes": {**self.plan.sizes, "seed": self.seed}, "out": self.path("data")}

    def _data(self, cfg: dict) -> None:
        from pargs.tasks.synthetic_prepare import SyntheticSizes, prepare_synthetic

        prepare_synthetic(cfg["out"], SyntheticSizes(**cfg["sizes"]))

    # ------------------------------------------------------------------ CD-FUDGE rollouts
    def _predict_rollouts(self, limit: dict) -> Step:
        source = "baselines/value_rollouts"
        over = {"model.init_args.seed": self.seed, "trainer.enable_progress_bar": False, **limit}

        def build() -> dict:
            return step_config(source, self.dir, self.seed, over)

        def run(cfg: dict) -> None:
            run_config(
                "predict",
                write_config(cfg, self.dir / "configs" / "value_rollouts.yaml", "predict", source, "pargs study"),
            )

        return Step(
            "value_rollouts", ("data", "sft", "reward_full"), build, run, ("rollouts", "configs/value_rollouts.yaml")
        )

    # ------------------------------------------------------------------ tuning and test decoding
    def _policies(self, dpo: Iterable[tuple[str, str]], ppo: Iterable[tuple[str, str]]) -> dict:
        policies = {"reference": {"path": self.path("models", "reference")}}
        for name, folder in (*dpo, *ppo):
            policies[name] = {"path": self.path("models", folder)}
        return policies

    def _scorers(self) -> dict:
        return {
            "partial": {"model": {"path": self.path("models", "rm_partial")}},
            "full": {"model": {"path": self.path("models", "rm_full")}},
            "value": {"model": {"path": self.path("models", "value")}},
        }

    def _tune_overrides(self) -> dict:
        method = self._methods(self.plan.val_samples)
        methods = [method("top-k", {"name": "sft-top-k"})]
        methods += [method(g, {"name": beta_name(g, b), "beta": b}) for g in GUIDED for b in self.plan.betas]
        methods += [method("top-k", {"name": n, "policy": n}) for n in (*self.dpo_names(), *self.ppo_names())]
        names = [(n, n) for n in self.dpo_names()], [(n, n) for n in self.ppo_names()]
        return {
            "model.init_args.policies": self._policies(*names),
            "model.init_args.scorers": self._scorers(),
            "model.init_args.methods": methods,
            "data.init_args.predict_file": self.path("data", "prompts_val.jsonl"),
            "model.init_args.warmup": False,
        }

    def _select(self, cfg: dict) -> None:
        from pargs.report import load_predictions
        from pargs.study.tuning import select

        records, _ = load_predictions([self.path("predictions", "tune")])
        choice = select(records, self.plan, SELECTION)
        (self.dir / "tuning.json").write_text(json.dumps(choice, indent=1) + "\n")

    def tuning(self) -> dict:
        path = self.dir / "tuning.json"
        if not path.is_file():
            raise ConfigError(
                f"{path} is missing although the step 'tune' is recorded as done; run the study with --redo tune"
            )
        return json.loads(path.read_text())

    def _test_overrides(self) -> dict:
        plan, choice = self.plan, self.tuning()
        method = self._methods(plan.test_samples)
        methods = [
            method("greedy", {}),
            method("top-k", {}),
            method("best-of-n", {"name": f"best-of-{plan.best_of_n}", "n": plan.best_of_n}),
        ]
        for g in GUIDED:
            methods.append(method(g, {"beta": choice["guided"][g]["chosen"]}))
        for g in GUIDED:
            methods.append(method(g, {"name": beta_name(g, FIXED_BETA), "beta": FIXED_BETA}))
        methods += [method("top-k", {"name": n, "policy": n}) for n in ("dpo", "ppo")]
        dpo, ppo = choice["dpo"]["chosen_name"], choice["ppo"]["chosen_name"]
        over = {
            "model.init_args.policies": self._policies([("dpo", dpo)], [("ppo", ppo)]),
            "model.init_args.scorers": self._scorers(),
            "model.init_args.methods": methods,
            "model.init_args.warmup": plan.warmup,
        }
        if plan.test_prompts:
            over["data.init_args.limit"] = plan.test_prompts
        return over

    # ------------------------------------------------------------------ ablation decoding
    def _ablation_overrides(self) -> dict:
        method = self._methods(self.plan.ablation_samples)
        scorers = {"partial": {"model": {"path": self.path("models", "rm_partial")}}}
        methods = [method("pargs", {"name": "pargs-dense", "beta": FIXED_BETA})]
        for r in self.plan.ablation_ratios:
            scorer = f"rows-{r:g}x".replace(".", "_")  # a scorer's name keys a torch ModuleDict: no dot
            scorers[scorer] = {"model": {"path": self.path("models", f"rm_rows-{r:g}x")}}
            methods.append(method("pargs", {"name": f"pargs-rows-{r:g}x", "scorer": scorer, "beta": FIXED_BETA}))
        over = {
            "model.init_args.policies": self._policies([], []),
            "model.init_args.scorers": scorers,
            "model.init_args.methods": methods,
            "model.init_args.warmup": False,
        }
        if self.plan.ablation_prompts:
            over["data.init_args.limit"] = self.plan.ablation_prompts
        return over

    # ------------------------------------------------------------------ ground truth
    def _gt_config(self) -> dict:
        return {
            "pairs": self.path("data", "pairs_val.jsonl"),
            "n_pairs": self.plan.gt_pairs,
            "m": self.plan.gt_m,
            "seed": self.seed,
            "max_new_tokens": 32,
            "policy": self.path("models", "reference"),
            "reward_models": {
                "rm_partial": self.path("models", "rm_partial"),
                "rm_full": self.path("models", "rm_full"),
            },
            "contrast": "pargs.tasks.synthetic.but_contrast",
        }

    def _ground_truth(self, cfg: dict) -> None:
        from dataclasses import asdict

        import torch

        from pargs.metrics.ground_truth_agreement import rm_agreement
        from pargs.metrics.prefix_values import prefix_values
        from pargs.models.loading import ModelSpec, load_causal_lm, load_reward_model, load_tokenizer
        from pargs.records import load_preferences
        from pargs.tasks.synthetic import but_contrast

        pairs, _ = load_preferences(cfg["pairs"])
        pairs = pairs[: cfg["n_pairs"]]
        spec = ModelSpec(path=cfg["policy"])
        tokenizer = load_tokenizer(spec)
        with torch.inference_mode():
            policy = load_causal_lm(spec, tokenizer).eval()
            gt = prefix_values(
                policy, tokenizer, pairs, m=cfg["m"], seed=cfg["seed"], max_new_tokens=cfg["max_new_tokens"]
            )
        outcomes = {}
        for name, path in cfg["reward_models"].items():
            spec = ModelSpec(path=path)
            rm_tokenizer = load_tokenizer(spec)
            model = load_reward_model(spec, rm_tokenizer).eval()
            outcomes[name] = [asdict(o) for o in rm_agreement(model, rm_tokenizer, pairs, gt, contrast=but_contrast)]
        data = {"ground_truth": gt.to_dict(), "outcomes": outcomes}
        (self.dir / "ground_truth.json").write_text(json.dumps(data) + "\n")

    # ------------------------------------------------------------------ decision-level evidence
    def _decisions_config(self) -> dict:
        return {
            "prompts": self.path("data", "prompts_val.jsonl"),
            "states": self.plan.decision_states,
            "k": self.plan.decision_k,
            "m": self.plan.decision_m,
            "seed": self.seed,
            "max_new_tokens": 32,
            "policy": self.path("models", "reference"),
            "scorers": {name: spec["model"]["path"] for name, spec in self._scorers().items()},
        }

    def _decisions(self, cfg: dict) -> None:
        decisions.run_step(cfg, self.dir / decisions.FILE)


# ---------------------------------------------------------------------- running steps under the ledger
def _load() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def remove_outputs(seed_dir: Path, step: Step) -> None:
    """Remove what an earlier (interrupted or discarded) attempt of ``step`` left."""
    for rel in step.outputs:
        path = seed_dir / rel
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def execute(run: SeedRun, steps: list[Step], reuse: bool, progress) -> dict[str, dict]:
    """Run the steps of one seed in order under the ledger's rule; return ``{step: {"status", "seconds"}}``.

    ``progress`` receives ``start(seed, step)`` and ``finish(seed, step, status, seconds)``.
    """
    done: dict[str, dict] = {}
    for step in steps:
        missing = [n for n in step.needs if run.ledger.fingerprint_of(n) is None]
        if missing:
            raise ConfigError(f"seed {run.seed}: step {step.name!r} needs {missing}, which have no record")
        inputs = {n: run.ledger.fingerprint_of(n) for n in step.needs}
        config = step.build()
        if run.ledger.status(step.name, config, inputs, mix=reuse) == "done":
            rec = run.ledger.record(step.name)
            progress.finish(run.seed, step.name, "done before", rec["seconds"])
            done[step.name] = {"status": "done before", "seconds": rec["seconds"]}
            continue
        if reuse and step.trains:
            raise ConfigError(
                f"--reuse trains nothing, but seed {run.seed}'s step {step.name!r} has not been trained "
                f"({run.ledger.path(step.name)} is missing); run without --reuse to train it"
            )
        where = f"seed {run.seed} step {step.name!r}"
        before = f"before {where}; the steps before it are recorded; the same command continues"
        inside = f"in {where}, not recorded as done; the same command runs it again"
        with signals.unit(before, inside):
            progress.start(run.seed, step.name)
            remove_outputs(run.dir, step)
            load = _load()
            start = time.perf_counter()
            with quiet_steps():  # the steps that load models outside Lightning too (ground truth, decisions)
                step.run(config)
            seconds = time.perf_counter() - start
        run.ledger.write(step.name, config, inputs, seconds, load)
        progress.finish(run.seed, step.name, "ran", seconds)
        done[step.name] = {"status": "ran", "seconds": round(seconds, 2)}
    return done


def dependents(steps: list[Step], names: Iterable[str]) -> list[str]:
    """``names`` and every step that reads one of them, directly or through others (in step order)."""
    chosen = set(names)
    for step in steps:  # steps come in order, so one pass reaches every transitive reader
        if chosen & set(step.needs):
            chosen.add(step.name)
    return [s.name for s in steps if s.name in chosen]


def match_steps(steps: list[Step], requested: Iterable[str]) -> list[str]:
    """Step names for ``--redo``: an exact name, or a family (``dpo`` for every ``dpo-<i>``)."""
    out = []
    for want in requested:
        hits = [s.name for s in steps if s.name == want or s.family == want]
        if not hits:
            raise ConfigError(
                f"--redo {want}: no such step; the steps are {[s.name for s in steps]} "
                f"(or a family: {sorted({s.family for s in steps})})"
            )
        out += hits
    return out
