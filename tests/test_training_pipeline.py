"""End-to-end runs of `run.py --pipeline train` on a tiny BERT, good data and bad.

The fast tier runs the pipeline once and then again unchanged (every cacheable step must come
from the cache); the integration tier adds a run on data changed by one byte and every kind of
bad data, and a run killed during training that resumes.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from zenml.client import Client
from zenml.utils import source_utils

from pipelines.model_registry import MODEL_ARTIFACT_KEY
from stackport.core.settings import OnnxVariant
from stackport.release.registration import VARIANT_ARTIFACTS
from stackport.training.model import FineTunedModel
from tests.helpers import forced_pruning_settings, invoke, onnx_layers, tiny_config

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def source_root():
    """ZenML resolves step sources relative to the repository, not pytest's main module."""
    source_utils.set_custom_source_root(str(REPO_ROOT))


TRAIN_COLUMNS = ("--text-column", "article", "--label-column", "topic")
# The runs also search the depth: one choice, the tiny BERT's first of 2 layers, chosen by
# `fastest_within` (a choice of one draws nothing from the sampler: the forced pruning holds).
ONE_LAYER = {
    "search_space": forced_pruning_settings("", 0).search_space.model_dump(mode="json")
    | {"num_layers": [1]},
    "selection": "fastest_within",
}


@pytest.fixture(scope="module")
def train_dir(tmp_path_factory, bbc_slice: pd.DataFrame) -> Path:
    """A folder with 120 BBC articles as `bbc.csv` (columns article, topic)."""
    folder = tmp_path_factory.mktemp("train")
    bbc_slice.rename(columns={"text": "article", "label": "topic"}).to_csv(
        folder / "bbc.csv", index=False
    )
    return folder


@pytest.fixture(scope="module")
def trained(train_dir: Path, tiny_bert_path: Path):
    """One successful run on 120 BBC articles: the CLI result and the summary JSON."""
    config = tiny_config(train_dir, "tiny-bbc", hpo=ONE_LAYER)
    data = str(train_dir / "bbc.csv")
    return invoke(train_dir, data, tiny_bert_path, config, *TRAIN_COLUMNS)


@pytest.fixture(scope="module")
def rerun(trained, train_dir: Path, tiny_bert_path: Path):
    """The same command again, on the same data."""
    data = str(train_dir / "bbc.csv")
    return invoke(train_dir, data, tiny_bert_path, train_dir / "config.yaml", *TRAIN_COLUMNS)


# The steps that run every time: the source is read again, and the Model Control Plane is
# consulted (they find the version of the cached model instead of adding one).
ALWAYS_RUN = {"load_data", "register_model", "promote_model"}


def test_an_unchanged_rerun_takes_every_other_step_from_the_cache(trained, rerun):
    result, summary = rerun
    _, first = trained
    assert result.exit_code == 0, result.output
    cached = {name for name, step in summary["steps"].items() if step["cached"]}
    assert cached == set(first["steps"]) - ALWAYS_RUN
    assert all(summary["steps"][name]["seconds"] is not None for name in ALWAYS_RUN)
    assert "  train_model: cached" in result.output
    assert summary["model"] == {**first["model"], "created": False}  # no duplicate version
    versions = Client().list_model_versions(model_name_or_id="tiny-bbc").items
    assert [version.name for version in versions] == [first["model"]["version"]]
    assert summary["promotion"] == {
        "promoted": True,
        "stage": "production",
        "reason": f"version {first['model']['version']} is in production already",
    }
    assert summary["hpo"] == first["hpo"]  # the study was not touched


def input_hashes(run_id: str) -> dict[str, dict[str, list[str]]]:
    """Per step of a run, the content hash of each input artifact."""
    steps = Client().get_pipeline_run(run_id).steps
    return {
        name: {
            input_name: [artifact.content_hash for artifact in artifacts]
            for input_name, artifacts in step.inputs.items()
        }
        for name, step in steps.items()
    }


