"""Hyper-parameter search with Optuna: a seeded TPE study with pruning, resumable from storage."""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import replace
from pathlib import Path

import mlflow
import numpy as np
import optuna
from pydantic import BaseModel, Field
from transformers import TrainerCallback

from stackport.core.names import EXAMPLE_ID_COLUMN
from stackport.core.settings import HpoSettings, SearchSpace, SelectionRule, TrainingSettings
from stackport.data.tokenization import TokenizedDataset
from stackport.tasks import training_plugin
from stackport.training.trainer import fine_tune


def layers_text(num_layers: float) -> str:
    """`1 layer`, `4 layers`."""
    return f"{int(num_layers)} layer{'' if int(num_layers) == 1 else 's'}"


class TrialRecord(BaseModel):
    """One trial as the study stored it."""

    number: int
    state: str
    value: float | None
    params: dict[str, float | int]
    intermediate_values: dict[int, float]
    duration_seconds: float | None


class StudyReport(BaseModel):
    """What a search found; enough to rebuild the study's plots."""

    study_name: str
    metric: str
    best_params: dict[str, float | int] | None
    best_value: float | None
    trials: list[TrialRecord]
    distributions: dict[str, str] = Field(description="Optuna distributions as JSON, per param.")
    latency_ms_by_num_layers: dict[int, float] = Field(
        default_factory=dict,
        description="Median batch-1 latency (ms) of each searched depth's fp32 ONNX export, "
        "measured on this machine; empty when `num_layers` is not searched.",
    )

    def latency_ms(self, trial: TrialRecord) -> float | None:
        """The measured latency of the trial's depth; None when the depth is not searched."""
        num_layers = trial.params.get("num_layers")
        return None if num_layers is None else self.latency_ms_by_num_layers.get(int(num_layers))

    def counts(self) -> dict[str, int]:
        """Trials per state (COMPLETE, PRUNED, FAIL, ...)."""
        states: dict[str, int] = {}
        for trial in self.trials:
            states[trial.state] = states.get(trial.state, 0) + 1
        return states

    def to_study(self) -> optuna.Study:
        """An in-memory study holding these trials, for Optuna's visualizations."""
        study = optuna.create_study(study_name=self.study_name, direction="maximize")
        distributions = {
            name: optuna.distributions.json_to_distribution(text)
            for name, text in self.distributions.items()
        }
        for trial in self.trials:
            study.add_trial(
                optuna.trial.create_trial(
                    state=optuna.trial.TrialState[trial.state],
                    value=trial.value if trial.state == "COMPLETE" else None,
                    params=trial.params,
                    distributions={name: distributions[name] for name in trial.params},
                    intermediate_values=trial.intermediate_values,
                )
            )
        return study


def build_pruner(settings: HpoSettings) -> optuna.pruners.BasePruner:
    """The configured pruner; a trial's resource is its epoch count."""
    warmup = settings.pruner_warmup_epochs
    match settings.pruner:
        case "hyperband":
            return optuna.pruners.HyperbandPruner(min_resource=1, reduction_factor=3)
        case "successive_halving":
            return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
        case "median":
            return optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=warmup)
        case "threshold":
            return optuna.pruners.ThresholdPruner(lower=settings.prune_below, n_warmup_steps=warmup)
        case "none":
            return optuna.pruners.NopPruner()


def sample_training_settings(
    trial: optuna.Trial, space: SearchSpace, base: TrainingSettings
) -> TrainingSettings:
    """`base` with every parameter of the search space drawn by the trial."""
    update: dict[str, float | int] = {}
    for name in ("learning_rate", "weight_decay", "warmup_ratio"):
        bounds = getattr(space, name)
        if bounds is not None:
            update[name] = trial.suggest_float(name, bounds.low, bounds.high, log=bounds.log)
    if space.batch_size:
        update["batch_size"] = trial.suggest_categorical("batch_size", space.batch_size)
    if space.epochs is not None:
        update["epochs"] = trial.suggest_int("epochs", space.epochs.low, space.epochs.high)
    if space.num_layers:
        update["num_layers"] = trial.suggest_categorical("num_layers", space.num_layers)
    return base.model_copy(update=update)


