"""The Optuna study: seeded search, a forced pruned trial, resume, and its report's plots."""

import optuna
import pytest
from transformers import AutoTokenizer

from materializers.study_report import study_html
from stackport.training.hpo import (
    FloatRange,
    HpoSettings,
    IntRange,
    SearchSpace,
    apply_best_params,
    run_study,
)
from stackport.data.splitting import SplitSettings, split_dataset
from stackport.data.tokenization import tokenize_dataset
from stackport.training.trainer import TrainingSettings


def forced_pruning_settings(storage: str, n_trials: int) -> HpoSettings:
    """Trials sample 1 or 2 epochs; the threshold pruner stops every trial at epoch 2.

    With seed 1, TPE's random start-up draws epochs 2, 1, 1: trial 0 is pruned, trials 1 and 2
    complete. The draws depend only on the seed, not on training numerics.
    """
    return HpoSettings(
        n_trials=n_trials,
        study_name="forced-pruning",
        storage=storage,
        seed=1,
        pruner="threshold",
        prune_below=2.0,
        pruner_warmup_epochs=2,
        search_space=SearchSpace(
            learning_rate=FloatRange(low=1e-4, high=1e-3, log=True),
            batch_size=[8],
            weight_decay=None,
            warmup_ratio=None,
            epochs=IntRange(low=1, high=2),
        ),
    )


@pytest.fixture(scope="module")
def tiny_dataset(bbc_slice, tiny_bert_path):
    splits = split_dataset(bbc_slice, "text", "label", SplitSettings())
    return tokenize_dataset(splits, AutoTokenizer.from_pretrained(tiny_bert_path), max_length=32)


def test_study_prunes_resumes_and_reports(tmp_path, tiny_dataset, tiny_bert_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    base = TrainingSettings(batch_size=8)

    first = run_study(
        tiny_dataset, tiny_bert_path, base, forced_pruning_settings(storage, 3), tmp_path
    )

    assert [trial.state for trial in first.trials] == ["PRUNED", "COMPLETE", "COMPLETE"]
    assert first.trials[0].params["epochs"] == 2
    assert list(first.trials[0].intermediate_values) == [1, 2]
    assert first.best_value == max(t.value for t in first.trials if t.state == "COMPLETE")
    selected = apply_best_params(first, base)
    assert selected.learning_rate == first.best_params["learning_rate"]
    assert selected.epochs == 1

    second = run_study(
        tiny_dataset, tiny_bert_path, base, forced_pruning_settings(storage, 1), tmp_path
    )

    assert [trial.number for trial in second.trials] == [0, 1, 2, 3]
    assert second.trials[:3] == first.trials
    stored = optuna.load_study(study_name="forced-pruning", storage=storage)
    assert len(stored.trials) == 4

    page = study_html(second)
    assert "Optimization history" in page and "Parameter importances" in page
    assert "plotly" in page


def test_no_trials_keeps_the_configured_training(tmp_path, tiny_dataset, tiny_bert_path):
    settings = HpoSettings(n_trials=0, storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    report = run_study(tiny_dataset, tiny_bert_path, TrainingSettings(), settings, tmp_path)
    assert report.trials == [] and report.best_params is None
    assert apply_best_params(report, TrainingSettings(epochs=5)) == TrainingSettings(epochs=5)
    assert "No trial completed" in study_html(report)