def test_hpo_pruned_a_trial_and_logged_each_as_an_mlflow_child_run(trained):
    _, summary = trained
    assert summary["hpo"]["trials"] == {"PRUNED": 1, "COMPLETE": 2}
    assert summary["hpo"]["study_name"].startswith("tiny-bbc-")
    run_response = Client().get_pipeline_run(summary["run_id"])
    parent_id = run_response.steps["search_hyperparameters"].run_metadata["mlflow_run_id"]
    tracker = Client().active_stack.experiment_tracker
    mlflow_client = mlflow.MlflowClient(tracking_uri=tracker.get_tracking_uri())
    parent = mlflow_client.get_run(parent_id)
    children = mlflow_client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'"
    )
    states = sorted(child.data.tags["trial_state"] for child in children)
    assert states == ["COMPLETE", "COMPLETE", "PRUNED"]
    assert all("learning_rate" in child.data.params for child in children)
    select_step = run_response.steps["select_hyperparameters"]
    selected = select_step.outputs["selected_training"][0].load()
    assert selected.learning_rate == summary["hpo"]["best_params"]["learning_rate"]
    assert select_step.run_metadata["selection"].startswith("fastest_within: trial ")
    assert "(1 layer, " in select_step.run_metadata["selection"]
    assert summary["hpo"]["latency_ms_by_num_layers"]["1"] > 0
    assert selected.num_layers == 1


def test_the_model_trained_exported_and_registered_has_the_selected_depth(trained):
    _, summary = trained
    steps = Client().get_pipeline_run(summary["run_id"]).steps
    model: FineTunedModel = steps["train_model"].outputs["model"][0].load()
    assert model.model.config.num_hidden_layers == 1
    assert len(model.model.bert.encoder.layer) == 1
    onnx_model = steps["convert_model"].outputs["onnx_model"][0].load()
    assert onnx_layers(onnx_model.model_path) == {0}


def test_the_first_run_is_promoted(trained):
    _, first = trained
    assert first["model"]["created"] is True
    assert first["promotion"] == {
        "promoted": True,
        "stage": "production",
        "reason": "all gates passed",
    }
    production = Client().get_model_version("tiny-bbc", "production")
    assert production.name == first["model"]["version"]


@pytest.mark.integration
def test_a_one_byte_change_reruns_from_load_data_and_a_worse_model_is_not_promoted(
    trained, rerun, train_dir, tiny_bert_path
):
    _, first = trained
    changed = train_dir / "changed"
    changed.mkdir()
    frame = pd.read_csv(train_dir / "bbc.csv")
    frame.loc[0, "article"] += "!"  # one byte more in one article
    frame.to_csv(changed / "bbc.csv", index=False)
    # Beating production by half a point of macro-F1 is out of reach: this run is "worse".
    config = tiny_config(changed, "tiny-bbc", promotion={"min_delta": 0.5}, hpo=ONE_LAYER)

    result, second = invoke(
        changed, str(changed / "bbc.csv"), tiny_bert_path, config, *TRAIN_COLUMNS
    )

    assert result.exit_code == 0, result.output
    # Exactly what depends on the change runs again: a step is cached when, and only when,
    # its inputs have the content they had (a changed validation text, say, trains the same
    # model again, whose benchmark then comes from the cache).
    before = input_hashes(first["run_id"])
    after = input_hashes(second["run_id"])
    for name, step in second["steps"].items():
        if name not in ALWAYS_RUN:
            assert step["cached"] == (after[name] == before[name]), name
    assert not any(second["steps"][name]["cached"] for name in ("validate_data", "split_data"))
    assert second["model"]["created"] and second["model"]["version"] != first["model"]["version"]
    assert second["promotion"]["promoted"] is False
    assert second["promotion"]["reason"].startswith("beats_production: macro_f1")
    assert f"vs production version {first['model']['version']}" in second["promotion"]["reason"]
    production = Client().get_model_version("tiny-bbc", "production")
    assert production.name == first["model"]["version"]
    metadata = Client().get_model_version("tiny-bbc", second["model"]["version"]).run_metadata
    assert metadata["promotion"]["reason"] == second["promotion"]["reason"]
    # Changed data: a study of its own, with its own 3 trials.
    assert second["hpo"]["study_name"] != first["hpo"]["study_name"]
    assert sum(second["hpo"]["trials"].values()) == 3