class TrialChoice(BaseModel):
    """The trial whose parameters the final training takes, and why."""

    rule: SelectionRule = Field(description="The rule that chose it (`hpo.selection`).")
    trial: int = Field(description="The chosen trial's number.")
    params: dict[str, float | int] = Field(description="Its parameters.")
    value: float = Field(description="Its validation metric.")
    latency_ms: float | None = Field(description="Its depth's latency; None: not measured.")
    best_trial: int = Field(description="The number of the trial with the best metric.")
    best_value: float = Field(description="That best validation metric.")
    reason: str = Field(description="What was chosen and why, in a sentence.")


# Floating-point slack of "within epsilon": 0.90 - 0.89 is a little more than 0.01 in binary.
WITHIN_SLACK = 1e-12


def choose_trial(report: StudyReport, rule: SelectionRule, epsilon: float) -> TrialChoice | None:
    """The completed trial the final training takes; None when no trial completed.

    `best`: the trial with the highest validation metric. `fastest_within`: among the trials
    whose metric is at most `epsilon` below the best one's, the one whose depth
    (`num_layers`) has the lowest measured latency; ties go to the higher metric, then to the
    earlier trial. Without measured latencies (depth not searched) both rules pick the best.
    """
    completed = [t for t in report.trials if t.state == "COMPLETE" and t.value is not None]
    if not completed:
        return None

    def latency_key(trial: TrialRecord) -> float:
        latency = report.latency_ms(trial)
        return math.inf if latency is None else latency

    best = min(completed, key=lambda trial: (-trial.value, trial.number))
    chosen = best
    if rule == "fastest_within":
        within = [t for t in completed if best.value - t.value <= epsilon + WITHIN_SLACK]
        chosen = min(within, key=lambda trial: (latency_key(trial), -trial.value, trial.number))
    return TrialChoice(
        rule=rule,
        trial=chosen.number,
        params=chosen.params,
        value=chosen.value,
        latency_ms=report.latency_ms(chosen),
        best_trial=best.number,
        best_value=best.value,
        reason=_choice_reason(report, rule, epsilon, chosen, best),
    )


def _choice_reason(
    report: StudyReport,
    rule: SelectionRule,
    epsilon: float,
    chosen: TrialRecord,
    best: TrialRecord,
) -> str:
    """What was chosen and why.

    E.g. `trial 4 (4 layers, 7.1 ms): validation macro_f1 0.8120 within 0.01 of the best
    0.8180 (trial 2: 6 layers, 10.3 ms)`.
    """

    def depth(trial: TrialRecord) -> str:
        num_layers = trial.params.get("num_layers")
        if num_layers is None:
            return ""
        latency = report.latency_ms(trial)
        timing = "" if latency is None else f", {latency:.1f} ms"
        return f"{layers_text(num_layers)}{timing}"

    metric = report.metric
    described = f"trial {chosen.number}" + (f" ({depth(chosen)})" if depth(chosen) else "")
    if rule == "best":
        return f"{described}: the best validation {metric} {chosen.value:.4f}"
    if not report.latency_ms_by_num_layers:
        return (
            f"{described}: the best validation {metric} {chosen.value:.4f} (fastest_within "
            "without measured latencies: num_layers is not searched)"
        )
    if chosen.number == best.number:
        return (
            f"{described}: the best validation {metric} {chosen.value:.4f}; no trial within "
            f"{epsilon:g} of it is faster"
        )
    return (
        f"{described}: validation {metric} {chosen.value:.4f} within {epsilon:g} of the best "
        f"{best.value:.4f} (trial {best.number}: {depth(best)})"
    )


