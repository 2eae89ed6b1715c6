"""`deployment.target: azureml`: `run.py --pipeline deploy` to an AzureML managed online endpoint.

THE ONE MOCKED BOUNDARY is `MLClient`, the AzureML SDK's client of AzureML's REST API (Azure is
unreachable here): `tests.azure_simulation.SimulatedMLClient` keeps every entity the SDK would
send (as the SDK serializes it), copies what the SDK would upload (the model folder, the code
folder), builds each environment from its conda file's pip packages in a virtual environment of
its own, and runs each deployment as AzureML's images do: its code folder's scoring script
under the real AzureML inference server (`azmlinfsrv`, PyPI `azureml-inference-server-http`),
with the registered model's files in AZUREML_MODEL_DIR. Everything else is real: run.py, the
ZenML store and its model versions, the artifact store, the ONNX models (tiny random BERTs).

Here the stack is `local`, so the model files come from the local artifact store and are
uploaded; tests/test_azure_simulation.py deploys from the emulated blob container in place.

1. Compile: what `run.py` sent for versions 1 and 2 of a model: names, versions, instance
   settings, the environment's packages, the code folder, key auth, and the rollout's order.
2. Execute: each task's captured code folder and registered model files under a real
   `azmlinfsrv`: predictions equal `OnnxPredictor`'s; bad requests get a 4xx naming the problem;
   each scored text is in the served-input log, under the version's name.
3. A failed smoke test keeps the previous deployment serving and names the cause.
"""

import json
import os
import secrets
import time
import urllib.error
import urllib.request
from functools import partial
from pathlib import Path
from unittest import mock

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner
from zenml import Model, link_artifact_to_model, log_metadata, save_artifact
from zenml.client import Client
from zenml.utils import source_utils

import pipelines.azureml_endpoint
import run
from materializers.onnx_model import OnnxModelMaterializer
from stackport.core.settings import OnnxVariant
from stackport.core.sources import runtime_imports
from stackport.inference.onnx_model import OnnxModel
from stackport.inference.predictor import OnnxPredictor
from stackport.monitoring.served_inputs import log_files
from stackport.release.registration import VARIANT_ARTIFACTS
from stackport.serving.azureml import SCORING_ENTRY_MODULE, SMOKE_TEXTS
from stackport.serving.bento import service_sources
from stackport.serving.request_log import LOG_SCHEMA
from tests import test_serving
from tests.azure_simulation import SimulatedMLClient, inference_server
from tests.helpers import derived_variants, tiny_onnx_model
from tests.test_serving import BAD_REQUESTS, LIMITS, scores, without_scores

pytestmark = pytest.mark.integration
# The bento tests' fixtures: each task (a module-scoped parameter), its tiny model and texts.
task = test_serving.task
texts = test_serving.texts
onnx_model = test_serving.onnx_model
ner_sentences = test_serving.ner_sentences

REPO_ROOT = Path(__file__).resolve().parents[1]
MODEL_NAME = "tiny-endpoint"
WORKSPACE = {
    "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
    "AZURE_RESOURCE_GROUP": "stackport-simulation",
    "AZURE_WORKSPACE": "stackport-simulation",
}
# A credential in the environment that nothing may carry into an entity, a record or a log.
SECRET_VARIABLE = "AZURE_CLIENT_SECRET"
AZUREML = {
    "instance_type": "Standard_F2s_v2",
    "instance_count": 2,
    "request_timeout_ms": 9000,
    "liveness_probe": {"period_s": 7, "failure_threshold": 5},
}
SCORING_PACKAGES = {"onnxruntime", "tokenizers", "numpy", "pydantic", "pyarrow", "fsspec"}
TORCH_FREE_FOLDERS = ("stackport/core/", "stackport/inference/", "stackport/tasks/")
TORCH_FREE_SERVING = {
    "stackport/__init__.py",
    "stackport/serving/__init__.py",
    "stackport/serving/azureml_entry.py",
    "stackport/serving/scoring.py",
    "stackport/serving/request_checks.py",
    "stackport/serving/request_log.py",
}
INFERENCE_SERVER = "azureml-inference-server-http"


@pytest.fixture(scope="module", autouse=True)
def source_root():
    """ZenML resolves step sources relative to the repository, not pytest's main module."""
    source_utils.set_custom_source_root(str(REPO_ROOT))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """The simulated workspace's folder (its state and the log of calls)."""
    return tmp_path_factory.mktemp("azureml-workspace")


