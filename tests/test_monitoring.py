"""`run.py --pipeline monitor` on a tiny sentiment model: no drift, drift, too few, retraining.

A tiny BERT is trained on 300 Rotten Tomatoes sentences (the default model's kind of data).
The served-input log of each case is written by the library's `RequestLog` with the version's
deployable ONNX model, as the bento does (tests/test_request_log_server.py has the log written
by a real `bentoml serve`): held-back review sentences, BBC News articles, or too few records.
"""

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from zenml.client import Client
from zenml.enums import VisualizationType
from zenml.utils import source_utils

import run
from pipelines.deployment import resolve_deployable
from pipelines.monitoring import RETRAIN_REASON_KEY, RETRAIN_TAG
from stackport.core.settings import DataSettings, OnnxVariant, RequestLogSettings
from stackport.data.bundled import read_dataset
from stackport.inference.predictor import OnnxPredictor
from stackport.serving.request_log import RequestLog
from stackport.tasks import training_plugin
from tests.helpers import invoke, tiny_config

REPO_ROOT = Path(__file__).resolve().parents[1]
MODEL_NAME = "tiny-sentiment"
SERVED = 200

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", autouse=True)
def source_root():
    """ZenML resolves step sources relative to the repository, not pytest's main module."""
    source_utils.set_custom_source_root(str(REPO_ROOT))


