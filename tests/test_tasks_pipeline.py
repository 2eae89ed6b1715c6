"""End-to-end runs of `run.py --pipeline train --task multilabel|ner` on a tiny BERT."""

from pathlib import Path

import pandas as pd
import pytest
from zenml.client import Client
from zenml.utils import source_utils

from stackport.core.settings import OnnxVariant
from stackport.tasks import inference_plugin
from stackport.training.model import FineTunedModel
from tests.helpers import NER_SENTENCES, invoke, multilabel_titles, tiny_config

REPO_ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", autouse=True)
def source_root():
    """ZenML resolves step sources relative to the repository, not pytest's main module."""
    source_utils.set_custom_source_root(str(REPO_ROOT))


@pytest.fixture(scope="module")
def multilabel_run(tmp_path_factory, bbc_slice: pd.DataFrame, tiny_bert_path: Path):
    """A multi-label run on BBC titles, two labels per text in a `|`-separated CSV column."""
    tmp_path = tmp_path_factory.mktemp("multilabel")
    multilabel_titles(bbc_slice).to_csv(tmp_path / "titles.csv", index=False)
    config = tiny_config(tmp_path, "tiny-multilabel")
    extra = ("--task", "multilabel", "--label-column", "topics")
    return invoke(tmp_path, str(tmp_path / "titles.csv"), tiny_bert_path, config, *extra)


@pytest.fixture(scope="module")
def ner_run(tmp_path_factory, tiny_bert_path: Path):
    """A NER run on the CoNLL fixture."""
    tmp_path = tmp_path_factory.mktemp("ner")
    config = tiny_config(tmp_path, "tiny-ner")
    extra = ("--task", "ner")
    return invoke(tmp_path, str(NER_SENTENCES), tiny_bert_path, config, *extra)


def trained_model(summary: dict) -> FineTunedModel:
    """The run's model, after checking that it was trained, evaluated and baselined."""
    steps = Client().get_pipeline_run(summary["run_id"]).steps
    for name in ("validate_data", "train_model", "evaluate_model", "evaluate_baseline"):
        assert steps[name].status.value == "completed", name
    assert set(summary["baseline_metrics"]) == set(summary["metrics"])
    assert summary["hpo"]["trials"] == {"PRUNED": 1, "COMPLETE": 2}  # tiny_config forces one
    return steps["train_model"].outputs["model"][0].load()


def test_multilabel_run_reports_micro_f1_beside_its_baseline(multilabel_run):
    _, summary = multilabel_run
    model = trained_model(summary)
    assert set(summary["metrics"]) == {"accuracy", "macro_f1", "micro_f1"}
    assert 0.0 <= summary["metrics"]["micro_f1"] <= 1.0
    assert model.task == "multilabel"
    assert len(model.label_thresholds) == len(model.label_names) == 5


def test_multilabel_run_completes_and_registers_the_model(multilabel_run):
    result, summary = multilabel_run
    assert result.exit_code == 0, summary["error"]
    version = Client().get_model_version("tiny-multilabel", summary["model"]["version"])
    assert version.run_metadata["test_metrics"] == summary["metrics"]
    model = version.get_model_artifact("model").load()
    assert model.task == "multilabel"
    onnx_model = version.get_model_artifact("onnx_model").load()
    assert onnx_model.task == "multilabel"
    assert onnx_model.thresholds == model.label_thresholds
    int8 = version.get_model_artifact("onnx_model_int8").load()
    assert int8.thresholds == model.label_thresholds
    assert version.get_artifact("quantization_report").load().metric == "macro_f1"
    for figures in summary["benchmark"].values():
        assert {"macro_f1", "micro_f1", "accuracy"} <= set(figures)


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


def test_ner_run_completes_and_registers_the_model(ner_run):
    result, summary = ner_run
    assert result.exit_code == 0, summary["error"]
    version = Client().get_model_version("tiny-ner", summary["model"]["version"])
    assert set(version.run_metadata["per_class"]) == {"LOC", "MISC", "ORG", "PER"}
    assert version.get_model_artifact("model").load().task == "ner"
    onnx_model = version.get_model_artifact("onnx_model").load()
    assert onnx_model.task == "ner" and inference_plugin(onnx_model.task).word_level
    quantization_report = version.get_artifact("quantization_report").load()
    assert quantization_report.metric == "entity_f1"
    assert "dynamic-int8: validation entity_f1" in summary["onnx"]["summary"] or (
        "dynamic-int8" in summary["onnx"]["deployable"]
    )
    assert set(summary["benchmark"]) == {"pytorch_fp32", *(f"onnx_{v}" for v in OnnxVariant)}
    for figures in summary["benchmark"].values():
        assert 0.0 <= figures["entity_f1"] <= 1.0
    assert version.run_metadata["benchmark"] == summary["benchmark"]