@pytest.mark.integration
def test_a_gate_that_lets_other_variants_through_registers_a_new_version_of_the_same_model(
    trained, train_dir, tiny_bert_path
):
    _, first = trained
    # The tiny model's int8 variants pass a gate of 1 and fail one of -1 (fp32's never fail).
    everything = {str(variant) for variant in VARIANT_ARTIFACTS}
    max_drop = -1.0 if set(first["onnx"]["deployable"]) == everything else 1.0
    regated = train_dir / "regated"
    regated.mkdir()
    config = tiny_config(regated, "tiny-bbc", promotion={"min_delta": 0.5}, hpo=ONE_LAYER)
    parameters = yaml.safe_load(config.read_text())
    # The first run's study, so that its choice, and so the trained model, come from the cache.
    parameters["parameters"]["hpo"]["storage"] = f"sqlite:///{train_dir / 'optuna.db'}"
    parameters["parameters"]["quantization"] = {"max_metric_drop": max_drop}
    config.write_text(yaml.safe_dump(parameters))

    result, second = invoke(
        regated, str(train_dir / "bbc.csv"), tiny_bert_path, config, *TRAIN_COLUMNS
    )

    assert result.exit_code == 0, result.output
    assert (
        second["steps"]["train_model"]["cached"] and not second["steps"]["quantize_model"]["cached"]
    )
    assert set(second["onnx"]["deployable"]) != set(first["onnx"]["deployable"])
    assert second["model"]["created"] and second["model"]["version"] != first["model"]["version"]
    client = Client()
    earlier = client.get_model_version("tiny-bbc", first["model"]["version"]).run_metadata
    later = client.get_model_version("tiny-bbc", second["model"]["version"]).run_metadata
    assert later[MODEL_ARTIFACT_KEY] == earlier[MODEL_ARTIFACT_KEY]  # the same weights
    assert earlier["onnx"]["deployable"] == first["onnx"]["deployable"]  # unchanged
    assert later["onnx"]["deployable"] == second["onnx"]["deployable"]
    assert client.get_model_version("tiny-bbc", "production").name == first["model"]["version"]


def test_training_run_completes_and_writes_the_summary(trained):
    result, summary = trained
    assert result.exit_code == 0, result.output
    assert summary["status"] == "completed"
    assert summary["error"] is None
    assert summary["stack"] == "local"
    assert summary["model"]["name"] == "tiny-bbc"
    assert summary["model"]["version"]
    assert set(summary["metrics"]) == {"accuracy", "macro_f1"}
    assert set(summary["baseline_metrics"]) == {"accuracy", "macro_f1"}
    assert 0.0 <= summary["metrics"]["macro_f1"] <= 1.0
    for name in ("model", "tokenized_dataset", "validation_report", "model_evaluation"):
        assert summary["artifacts"][name]
    assert f"Model: tiny-bbc version {summary['model']['version']}" in result.output


def test_summary_names_the_onnx_variants_and_the_benchmark(trained):
    _, summary = trained
    onnx = summary["onnx"]
    assert list(onnx["variants"]) == [str(variant) for variant in OnnxVariant]
    for variant, artifact in VARIANT_ARTIFACTS.items():
        assert onnx["variants"][variant]["uri"] == summary["artifacts"][artifact]
    assert {"fp32", "fp32-optimized"} <= set(onnx["deployable"])
    assert onnx["summary"].startswith("deployable: fp32, fp32-optimized")
    assert set(summary["benchmark"]) == {"pytorch_fp32", *(f"onnx_{v}" for v in OnnxVariant)}
    for figures in summary["benchmark"].values():
        assert figures["latency_ms_p95"] >= figures["latency_ms_p50"] > 0
        assert figures["throughput"] > 0


def test_model_version_carries_the_onnx_variants_and_the_benchmark(trained):
    _, summary = trained
    version = Client().get_model_version("tiny-bbc", summary["model"]["version"])
    metadata = version.run_metadata
    for variant, artifact in VARIANT_ARTIFACTS.items():
        stored = version.get_model_artifact(artifact)
        assert stored.uri == summary["onnx"]["variants"][variant]["uri"]
        assert stored.load().variant == variant
        recorded = metadata["onnx"]["variants"][variant]
        assert recorded["sha256"] == stored.run_metadata["sha256"]
        assert recorded["test_metrics"] == summary["onnx"]["variants"][variant]["test_metrics"]
    quantization_report = version.get_artifact("quantization_report").load()
    assert [str(v) for v in quantization_report.deployable] == summary["onnx"]["deployable"]
    assert metadata["onnx"]["deployable"] == summary["onnx"]["deployable"]
    assert version.get_artifact("benchmark_report").load().figures() == summary["benchmark"]
    assert metadata["benchmark"] == summary["benchmark"]
    for artifact in ("onnx_model", "onnx_model_optimized"):
        parity = version.get_model_artifact(artifact).run_metadata["parity_max_logit_difference"]
        assert parity <= 1e-4


