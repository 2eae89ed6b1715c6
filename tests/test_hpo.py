"""The Optuna study: seeded search, a forced pruned trial, resume, and its report's plots."""

import optuna
import pytest
from transformers import AutoTokenizer

from materializers.study_report import study_html
from stackport.core.settings import (
    HpoSettings,
    SplitSettings,
    TrainingSettings,
)
from stackport.data.splitting import split_dataset
from stackport.data.tokenization import tokenize_dataset
from stackport.tasks import training_plugin
from stackport.training.hpo import apply_best_params, run_study, study_name
from tests.helpers import forced_pruning_settings

CLASSIFICATION = training_plugin("classification")


@pytest.fixture(scope="module")
def tiny_dataset(bbc_slice, tiny_bert_path):
    splits = split_dataset(bbc_slice, "text", "label", SplitSettings(), CLASSIFICATION)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_path)
    return tokenize_dataset(splits, tokenizer, "classification", CLASSIFICATION, max_length=32)


def test_n_trials_is_the_studys_total_and_pruned_trials_count(
    tmp_path, tiny_dataset, tiny_bert_path
):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    base = TrainingSettings(batch_size=8)

    def run(n_trials: int):
        settings = forced_pruning_settings(storage, n_trials)
        return run_study(tiny_dataset, tiny_bert_path, base, settings, "forced", tmp_path)

    first = run(3)

    assert [trial.state for trial in first.trials] == ["PRUNED", "COMPLETE", "COMPLETE"]
    assert first.trials[0].params["epochs"] == 2
    assert list(first.trials[0].intermediate_values) == [1, 2]
    assert first.best_value == max(t.value for t in first.trials if t.state == "COMPLETE")
    selected = apply_best_params(first, base)
    assert selected.learning_rate == first.best_params["learning_rate"]
    assert selected.epochs == 1

    assert run(3).trials == first.trials  # complete: an unchanged run adds no trial
    fourth = run(4)
    assert [trial.number for trial in fourth.trials] == [0, 1, 2, 3]
    assert fourth.trials[:3] == first.trials
    assert len(optuna.load_study(study_name="forced", storage=storage).trials) == 4

    page = study_html(fourth)
    assert "Optimization history" in page and "Parameter importances" in page
    assert "plotly" in page


def test_a_study_killed_mid_trial_completes_the_rest(tmp_path, tiny_dataset, tiny_bert_path):
    """The trial a killed run left RUNNING is failed and not counted; the rest are run."""
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    settings = forced_pruning_settings(storage, 2)
    base = TrainingSettings(batch_size=8)
    run_study(
        tiny_dataset,
        tiny_bert_path,
        base,
        settings.model_copy(update={"n_trials": 1}),
        "killed",
        tmp_path,
    )
    optuna.load_study(study_name="killed", storage=storage).ask()  # what a kill leaves behind

    report = run_study(tiny_dataset, tiny_bert_path, base, settings, "killed", tmp_path)

    states = [trial.state for trial in report.trials]
    assert states[:2] == ["PRUNED", "FAIL"]
    assert len(states) == 3 and states[2] in ("COMPLETE", "PRUNED")  # 2 finished, as asked


def test_the_study_name_fingerprints_what_makes_trials_comparable(bbc_slice, tiny_dataset):
    settings, base = HpoSettings(), TrainingSettings()
    name = study_name("reviews", tiny_dataset, "model-a", base, settings)

    assert name.startswith("reviews-") and len(name) == len("reviews-") + 12
    assert study_name("reviews", tiny_dataset, "model-a", base, settings) == name
    budget = settings.model_copy(update={"n_trials": 9, "timeout_minutes": 1})
    assert study_name("reviews", tiny_dataset, "model-a", base, budget) == name
    changed_data = tiny_dataset.splits["train"].slice(1)
    other_data = type(tiny_dataset)(
        **{**vars(tiny_dataset), "splits": {**tiny_dataset.splits, "train": changed_data}}
    )
    assert study_name("reviews", other_data, "model-a", base, settings) != name
    assert study_name("reviews", tiny_dataset, "model-b", base, settings) != name
    assert (
        study_name(
            "reviews", tiny_dataset, "model-a", base, settings.model_copy(update={"seed": 7})
        )
        != name
    )


def test_no_trials_keeps_the_configured_training(tmp_path, tiny_dataset, tiny_bert_path):
    settings = HpoSettings(n_trials=0, storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    report = run_study(tiny_dataset, tiny_bert_path, TrainingSettings(), settings, "none", tmp_path)
    assert report.trials == [] and report.best_params is None
    assert apply_best_params(report, TrainingSettings(epochs=5)) == TrainingSettings(epochs=5)
    assert "No trial completed" in study_html(report)