def apply_choice(choice: TrialChoice | None, base: TrainingSettings) -> TrainingSettings:
    """`base` with the chosen trial's parameters; `base` itself when no trial was chosen."""
    return base.model_copy(update=choice.params if choice else {})


class _ReportToTrial(TrainerCallback):
    """Reports the validation metric per epoch to the trial (and MLflow) and prunes."""

    def __init__(self, trial: optuna.Trial, metric: str, log_to_mlflow: bool):
        self._trial = trial
        self._metric = metric
        self._log_to_mlflow = log_to_mlflow
        self.values: list[float] = []

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):  # noqa: D102
        value = metrics[f"eval_{self._metric}"]
        epoch = round(state.epoch)
        self.values.append(value)
        self._trial.report(value, step=epoch)
        if self._log_to_mlflow:
            mlflow.log_metric(f"eval_{self._metric}", value, step=epoch)
        if self._trial.should_prune():
            raise optuna.TrialPruned(f"epoch {epoch}: {self._metric} {value:.4f}")


FINISHED_STATES = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
FINGERPRINT_CHARS = 12


def study_name(
    prefix: str,
    dataset: TokenizedDataset,
    base_model_fingerprint: str,
    base_training: TrainingSettings,
    settings: HpoSettings,
) -> str:
    """`<prefix>-<fingerprint>`: the study of trials that are comparable with each other.

    The fingerprint covers what a trial's result depends on: the tokenized data's content,
    the base model, the windows, the training settings the search starts from, the search
    space, the seed, the pruner and what each trial trains on. The same inputs find the same
    study; a changed data set (or any of these) starts a new one instead of mixing results.
    How a trial is chosen from the study (`selection`, `selection_epsilon`) and the depths'
    latencies (which depend on the machine) are left out: they change no trial's result.
    """
    state = {
        "data": dataset.content_hash(),
        "base_model": base_model_fingerprint,
        "training": base_training.model_dump(mode="json"),
        "search": settings.model_dump(
            mode="json",
            exclude={
                "n_trials",
                "timeout_minutes",
                "study_name",
                "storage",
                "selection",
                "selection_epsilon",
            },
        ),
    }
    digest = hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()
    return f"{prefix}-{digest[:FINGERPRINT_CHARS]}"


def run_study(
    dataset: TokenizedDataset,
    base_model: Path,
    base_training: TrainingSettings,
    settings: HpoSettings,
    name: str,
    workdir: Path,
    latency_ms_by_num_layers: dict[int, float] | None = None,
) -> StudyReport:
    """Run the study `name` until it holds `settings.n_trials` finished trials; report them all.

    `n_trials` is the study's total: a study stopped part-way (a killed run) continues with
    the trials it lacks, and a complete one runs none. Pruned trials count as finished; a
    trial left running by a killed run is marked failed and does not count.

    Each trial fine-tunes on `settings.trial_train_fraction` of the training split and reports
    the task's selection metric on validation after every epoch; the pruner may stop it early.
    When an MLflow run is active, every trial is a nested child run with its parameters, metric
    per epoch and state. `latency_ms_by_num_layers`, the latencies of the searched depths on
    this machine (`stackport.onnx.benchmark.depth_latencies`), goes into the report as it is.
    """
    storage = optuna.storages.get_storage(_prepare_storage(settings.storage))
    study = optuna.create_study(
        study_name=name, storage=storage, load_if_exists=True, direction="maximize"
    )
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        storage.set_trial_state_values(trial._trial_id, state=optuna.trial.TrialState.FAIL)
    previous_trials = len(study.get_trials(deepcopy=False))
    study = optuna.load_study(
        study_name=name,
        storage=storage,
        # A resumed study draws from a new seed, so it does not repeat its first trials.
        sampler=optuna.samplers.TPESampler(seed=settings.seed + previous_trials),
        pruner=build_pruner(settings),
    )
    missing = settings.n_trials - len(study.get_trials(deepcopy=False, states=FINISHED_STATES))
    trial_dataset = _subset_train(dataset, settings.trial_train_fraction, settings.seed)
    parent_run = mlflow.active_run()

    def objective(trial: optuna.Trial) -> float:
        # A trial is never resumed: it checkpoints only where it is evaluated.
        update: dict = {"checkpoint_steps": None}
        if settings.trial_epochs is not None:
            update["epochs"] = settings.trial_epochs
        training = sample_training_settings(trial, settings.search_space, base_training)
        training = training.model_copy(update=update)
        if parent_run is None:
            return _train_trial(trial, trial_dataset, base_model, training, workdir, False)
        with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True):
            mlflow.log_params(training.model_dump())
            mlflow.set_tag("optuna_study", name)
            try:
                value = _train_trial(trial, trial_dataset, base_model, training, workdir, True)
            except optuna.TrialPruned:
                mlflow.set_tag("trial_state", "PRUNED")
                raise
            mlflow.set_tag("trial_state", "COMPLETE")
            return value

    if missing > 0:
        study.optimize(
            objective,
            n_trials=missing,
            timeout=settings.timeout_minutes * 60 if settings.timeout_minutes else None,
            show_progress_bar=True,
        )
    report = study_report(study, training_plugin(dataset.task).selection_metric)
    return report.model_copy(update={"latency_ms_by_num_layers": latency_ms_by_num_layers or {}})