def test_model_version_carries_metrics_and_the_model_artifact(trained):
    _, summary = trained
    version = Client().get_model_version("tiny-bbc", summary["model"]["version"])
    metadata = version.run_metadata
    assert metadata["test_metrics"] == summary["metrics"]
    assert metadata["baseline_test_metrics"] == summary["baseline_metrics"]
    assert set(metadata["per_class"]) == {"business", "entertainment", "politics", "sports", "tech"}
    model_artifact = version.get_model_artifact("model")
    assert model_artifact is not None
    loaded = model_artifact.load()
    assert loaded.label_names == sorted(metadata["per_class"])
    assert version.get_artifact("model_evaluation") is not None


def test_train_step_logged_params_metrics_and_model_to_mlflow(trained):
    _, summary = trained
    run_response = Client().get_pipeline_run(summary["run_id"])
    train_step = run_response.steps["train_model"]
    tracker = Client().active_stack.experiment_tracker
    mlflow_client = mlflow.MlflowClient(tracking_uri=tracker.get_tracking_uri())
    mlflow_run = mlflow_client.get_run(train_step.run_metadata["mlflow_run_id"])
    selected_learning_rate = summary["hpo"]["best_params"]["learning_rate"]
    assert float(mlflow_run.data.params["learning_rate"]) == pytest.approx(selected_learning_rate)
    assert "eval_macro_f1" in mlflow_run.data.metrics
    logged = mlflow_client.list_artifacts(mlflow_run.info.run_id, "model")
    assert "model/model.safetensors" in {item.path for item in logged}


def test_benchmark_step_logged_its_figures_to_mlflow(trained):
    _, summary = trained
    run_response = Client().get_pipeline_run(summary["run_id"])
    benchmark_step = run_response.steps["benchmark_model"]
    tracker = Client().active_stack.experiment_tracker
    mlflow_client = mlflow.MlflowClient(tracking_uri=tracker.get_tracking_uri())
    mlflow_run = mlflow_client.get_run(benchmark_step.run_metadata["mlflow_run_id"])
    logged = mlflow_run.data.metrics
    for runtime, figures in summary["benchmark"].items():
        assert logged[f"{runtime}_latency_ms_p95"] == pytest.approx(figures["latency_ms_p95"])
        assert logged[f"{runtime}_speedup_batched"] == pytest.approx(figures["speedup_batched"])


def test_no_artifact_falls_back_to_cloudpickle(trained):
    _, summary = trained
    run_response = Client().get_pipeline_run(summary["run_id"])
    materializers = {
        name: version.materializer.import_path
        for step_run in run_response.steps.values()
        for name, versions in step_run.outputs.items()
        for version in versions
    }
    assert len(materializers) >= 10
    pickled = {name: path for name, path in materializers.items() if "cloudpickle" in path.lower()}
    assert not pickled
    assert materializers["model"].endswith("FineTunedModelMaterializer")
    assert materializers["tokenized_dataset"].endswith("TokenizedDatasetMaterializer")
    assert materializers["validation_report"].endswith("ValidationReportMaterializer")
    assert materializers["onnx_model"].endswith("OnnxModelMaterializer")
    assert materializers["onnx_model_int8"].endswith("OnnxModelMaterializer")
    assert materializers["benchmark_report"].endswith("BenchmarkReportMaterializer")


def _csv(frame: pd.DataFrame, tmp: Path) -> str:
    frame.to_csv(tmp / "data.csv", index=False)
    return str(tmp / "data.csv")


def _empty_file(frame: pd.DataFrame, tmp: Path) -> str:
    (tmp / "data.csv").write_text("")
    return str(tmp / "data.csv")


def _latin1_file(frame: pd.DataFrame, tmp: Path) -> str:
    (tmp / "data.csv").write_bytes(
        frame.to_csv(index=False).encode() + b"caf\xe9 au lait,business\n"
    )
    return str(tmp / "data.csv")


def _text_in_train_and_test(frame: pd.DataFrame, tmp: Path) -> str:
    folder = tmp / "splits"
    folder.mkdir()
    parts = [frame.iloc[i::3] for i in range(3)]
    parts[2] = pd.concat([parts[2], parts[0].head(1)])  # one training text also in test
    for name, part in zip(("train", "validation", "test"), parts, strict=True):
        part.to_csv(folder / f"{name}.csv", index=False)
    return str(folder)


def _with_blank_texts(frame: pd.DataFrame, tmp: Path) -> str:
    frame.loc[:2, "text"] = "   "
    return _csv(frame, tmp)


def _with_null_labels(frame: pd.DataFrame, tmp: Path) -> str:
    frame.loc[:1, "label"] = None
    return _csv(frame, tmp)


