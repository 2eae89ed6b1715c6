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
from stackport.training.hpo import (
    StudyReport,
    TrialRecord,
    apply_choice,
    choose_trial,
    run_study,
    study_name,
)
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
    selected = apply_choice(choose_trial(first, "best", 0.01), base)
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
    # How a trial is chosen changes no trial: the same study. What is searched is another one.
    choosing = settings.model_copy(update={"selection": "fastest_within", "selection_epsilon": 0})
    assert study_name("reviews", tiny_dataset, "model-a", base, choosing) == name
    depths = settings.search_space.model_copy(update={"num_layers": [6, 4, 3]})
    searching = settings.model_copy(update={"search_space": depths})
    assert study_name("reviews", tiny_dataset, "model-a", base, searching) != name
    shallow = base.model_copy(update={"num_layers": 4})
    assert study_name("reviews", tiny_dataset, "model-a", shallow, settings) != name


def test_no_trials_keeps_the_configured_training(tmp_path, tiny_dataset, tiny_bert_path):
    settings = HpoSettings(n_trials=0, storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    report = run_study(tiny_dataset, tiny_bert_path, TrainingSettings(), settings, "none", tmp_path)
    assert report.trials == [] and report.best_params is None
    for rule in ("best", "fastest_within"):
        assert choose_trial(report, rule, 0.01) is None
    assert apply_choice(None, TrainingSettings(epochs=5)) == TrainingSettings(epochs=5)
    assert "No trial completed" in study_html(report)


# The selection rule, on studies written down by hand.

LATENCIES = {6: 10.3, 4: 7.1, 3: 5.2}


def depth_study(
    trials: list[tuple[str, float | None, int | None]], latencies: dict[int, float] | None = None
) -> StudyReport:
    """A study of (state, value, num_layers) trials, numbered in order; lr 1e-4 + number."""
    records = [
        TrialRecord(
            number=number,
            state=state,
            value=value,
            params={"learning_rate": 1e-4 + number * 1e-5}
            | ({} if layers is None else {"num_layers": layers}),
            intermediate_values={},
            duration_seconds=1.0,
        )
        for number, (state, value, layers) in enumerate(trials)
    ]
    completed = [record for record in records if record.state == "COMPLETE"]
    best = max(completed, key=lambda record: record.value, default=None)
    return StudyReport(
        study_name="depths",
        metric="macro_f1",
        best_params=best.params if best else None,
        best_value=best.value if best else None,
        trials=records,
        distributions={},
        latency_ms_by_num_layers=LATENCIES if latencies is None else latencies,
    )


def test_best_takes_the_highest_metric_whatever_its_latency():
    study = depth_study([("COMPLETE", 0.812, 4), ("COMPLETE", 0.818, 6), ("PRUNED", None, 3)])
    choice = choose_trial(study, "best", 0.01)
    assert (choice.trial, choice.value, choice.latency_ms) == (1, 0.818, 10.3)
    assert choice.reason == "trial 1 (6 layers, 10.3 ms): the best validation macro_f1 0.8180"
    assert apply_choice(choice, TrainingSettings()).num_layers == 6


def test_fastest_within_takes_the_fastest_depth_close_enough_to_the_best():
    study = depth_study(
        [
            ("COMPLETE", 0.818, 6),
            ("COMPLETE", 0.812, 4),
            ("COMPLETE", 0.790, 3),  # fastest, but 0.028 below the best
            ("PRUNED", None, 3),  # a pruned trial is never chosen
            ("FAIL", None, 3),
        ]
    )
    choice = choose_trial(study, "fastest_within", 0.01)
    assert (choice.trial, choice.latency_ms, choice.best_trial, choice.best_value) == (
        1,
        7.1,
        0,
        0.818,
    )
    assert choice.reason == (
        "trial 1 (4 layers, 7.1 ms): validation macro_f1 0.8120 within 0.01 of the best 0.8180 "
        "(trial 0: 6 layers, 10.3 ms)"
    )
    selected = apply_choice(choice, TrainingSettings())
    assert (selected.num_layers, selected.learning_rate) == (4, 1e-4 + 1e-5)
    # A wider epsilon reaches the 3-layer trial; a metric exactly epsilon below is within.
    assert choose_trial(study, "fastest_within", 0.03).trial == 2
    assert choose_trial(study, "fastest_within", 0.028).trial == 2
    assert choose_trial(study, "fastest_within", 0.027).trial == 1
    edge = depth_study([("COMPLETE", 0.90, 6), ("COMPLETE", 0.89, 4)])  # 0.90 - 0.89 > 0.01
    assert choose_trial(edge, "fastest_within", 0.01).trial == 1


def test_fastest_within_breaks_ties_by_the_higher_metric_then_the_earlier_trial():
    study = depth_study([("COMPLETE", 0.818, 6), ("COMPLETE", 0.810, 4), ("COMPLETE", 0.815, 4)])
    assert choose_trial(study, "fastest_within", 0.01).trial == 2
    twins = depth_study([("COMPLETE", 0.818, 6), ("COMPLETE", 0.815, 4), ("COMPLETE", 0.815, 4)])
    assert choose_trial(twins, "fastest_within", 0.01).trial == 1


def test_epsilon_zero_keeps_the_best_metric_and_prefers_the_faster_of_equal_ones():
    study = depth_study([("COMPLETE", 0.818, 6), ("COMPLETE", 0.817, 3)])
    choice = choose_trial(study, "fastest_within", 0.0)
    assert choice.trial == 0
    assert choice.reason == (
        "trial 0 (6 layers, 10.3 ms): the best validation macro_f1 0.8180; no trial within 0 "
        "of it is faster"
    )
    equal = depth_study([("COMPLETE", 0.818, 6), ("COMPLETE", 0.818, 3)])
    assert choose_trial(equal, "fastest_within", 0.0).trial == 1
    assert choose_trial(equal, "best", 0.0).trial == 0


def test_one_depth_or_no_measured_depth_is_the_best_trial():
    one_depth = depth_study([("COMPLETE", 0.80, 4), ("COMPLETE", 0.81, 4)], {4: 7.1})
    assert choose_trial(one_depth, "fastest_within", 0.05).trial == 1
    not_searched = depth_study([("COMPLETE", 0.80, None), ("COMPLETE", 0.81, None)], {})
    choice = choose_trial(not_searched, "fastest_within", 0.05)
    assert (choice.trial, choice.latency_ms) == (1, None)
    assert "num_layers is not searched" in choice.reason
    assert apply_choice(choice, TrainingSettings()).num_layers is None


def test_no_completed_trial_chooses_none():
    study = depth_study([("PRUNED", None, 3), ("FAIL", None, 4)])
    assert choose_trial(study, "fastest_within", 0.01) is None
    assert choose_trial(study, "best", 0.01) is None