def study_report(study: optuna.Study, metric: str) -> StudyReport:
    """Summarize a study's trials and its best trial."""
    trials = study.get_trials(deepcopy=False)
    completed = [trial for trial in trials if trial.state == optuna.trial.TrialState.COMPLETE]
    best = max(completed, key=lambda trial: trial.value) if completed else None
    distributions: dict[str, str] = {}
    for trial in trials:
        for name, distribution in trial.distributions.items():
            distributions[name] = optuna.distributions.distribution_to_json(distribution)
    return StudyReport(
        study_name=study.study_name,
        metric=metric,
        best_params=best.params if best else None,
        best_value=best.value if best else None,
        trials=[
            TrialRecord(
                number=trial.number,
                state=trial.state.name,
                value=trial.value,
                params=trial.params,
                intermediate_values=trial.intermediate_values,
                duration_seconds=trial.duration.total_seconds() if trial.duration else None,
            )
            for trial in trials
        ],
        distributions=distributions,
    )


def _train_trial(
    trial: optuna.Trial,
    dataset: TokenizedDataset,
    base_model: Path,
    training: TrainingSettings,
    workdir: Path,
    log_to_mlflow: bool,
) -> float:
    reporter = _ReportToTrial(trial, training_plugin(dataset.task).selection_metric, log_to_mlflow)
    started = time.monotonic()
    fine_tune(
        dataset,
        base_model,
        training,
        output_dir=workdir / f"trial-{trial.number}",
        callbacks=[reporter],
    )
    trial.set_user_attr("train_seconds", time.monotonic() - started)
    # The best epoch's checkpoint is what training keeps, so the best value is the trial's.
    return max(reporter.values) if reporter.values else math.nan


def _subset_train(dataset: TokenizedDataset, fraction: float, seed: int) -> TokenizedDataset:
    """The dataset with a seeded `fraction` of its training examples (all rows of each)."""
    if fraction >= 1.0:
        return dataset
    train = dataset.splits["train"]
    row_examples = train.column(EXAMPLE_ID_COLUMN).to_numpy()
    examples = np.unique(row_examples)
    size = max(1, int(fraction * len(examples)))
    chosen = np.random.default_rng(seed).permutation(examples)[:size]
    keep = np.flatnonzero(np.isin(row_examples, chosen))
    return replace(dataset, splits={**dataset.splits, "train": train.take(keep)})


def _prepare_storage(storage: str) -> str:
    """Create the folder of a relative or absolute sqlite file; other URLs pass through."""
    prefix = "sqlite:///"
    if storage.startswith(prefix):
        Path(storage[len(prefix) :]).parent.mkdir(parents=True, exist_ok=True)
    return storage