@pytest.fixture(scope="module")
def reviews() -> pd.DataFrame:
    """Rotten Tomatoes sentences, shuffled: the first 300 to train on, the rest held back."""
    frame, _ = read_dataset(DataSettings(), training_plugin("classification").read)
    return frame.sample(frac=1, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("monitoring")


@pytest.fixture(scope="module")
def trained(workdir: Path, reviews: pd.DataFrame, tiny_bert_path: Path) -> dict:
    """The tiny model trained on 300 review sentences: its training run's summary."""
    data = workdir / "reviews.csv"
    reviews.head(300).to_csv(data, index=False)
    config = tiny_config(workdir, MODEL_NAME, hpo={"n_trials": 0})
    result, summary = invoke(workdir, str(data), tiny_bert_path, config)
    assert result.exit_code == 0, result.output
    return summary


@pytest.fixture(scope="module")
def predictor(trained: dict) -> OnnxPredictor:
    """The version's fp32 ONNX model (the bento serves it or a variant gated against it)."""
    deployable = resolve_deployable(MODEL_NAME, trained["model"]["version"])
    fp32 = deployable.artifact_ids[OnnxVariant.FP32]
    return OnnxPredictor(Client().get_artifact_version(fp32).load())


def serve_log(folder: Path, texts: list[str], predictor: OnnxPredictor, version: str) -> str:
    """A request log of `texts` predicted 8 at a time, written as the service writes it."""
    log = RequestLog(
        RequestLogSettings(path=str(folder)),
        MODEL_NAME,
        version,
        "classification",
        predictor.tokenizer,
    )
    for start in range(0, len(texts), 8):
        batch = texts[start : start + 8]
        log.record(batch, predictor.predict(batch))
    log.close()
    assert (log.written, log.dropped) == (len(texts), 0)
    return str(folder)


def monitor(workdir: Path, name: str, **settings) -> tuple:
    """`run.py --pipeline monitor` with a config of `settings`: the result and the summary."""
    config = workdir / f"monitor-{name}.yaml"
    config.write_text(yaml.safe_dump({"parameters": {"monitor": settings}}))
    summary_file = workdir / f"monitor-{name}.json"
    arguments = ["--pipeline", "monitor", "--config", str(config), "--summary", str(summary_file)]
    result = CliRunner().invoke(run.main, arguments, catch_exceptions=False)
    return result, json.loads(summary_file.read_text())


def drift_summary(run_id: str):
    step = Client().get_pipeline_run(run_id).steps["detect_drift"]
    return step.outputs["drift_summary"][0], step.outputs["drift_report"][0]


def test_held_back_reviews_show_no_drift(workdir, trained, reviews, predictor):
    texts = reviews["text"].iloc[300 : 300 + SERVED].tolist()
    version = trained["model"]["version"]
    log = serve_log(workdir / "log-reviews", texts, predictor, version)

    result, summary = monitor(workdir, "reviews", request_log=log)

    assert result.exit_code == 0, result.output
    assert summary["status"] == "completed", summary["error"]
    assert summary["model"] == {"name": MODEL_NAME, "version": version}
    assert summary["drift_detected"] is False, summary["message"]
    assert summary["records"] == SERVED and summary["window"]["records"] == SERVED
    assert "Drift: no drift" in result.output


def test_bbc_articles_drift_on_their_lengths_and_words(workdir, trained, bbc_news, predictor):
    texts = bbc_news["text"].sample(SERVED, random_state=0).str[:3000].tolist()
    version = trained["model"]["version"]
    log = serve_log(workdir / "log-bbc", texts, predictor, version)

    result, summary = monitor(workdir, "bbc", request_log=log)

    assert result.exit_code == 0, result.output
    assert summary["drift_detected"] is True, summary["message"]
    assert {"chars", "tokens", "text"} <= set(summary["drifted_features"])
    assert summary["records"] == SERVED
    summary_artifact, report = drift_summary(summary["run_id"])
    loaded = summary_artifact.load()
    split = Client().get_pipeline_run(trained["run_id"]).steps["split_data"]
    assert loaded.drift_detected is True
    assert loaded.reference_records == len(split.outputs["train_set"][0].load())
    assert {feature.feature for feature in loaded.features} >= {"chars", "outcome", "text"}
    # The Evidently report is the artifact's HTML visualization, shown in the dashboard.
    (visualization,) = report.visualizations
    assert visualization.type == VisualizationType.HTML
    assert "evidently" in report.load().html.lower()
    metadata = Client().get_model_version(MODEL_NAME, version).run_metadata
    assert metadata["drift_detected"] is True
    assert metadata["drifted_share"] == pytest.approx(summary["drifted_share"])


def test_too_few_served_inputs_give_no_verdict(workdir, trained, reviews, predictor):
    texts = reviews["text"].iloc[600:610].tolist()
    log = serve_log(workdir / "log-few", texts, predictor, trained["model"]["version"])

    result, summary = monitor(workdir, "few", request_log=log, min_records=50)

    assert result.exit_code == 0, result.output
    assert summary["status"] == "completed", summary["error"]
    assert summary["drift_detected"] is None
    assert summary["drifted_features"] == []
    assert summary["records"] == 10
    assert "not enough served inputs (10 < 50)" in summary["message"]
    assert "not enough served inputs (10 < 50)" in result.output
    _, report = drift_summary(summary["run_id"])
    assert "no verdict" in report.load().html


def test_drift_with_retrain_on_drift_starts_a_training_run(workdir, trained, tiny_bert_path):
    training_config = yaml.safe_load((workdir / "config.yaml").read_text())
    training_config["parameters"]["data"] = {"source": str(workdir / "reviews.csv")}
    training_config["parameters"]["model"]["base_model"] = str(tiny_bert_path)
    retrain_config = workdir / "retrain.yaml"
    retrain_config.write_text(yaml.safe_dump(training_config))
    before = {run.id for run in Client().list_pipeline_runs(pipeline_name="training_pipeline")}

    result, summary = monitor(
        workdir,
        "retrain",
        request_log=str(workdir / "log-bbc"),  # the BBC articles of the test above
        retrain_on_drift=True,
        train_config=str(retrain_config),
    )

    assert result.exit_code == 0, result.output
    assert summary["drift_detected"] is True
    assert "Drift detected: starting training_pipeline" in result.output
    retrained = summary["retrain"]
    assert retrained["status"] == "completed", retrained["error"]
    assert retrained["run_id"] not in {str(run_id) for run_id in before}
    new_run = Client().get_pipeline_run(retrained["run_id"])
    assert RETRAIN_TAG in {tag.name for tag in new_run.tags}
    reason = new_run.run_metadata[RETRAIN_REASON_KEY]
    assert reason["reason"] == "drift detected"
    assert reason["monitor_run"] == summary["run_name"]
    assert set(reason["drifted_features"]) == set(summary["drifted_features"])
