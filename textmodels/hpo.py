"""Hyper-parameter search with Optuna: a seeded TPE study with pruning, resumable from storage."""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Literal

import mlflow
import numpy as np
import optuna
from pydantic import BaseModel, Field
from transformers import TrainerCallback

from textmodels.task_registry import task_spec
from textmodels.tasks import EXAMPLE_ID_COLUMN
from textmodels.tokenization import TokenizedDataset
from textmodels.training import TrainingSettings, fine_tune

PrunerName = Literal["hyperband", "successive_halving", "median", "threshold", "none"]


class FloatRange(BaseModel):
    """Bounds of a float hyper-parameter."""

    low: float
    high: float
    log: bool = False


class IntRange(BaseModel):
    """Bounds of an integer hyper-parameter."""

    low: int
    high: int


class SearchSpace(BaseModel):
    """What the study may vary; a parameter left out keeps its `training:` value."""

    learning_rate: FloatRange | None = FloatRange(low=2e-5, high=2e-4, log=True)
    batch_size: list[int] | None = Field(default_factory=lambda: [8, 16, 32])
    weight_decay: FloatRange | None = FloatRange(low=0.0, high=0.1)
    warmup_ratio: FloatRange | None = FloatRange(low=0.0, high=0.2)
    epochs: IntRange | None = None


class HpoSettings(BaseModel):
    """The study: budget, pruning, storage and what the trials train on."""

    n_trials: int = Field(3, ge=0, description="Trials per run; 0 skips the search.")
    timeout_minutes: float | None = Field(None, gt=0, description="Stop starting trials after.")
    study_name: str = "stackport"
    storage: str = Field(
        "sqlite:///runs/optuna.db",
        description="Optuna storage URL; a study of the same name there is resumed.",
    )
    seed: int = 42
    pruner: PrunerName = "hyperband"
    prune_below: float = Field(0.0, description="`threshold` pruner: prune a value below this.")
    pruner_warmup_epochs: int = Field(0, ge=0, description="Epochs before a trial can be pruned.")
    trial_epochs: int | None = Field(None, ge=1, description="Epochs per trial; null: as sampled.")
    trial_train_fraction: float = Field(1.0, gt=0, le=1, description="Share of train per trial.")
    search_space: SearchSpace = Field(default_factory=SearchSpace)


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
    return base.model_copy(update=update)


def apply_best_params(report: StudyReport, base: TrainingSettings) -> TrainingSettings:
    """`base` with the best trial's parameters; `base` itself when no trial completed."""
    return base.model_copy(update=report.best_params or {})


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


def run_study(
    dataset: TokenizedDataset,
    base_model: Path,
    base_training: TrainingSettings,
    settings: HpoSettings,
    workdir: Path,
) -> StudyReport:
    """Run (or resume) the study and return every trial it holds, old and new.

    Each trial fine-tunes on `settings.trial_train_fraction` of the training split and reports
    the task's selection metric on validation after every epoch; the pruner may stop it early.
    When an MLflow run is active, every trial is a nested child run with its parameters, metric
    per epoch and state.
    """
    storage = _prepare_storage(settings.storage)
    try:
        previous_trials = len(
            optuna.load_study(study_name=settings.study_name, storage=storage).trials
        )
    except KeyError:
        previous_trials = 0
    study = optuna.create_study(
        study_name=settings.study_name,
        storage=storage,
        load_if_exists=True,
        direction="maximize",
        # A resumed study draws from a new seed, so it does not repeat its first trials.
        sampler=optuna.samplers.TPESampler(seed=settings.seed + previous_trials),
        pruner=build_pruner(settings),
    )
    trial_dataset = _subset_train(dataset, settings.trial_train_fraction, settings.seed)
    parent_run = mlflow.active_run()

    def objective(trial: optuna.Trial) -> float:
        training = sample_training_settings(trial, settings.search_space, base_training)
        if settings.trial_epochs is not None:
            training = training.model_copy(update={"epochs": settings.trial_epochs})
        if parent_run is None:
            return _train_trial(trial, trial_dataset, base_model, training, workdir, False)
        with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True):
            mlflow.log_params(training.model_dump())
            mlflow.set_tag("optuna_study", settings.study_name)
            try:
                value = _train_trial(trial, trial_dataset, base_model, training, workdir, True)
            except optuna.TrialPruned:
                mlflow.set_tag("trial_state", "PRUNED")
                raise
            mlflow.set_tag("trial_state", "COMPLETE")
            return value

    if settings.n_trials > 0:
        study.optimize(
            objective,
            n_trials=settings.n_trials,
            timeout=settings.timeout_minutes * 60 if settings.timeout_minutes else None,
            show_progress_bar=True,
        )
    return study_report(study, task_spec(dataset.task).selection_metric)


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
    reporter = _ReportToTrial(trial, task_spec(dataset.task).selection_metric, log_to_mlflow)
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
