"""End-to-end runs of `run.py --pipeline train --task multilabel|ner` on a tiny BERT."""

from pathlib import Path

import pandas as pd
import pytest
from zenml.client import Client
from zenml.utils import source_utils

from tests.task_data import NER_SENTENCES, multilabel_titles
from tests.test_training_pipeline import invoke, tiny_config
from textmodels.modeling import FineTunedModel
from textmodels.task_registry import TASKS
from textmodels.tasks import Task

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def source_root():
    """ZenML resolves step sources relative to the repository, not pytest's main module."""
    source_utils.set_custom_source_root(str(REPO_ROOT))


def test_every_task_has_a_spec_whose_selection_metric_it_reports():
    assert set(TASKS) == set(Task)
    assert {task: spec.selection_metric for task, spec in TASKS.items()} == {
        Task.CLASSIFICATION: "macro_f1",
        Task.MULTILABEL: "macro_f1",
        Task.NER: "entity_f1",
    }


@pytest.fixture(scope="module")
def multilabel_run(tmp_path_factory, bbc_slice: pd.DataFrame, tiny_bert_path: Path):
    """A multi-label run on BBC titles, two labels per text in a `|`-separated CSV column."""
    tmp_path = tmp_path_factory.mktemp("multilabel")
    multilabel_titles(bbc_slice).to_csv(tmp_path / "titles.csv", index=False)
    config = tiny_config(tmp_path, "tiny-multilabel")
    extra = ("--task", "multilabel", "--label-column", "topics", "--no-cache")
    return invoke(tmp_path, str(tmp_path / "titles.csv"), tiny_bert_path, config, *extra)


@pytest.fixture(scope="module")
def ner_run(tmp_path_factory, tiny_bert_path: Path):
    """A NER run on the CoNLL fixture."""
    tmp_path = tmp_path_factory.mktemp("ner")
    config = tiny_config(tmp_path, "tiny-ner")
    extra = ("--task", "ner", "--no-cache")
    return invoke(tmp_path, str(NER_SENTENCES), tiny_bert_path, config, *extra)


# The ONNX export after training (convert_model) is implemented for classification only, so a
# run of another task stops there, after its evaluation and baseline. Remove these marks when
# textmodels/onnx_export.py exports every task.
ONNX_EXPORT_IS_CLASSIFICATION_ONLY = pytest.mark.xfail(
    strict=True, reason="convert_model: ONNX export is implemented for classification only"
)


def trained_model(summary: dict) -> FineTunedModel:
    """The run's model, after checking that it was trained, evaluated and baselined."""
    steps = Client().get_pipeline_run(summary["run_id"]).steps
    for name in ("validate_data", "train_model", "evaluate_model", "evaluate_baseline"):
        assert steps[name].status.value == "completed", name
    assert set(summary["baseline_metrics"]) == set(summary["metrics"])
    return steps["train_model"].outputs["model"][0].load()


def test_multilabel_run_reports_micro_f1_beside_its_baseline(multilabel_run):
    _, summary = multilabel_run
    model = trained_model(summary)
    assert set(summary["metrics"]) == {"accuracy", "macro_f1", "micro_f1"}
    assert 0.0 <= summary["metrics"]["micro_f1"] <= 1.0
    assert model.task is Task.MULTILABEL
    assert len(model.label_thresholds) == len(model.label_names) == 5


@ONNX_EXPORT_IS_CLASSIFICATION_ONLY
def test_multilabel_run_completes_and_registers_the_model(multilabel_run):
    result, summary = multilabel_run
    assert result.exit_code == 0, summary["error"]
    version = Client().get_model_version("tiny-multilabel", summary["model"]["version"])
    assert version.run_metadata["test_metrics"] == summary["metrics"]
    assert version.get_model_artifact("model").load().task is Task.MULTILABEL


def test_ner_run_reports_entity_f1_beside_its_baseline(ner_run):
    _, summary = ner_run
    model = trained_model(summary)
    assert set(summary["metrics"]) == {
        "entity_f1",
        "entity_precision",
        "entity_recall",
        "accuracy",
        "macro_f1",
    }
    assert 0.0 <= summary["metrics"]["entity_f1"] <= 1.0
    assert type(model.model).__name__ == "BertForTokenClassification"


@ONNX_EXPORT_IS_CLASSIFICATION_ONLY
def test_ner_run_completes_and_registers_the_model(ner_run):
    result, summary = ner_run
    assert result.exit_code == 0, summary["error"]
    version = Client().get_model_version("tiny-ner", summary["model"]["version"])
    assert set(version.run_metadata["per_class"]) == {"LOC", "MISC", "ORG", "PER"}
    assert version.get_model_artifact("model").load().task is Task.NER