def register(model_name: str, fp32: OnnxModel, tiny_bert_path: Path, directory: Path) -> str:
    """A new version of `model_name` with `fp32` and its other variants; only fp32 deployable."""
    client = Client()
    try:
        client.get_model(model_name)
    except KeyError:
        client.create_model(name=model_name)
    number = client.create_model_version(model_name).name
    recorded = {}
    for variant in [fp32, *derived_variants(fp32, tiny_bert_path, directory)]:
        name = VARIANT_ARTIFACTS[variant.variant]
        artifact = save_artifact(variant, name, materializer=OnnxModelMaterializer)
        link_artifact_to_model(artifact, model=Model(name=model_name, version=number))
        recorded[str(variant.variant)] = {"artifact": str(name), "test_metrics": {"macro_f1": 0.3}}
    onnx = {"deployable": [str(OnnxVariant.FP32)], "variants": recorded}
    log_metadata({"onnx": onnx}, model_name=model_name, model_version=number)
    return number


def run_py(workspace: Path, config: dict, *arguments: str, secret: str = "") -> tuple[int, str]:
    """`python run.py --stack local ARGUMENTS` with `config` and `MLClient` simulated."""
    config_file = workspace / f"config-{secrets.token_hex(4)}.yaml"
    config_file.write_text(yaml.safe_dump(config))
    environment = WORKSPACE | {SECRET_VARIABLE: secret}
    simulated = partial(SimulatedMLClient, workspace)
    with (
        mock.patch.dict(os.environ, environment),
        mock.patch.object(pipelines.azureml_endpoint, "MLClient", simulated),
    ):
        result = CliRunner().invoke(
            run.main,
            ["--stack", "local", "--config", str(config_file), *arguments],
            catch_exceptions=False,
        )
    return result.exit_code, result.output


def deploy(workspace: Path, model_name: str, version: str, service=None, **settings) -> tuple:
    """`run.py --pipeline deploy` of one version to the endpoint, as configured here."""
    config = {
        "parameters": {
            "service": service or {"limits": LIMITS},
            "deployment": {"target": "azureml", "azureml": AZUREML | settings},
        }
    }
    return run_py(
        workspace,
        config,
        *("--pipeline", "deploy", "--model-name", model_name, "--model-version", version),
        secret=SECRET,
    )


SECRET = secrets.token_urlsafe(24)