# case: (writes the source and returns its path, validation settings, words the error must hold)
BAD_DATA = {
    "missing text column": (lambda f, t: _csv(f.rename(columns={"text": "body"}), t), {}, "text"),
    "missing label column": (lambda f, t: _csv(f.drop(columns="label"), t), {}, "label"),
    "blank texts": (_with_blank_texts, {}, "3 rows have a blank text"),
    "null labels": (_with_null_labels, {}, "label_not_null"),
    "label outside the declared set": (
        _csv,
        {"labels": ["business", "entertainment", "politics", "sports"]},
        "'tech'",
    ),
    "a single class": (lambda f, t: _csv(f.assign(label="sports"), t), {}, "'sports'"),
    "a class below the minimum count": (
        lambda f, t: _csv(pd.concat([f[f.label != "tech"], f[f.label == "tech"].head(2)]), t),
        {},
        "'tech' has 2 examples",
    ),
    "the same text in train and test": (_text_in_train_and_test, {}, "more than one split"),
    "an empty file": (_empty_file, {}, "empty"),
    "a file that is not UTF-8": (_latin1_file, {}, "not valid UTF-8"),
    "a path that does not exist": (lambda f, t: str(t / "missing.csv"), {}, "does not exist"),
}


# One case in the fast tier; the rest (a pipeline run each) in the integration tier.
FAST_CASE = "blank texts"


@pytest.mark.parametrize(
    "case",
    [
        case if case == FAST_CASE else pytest.param(case, marks=pytest.mark.integration)
        for case in sorted(BAD_DATA)
    ],
)
def test_bad_data_stops_at_validation(case, tmp_path, bbc_slice, tiny_bert_path):
    make_source, validation, cause = BAD_DATA[case]
    model_name = "bad-data-" + case.replace(" ", "-").replace("'", "")
    source = make_source(bbc_slice.copy(), tmp_path)
    config = tiny_config(tmp_path, model_name, **validation)
    result, summary = invoke(tmp_path, source, tiny_bert_path, config)

    assert result.exit_code == 1
    assert summary["status"] == "failed"
    assert "DataValidationError" in summary["error"]
    assert cause in summary["error"]
    run_response = Client().get_pipeline_run(summary["run_id"])
    assert run_response.steps["validate_data"].status.value == "failed"
    assert "train_model" not in run_response.steps
    assert not Client().list_models(name=model_name).items


@pytest.mark.integration
def test_a_run_killed_during_training_resumes_from_its_last_checkpoint(
    tmp_path, bbc_slice, tiny_bert_path
):
    """SIGKILL once the first epoch checkpoint is stored; the same command then resumes."""
    bbc_slice.to_csv(tmp_path / "bbc.csv", index=False)
    config = tiny_config(tmp_path, "tiny-killed", hpo={"n_trials": 0})
    parameters = yaml.safe_load(config.read_text())
    parameters["parameters"]["training"].update(epochs=8, early_stopping_patience=8)
    config.write_text(yaml.safe_dump(parameters))
    command = [
        *(sys.executable, "run.py", "--data", str(tmp_path / "bbc.csv")),
        *("--model", str(tiny_bert_path), "--config", str(config)),
    ]
    # In the artifact store of the stack run.py runs on (under the tests' ZenML config).
    stores = Path(os.environ["ZENML_CONFIG_PATH"])
    pattern = "**/stackport-checkpoints/train_model-*"
    before = set(stores.glob(pattern))
    with (tmp_path / "killed.log").open("w") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 600
        saved = []
        while not saved and process.poll() is None and time.monotonic() < deadline:
            folders = set(stores.glob(pattern)) - before
            saved = [c for f in folders for c in f.glob("checkpoint-*/trainer_state.json")]
            time.sleep(0.1)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert saved, (tmp_path / "killed.log").read_text()[-3000:]
    (folder,) = set(stores.glob(pattern)) - before

    summary_file = tmp_path / "summary.json"
    again = subprocess.run(
        [*command, "--summary", str(summary_file)],
        cwd=REPO_ROOT,
        env={**os.environ, "ZENML_LOGGING_VERBOSITY": "INFO"},  # the steps' log lines
        capture_output=True,
        text=True,
        timeout=900,
    )

    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    output = again.stdout + again.stderr
    assert "Resuming training from checkpoint-" in output
    summary = json.loads(summary_file.read_text())
    assert summary["status"] == "completed" and summary["model"]["created"]
    assert not folder.exists()  # removed once the model artifact was stored