def calls(workspace: Path) -> list[dict]:
    """Every call of the simulated workspace, in order: `{"call": ..., "entity": ...}`."""
    lines = (workspace / "workspace" / "calls.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def state(workspace: Path) -> dict:
    return json.loads((workspace / "workspace" / "state.json").read_text())


@pytest.fixture(scope="module")
def rollouts(workspace: Path, tiny_bert_path, bbc_slice, tmp_path_factory) -> dict:
    """Versions 1 and 2 of a classifier deployed in turn; then version 3, whose smoke test fails.

    Version 3's settings allow texts of at most 20 characters, fewer than the smoke test sends.
    """
    labels = sorted(bbc_slice["label"].unique())
    outcomes = {}
    for seed in (1, 2, 3):
        directory = tmp_path_factory.mktemp("onnx")
        model = tiny_onnx_model(tiny_bert_path, labels, directory / "fp32", seed=seed)
        version = register(MODEL_NAME, model, tiny_bert_path, directory)
        before = len(calls(workspace)) if (workspace / "workspace" / "calls.jsonl").is_file() else 0
        service = {"limits": {**LIMITS, "max_text_chars": 20}} if seed == 3 else None
        exit_code, output = deploy(workspace, MODEL_NAME, version, service=service)
        outcomes[version] = {
            "exit_code": exit_code,
            "output": output,
            "calls": calls(workspace)[before:],
            "model": model,
            "metadata": Client().get_model_version(MODEL_NAME, version).run_metadata,
        }
    return outcomes


def only(found: list[dict], call: str) -> list[dict]:
    return [entry["entity"] for entry in found if entry["call"] == call]


def test_online_endpoint_compile_registers_the_model_named_and_versioned_after_the_version(
    rollouts,
):
    for version in ("1", "2"):
        (model,) = only(rollouts[version]["calls"], "models.create_or_update")
        assert (model["name"], model["version"], model["type"]) == (
            MODEL_NAME,
            version,
            "custom_model",
        )
        assert model["tags"] == {
            "model": MODEL_NAME,
            "model_version": version,
            "task": "classification",
        }
        # Local stack: the SDK uploads the version's ONNX artifact, read from the artifact store.
        registered = OnnxModel.load(model["path"])
        assert registered.file_sha256 == rollouts[version]["model"].file_sha256
        assert registered.label_names == rollouts[version]["model"].label_names


def test_online_endpoint_compile_environment_holds_only_the_pinned_scoring_packages(rollouts):
    (environment,) = only(rollouts["1"]["calls"], "environments.create_or_update")
    dependencies = environment["conda_file"]["dependencies"]
    (pip,) = [dependency["pip"] for dependency in dependencies if isinstance(dependency, dict)]
    pinned = dict(requirement.split("==") for requirement in pip)

    assert environment["image"].startswith("mcr.microsoft.com/azureml/minimal-")
    assert "python=3.11" in dependencies
    assert set(pinned) == SCORING_PACKAGES | {INFERENCE_SERVER}
    assert all(pinned.values())
    assert not [name for name in pinned if name in ("torch", "transformers", "optimum")]
    # Version 2 reuses the registered environment: the same packages, the same version.
    assert only(rollouts["2"]["calls"], "environments.create_or_update") == []


def test_online_endpoint_compile_code_folder_holds_the_torch_free_scoring_modules(
    rollouts, workspace
):
    (deployment,) = only(rollouts["2"]["calls"], "online_deployments.begin_create_or_update")
    uploaded = Path(state(workspace)["deployments"]["tiny-endpoint"][deployment["name"]]["folder"])
    code = uploaded / "app" / "code"
    files = {str(path.relative_to(code)) for path in code.rglob("*") if path.is_file()}

    assert (
        deployment["code_configuration"]["scoring_script"] == "stackport/serving/azureml_entry.py"
    )
    expected = {str(path) for path in service_sources("classification", SCORING_ENTRY_MODULE)}
    assert files == expected | {"configs/scoring.json"}
    assert {name for name in files if "/tasks/" in name} == {
        "stackport/tasks/__init__.py",
        "stackport/tasks/classification/__init__.py",
        "stackport/tasks/classification/infer.py",
    }
    for name in files - {"configs/scoring.json"}:
        imported = {module.split(".")[0] for module in runtime_imports((code / name).read_text())}
        assert not imported & {"torch", "transformers", "optimum", "zenml"}, name
        assert name.startswith(TORCH_FREE_FOLDERS) or name in TORCH_FREE_SERVING, name
    config = json.loads((code / "configs" / "scoring.json").read_text())
    assert (config["model_name"], config["model_version"]) == (MODEL_NAME, "2")
    assert config["service"]["limits"] == LIMITS
    # No served-input log configured: none, and no storage settings in the deployment.
    assert config["service"]["request_log"]["path"] is None
    assert deployment["environment_variables"] == {}


def test_online_endpoint_compile_endpoint_has_key_auth_and_the_deployment_its_settings(rollouts):
    (endpoint,) = only(rollouts["1"]["calls"], "online_endpoints.begin_create_or_update")[:1]
    (deployment,) = only(rollouts["2"]["calls"], "online_deployments.begin_create_or_update")

    assert endpoint["name"] == "tiny-endpoint"
    assert endpoint["auth_mode"] == "key"
    assert deployment["endpoint_name"] == "tiny-endpoint"
    assert deployment["name"].startswith("v2-")
    assert deployment["model"] == f"azureml:{MODEL_NAME}:2"
    assert deployment["environment"].startswith(f"azureml:{MODEL_NAME}-scoring:")
    assert deployment["type"] == "managed"
    assert deployment["instance_type"] == "Standard_F2s_v2"
    assert deployment["instance_count"] == 2
    assert deployment["request_settings"]["request_timeout_ms"] == 9000
    assert deployment["liveness_probe"]["period"] == 7
    assert deployment["liveness_probe"]["failure_threshold"] == 5
    assert deployment["readiness_probe"]["period"] == 10  # the default
    assert deployment["scale_settings"] == {"type": "default"}


def test_online_endpoint_compile_rolls_out_at_zero_then_smoke_tests_then_takes_all_traffic(
    rollouts,
):
    first = only(rollouts["1"]["calls"], "online_deployments.begin_create_or_update")[0]["name"]
    second_calls = rollouts["2"]["calls"]
    second = only(second_calls, "online_deployments.begin_create_or_update")[0]["name"]
    steps = [
        (entry["call"], entry["entity"].get("traffic") or entry["entity"].get("deployment"))
        for entry in second_calls
        if entry["call"].startswith("online_")
    ]

    assert steps == [
        ("online_deployments.begin_create_or_update", None),
        ("online_endpoints.begin_create_or_update", {first: 100, second: 0}),
        ("online_endpoints.invoke", second),
        ("online_endpoints.begin_create_or_update", {first: 0, second: 100}),
        ("online_deployments.begin_delete", None),
    ]
    assert second_calls[-1]["entity"] == {"name": first, "endpoint": "tiny-endpoint"}
    assert rollouts["2"]["exit_code"] == 0, rollouts["2"]["output"]
    assert f"replaced {first}" in rollouts["2"]["output"]


def test_online_endpoint_compile_records_the_endpoint_on_the_version_without_a_key(
    rollouts, workspace
):
    recorded = rollouts["2"]["metadata"]["deployment"]
    second = only(rollouts["2"]["calls"], "online_deployments.begin_create_or_update")[0]["name"]

    assert recorded["endpoint"] == "tiny-endpoint"
    assert recorded["scoring_uri"] == "https://tiny-endpoint.simulated.inference.ml.azure.com/score"
    assert recorded["deployment"] == second
    assert recorded["traffic"] == {second: 100}
    assert "key" not in json.dumps(recorded).lower()
    # The endpoint's keys were never asked for, and no credential went anywhere.
    everything = (workspace / "workspace" / "calls.jsonl").read_text() + json.dumps(
        state(workspace)
    )
    everything += "".join(outcome["output"] for outcome in rollouts.values())
    assert "get_keys" not in everything
    assert SECRET not in everything
    assert "Authorization: Bearer $KEY" in rollouts["2"]["output"]


def test_online_endpoint_failed_smoke_test_keeps_the_old_deployment_and_names_the_cause(
    rollouts, workspace
):
    failed = rollouts["3"]
    second = only(rollouts["2"]["calls"], "online_deployments.begin_create_or_update")[0]["name"]
    third = only(failed["calls"], "online_deployments.begin_create_or_update")[0]["name"]
    endpoint = state(workspace)["endpoints"]["tiny-endpoint"]

    assert failed["exit_code"] == 1
    assert (
        f"Deployment {third} on endpoint tiny-endpoint failed: its smoke test failed"
        in (failed["output"])
    )
    assert "String should have at most 20 characters" in failed["output"]
    assert f"{second} keeps serving; {third} was deleted" in failed["output"]
    assert endpoint["traffic"] == {second: 100}
    assert list(state(workspace)["deployments"]["tiny-endpoint"]) == [second]
    # Version 3 records no deployment; version 2's record stands.
    assert "deployment" not in failed["metadata"]


def test_online_endpoint_undeploy_deletes_the_endpoint(rollouts, workspace):
    config = {"parameters": {"deployment": {"target": "azureml"}}}
    arguments = ("--pipeline", "undeploy", "--model-name", MODEL_NAME)

    exit_code, output = run_py(workspace, config, *arguments)
    again_code, again = run_py(workspace, config, *arguments)

    assert exit_code == 0, output
    assert "Deleted AzureML endpoint tiny-endpoint" in output
    assert "tiny-endpoint" not in state(workspace)["endpoints"]
    assert again_code == 0 and "does not exist: nothing to delete" in again


def test_online_endpoint_missing_workspace_settings_are_one_error_before_anything_is_created(
    rollouts, workspace, tmp_path
):
    config = {"parameters": {"deployment": {"target": "azureml"}}}
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    calls_before = (workspace / "workspace" / "calls.jsonl").read_text()
    environment = {name: "" for name in WORKSPACE}
    with (
        mock.patch.dict(os.environ, environment),
        mock.patch.object(
            pipelines.azureml_endpoint, "MLClient", partial(SimulatedMLClient, workspace)
        ),
    ):
        result = CliRunner().invoke(
            run.main,
            ["--stack", "local", "--config", str(config_file), "--pipeline", "deploy"]
            + ["--model-name", MODEL_NAME, "--model-version", "2"],
        )

    assert result.exit_code == 1
    assert "AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP, AZURE_WORKSPACE are unset" in result.output
    assert (workspace / "workspace" / "calls.jsonl").read_text() == calls_before


def test_online_endpoint_pinned_variant_the_gate_refused_is_one_error_before_anything_is_created(
    rollouts, workspace
):
    calls_before = (workspace / "workspace" / "calls.jsonl").read_text()

    exit_code, output = deploy(
        workspace, MODEL_NAME, "2", service={"limits": LIMITS, "runtime": "dynamic-int8"}
    )

    assert exit_code == 1
    assert "service.runtime pins dynamic-int8, which version 2" in output
    assert "the accuracy gate let through fp32." in output
    assert (workspace / "workspace" / "calls.jsonl").read_text() == calls_before


# Execute: each task's captured code folder and model files under the real inference server.


@pytest.fixture(scope="module")
def score_log(task, tmp_path_factory) -> Path:
    """The folder the task's scoring script logs its served inputs to."""
    return tmp_path_factory.mktemp(f"score-log-{task}")


@pytest.fixture(scope="module")
def score_url(task, onnx_model, workspace, tiny_bert_path, score_log, tmp_path_factory):
    """The task's version deployed; then its captured code and model under `azmlinfsrv`."""
    model_name = f"tiny-score-{task}"
    version = register(model_name, onnx_model, tiny_bert_path, tmp_path_factory.mktemp("variants"))
    request_log = {"path": str(score_log), "max_file_seconds": 0.25}
    service = {"limits": LIMITS, "request_log": request_log}
    exit_code, output = deploy(workspace, model_name, version, service)
    assert exit_code == 0, output
    endpoint = model_name
    (deployment,) = state(workspace)["deployments"][endpoint].values()
    folder = Path(deployment["folder"])
    entry = folder / "app" / "code" / deployment["entity"]["code_configuration"]["scoring_script"]
    server = inference_server(
        Path(deployment["python"]),
        entry,
        Path(deployment["model_dir"]),
        tmp_path_factory.mktemp(f"azmlinfsrv-{task}"),
        "azmlinfsrv",
    )
    try:
        server.wait_until_up(120)
        yield server.url
    finally:
        server.stop()


def post(url: str, body: bytes, headers: dict) -> tuple[int, str]:
    request = urllib.request.Request(f"{url}score", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_online_endpoint_execute_predictions_equal_the_inference_module(
    score_url, onnx_model, texts
):
    served = []
    for start in range(0, len(texts), LIMITS["max_texts"]):
        body = json.dumps({"texts": texts[start : start + LIMITS["max_texts"]]}).encode()
        status, answer = post(score_url, body, {"Content-Type": "application/json"})
        assert status == 200, answer
        served += json.loads(answer)

    expected = [p.model_dump(mode="json") for p in OnnxPredictor(onnx_model).predict(texts)]
    assert without_scores(served) == without_scores(expected)
    assert scores(served) == pytest.approx(scores(expected), abs=1e-5)
    assert scores(expected)


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_online_endpoint_execute_bad_requests_get_4xx_naming_the_problem(score_url, case):
    body, headers, status, words = BAD_REQUESTS[case]

    answered, text = post(score_url, body, headers)

    assert answered == status, text
    assert words in text


def test_online_endpoint_execute_liveness_and_readiness_answer(score_url):
    # AzureML probes the inference server's `GET /` for both; it answers once init() ran.
    with urllib.request.urlopen(score_url, timeout=10) as response:
        assert (response.status, response.read().decode()) == (200, "Healthy")
    body = json.dumps({"texts": SMOKE_TEXTS}).encode()
    status, answer = post(score_url, body, {"Content-Type": "application/json"})
    assert status == 200 and len(json.loads(answer)) == 1


def test_online_endpoint_execute_logs_every_scored_text_for_the_monitor(score_url, score_log, task):
    sent = [f"{number}: a text the monitor reads back" for number in range(LIMITS["max_texts"])]
    body = json.dumps({"texts": sent}).encode()
    status, answer = post(score_url, body, {"Content-Type": "application/json"})
    assert status == 200, answer

    deadline = time.monotonic() + 30
    while not set(sent) <= set(logged := logged_records(score_log)["text"]):
        assert time.monotonic() < deadline, f"{len(logged)} records in {score_log}"
        time.sleep(0.5)
    records = logged_records(score_log)
    assert set(records["model_name"]) == {f"tiny-score-{task}"}
    assert len(set(records["model_version"])) == 1
    ours = records[records["text"].isin(sent)]
    assert len(ours) == len(sent) and (ours["tokens"] > 0).all()


def logged_records(folder: Path):
    """Every record in the served-input log's complete files."""
    _, files = log_files(str(folder))
    tables = [pq.read_table(file, schema=LOG_SCHEMA) for file in files]
    return (pa.concat_tables(tables) if tables else LOG_SCHEMA.empty_table()).to_pandas()
