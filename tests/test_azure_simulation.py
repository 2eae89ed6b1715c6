"""The AzureML stack end to end, against a simulated Azure (tests/azure_simulation.py).

THE ONE MOCKED BOUNDARY is `MLClient`, the AzureML SDK's client of AzureML's REST API, which
ZenML's AzureML orchestrator uses to submit the pipeline job. The simulation keeps the job as
the SDK serializes it and runs each of its command components as a local process, in dependency
order, with the environment an AzureML job has. Everything else is real and started here, on
127.0.0.1 and free ports: a ZenML server (OAuth2 login; the client and every step talk to it
over HTTP), Azurite (the Azure Storage emulator) as the blob container behind the `azure`
artifact store (through adlfs), and an `mlflow server` with a sqlite backend behind our
`azureml_mlflow` tracker's plain-http path.

One run of `run.py --pipeline train --stack azure` (the tiny BERT, 120 BBC articles, one epoch)
serves both proofs: the compile tests read the pipeline job it submitted, the execute tests what
its steps left in the ZenML server, the blob container and the MLflow server.
"""

import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml
from azure.storage.blob import BlobServiceClient
from azure_simulation import (
    ARTIFACT_DATASTORE,
    AZURITE_ACCOUNT,
    AZURITE_KEY,
    CLIENT_FILE,
    DEFAULT_ENVIRONMENTS,
    ENVIRONMENTS_VARIABLE,
    PIPELINE_JOB_FILE,
    SCHEDULES_DIR,
    SIMULATION_DIR_VARIABLE,
    WORKSPACE_DIR,
    LocalServer,
    SimulatedMLClient,
    azurite_command,
    azurite_connection_string,
    free_port,
    pipeline_dependencies,
    run_pipeline_job,
)
from mlflow import MlflowClient

from stackport.inference.onnx_model import OnnxModel
from stackport.inference.predictor import OnnxPredictor
from tests.helpers import tiny_config

REPO_ROOT = Path(__file__).resolve().parents[1]
SIMULATION_SCRIPT = REPO_ROOT / "tests" / "azure_simulation.py"
CONTAINER = "stackport"
IMAGE = "stackportsim.azurecr.io/stackport:simulation"
MODEL_NAME = "tiny-bbc-azure"
RUN_TIMEOUT_SECONDS = 900

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("node") is None,
        reason="node is not installed: the AzureML simulation stores blobs in Azurite, the "
        "Azure Storage emulator, which runs on Node.js (>= 20)",
    ),
]


def _base_environment(home: Path) -> dict[str, str]:
    """A clean environment: nothing of the test session's ZenML or Azure settings."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "ZENML_ANALYTICS_OPT_IN": "false",
        "ZENML_ENABLE_RICH_TRACEBACK": "false",
    }


@pytest.fixture(scope="module")
def simulated_azure(tmp_path_factory):
    """Azurite, an MLflow server and a ZenML server on 127.0.0.1, starting (`azure_run` waits)."""
    root = tmp_path_factory.mktemp("simulated-azure")
    for folder in ("azurite", "mlflow", "zenml-server", "logs"):
        (root / folder).mkdir()
    ports = SimpleNamespace(azurite=free_port(), mlflow=free_port(), zenml=free_port())
    password = secrets.token_urlsafe(16)
    zenml_server_env = _base_environment(root / "zenml-server") | {
        "ZENML_SERVER": "true",
        "ZENML_CONFIG_PATH": str(root / "zenml-server"),
        "ZENML_STORE_URL": f"sqlite:///{root / 'zenml-server' / 'zenml.db'}",
        "ZENML_SERVER_AUTO_ACTIVATE": "true",
        "ZENML_DEFAULT_USER_NAME": "default",
        "ZENML_DEFAULT_USER_PASSWORD": password,
    }
    servers = [
        LocalServer(
            "azurite",
            azurite_command(ports.azurite, root / "azurite"),
            f"http://127.0.0.1:{ports.azurite}/{AZURITE_ACCOUNT}?comp=list",
            root / "logs",
            _base_environment(root),
        ),
        LocalServer(
            "mlflow",
            [
                *(str(Path(sys.executable).parent / "mlflow"), "server"),
                *("--backend-store-uri", f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"),
                *("--artifacts-destination", str(root / "mlflow" / "artifacts")),
                *("--host", "127.0.0.1", "--port", str(ports.mlflow), "--workers", "1"),
            ],
            f"http://127.0.0.1:{ports.mlflow}/health",
            root / "logs",
            # Job execution would start six more worker processes, unused here.
            _base_environment(root / "mlflow") | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        ),
        LocalServer(
            "zenml-server",
            [
                *(sys.executable, "-m", "uvicorn", "zenml.zen_server.zen_server_api:app"),
                *("--host", "127.0.0.1", "--port", str(ports.zenml), "--log-level", "warning"),
            ],
            f"http://127.0.0.1:{ports.zenml}/health",
            root / "logs",
            zenml_server_env,
        ),
    ]
    try:
        yield SimpleNamespace(
            root=root,
            servers=servers,
            connection_string=azurite_connection_string(ports.azurite),
            mlflow_url=f"http://127.0.0.1:{ports.mlflow}",
            zenml_url=f"http://127.0.0.1:{ports.zenml}",
            zenml_password=password,
        )
    finally:
        for server in servers:
            server.stop()


def _client_environment(simulated_azure, home: Path) -> dict[str, str]:
    """The laptop's environment: logged in to the ZenML server, a fresh ZenML config."""
    return _base_environment(home) | {
        "ZENML_CONFIG_PATH": str(home / "zenml"),
        "ZENML_STORE_URL": simulated_azure.zenml_url,
        "ZENML_STORE_USERNAME": "default",
        "ZENML_STORE_PASSWORD": simulated_azure.zenml_password,
    }


@pytest.fixture(scope="module")
def azure_run(simulated_azure, request):
    """`run.py --pipeline train --stack azure` against the simulation, with its settings."""
    # The session's data and model fixtures are built while the servers start.
    bbc_slice: pd.DataFrame = request.getfixturevalue("bbc_slice")
    tiny_bert_path: Path = request.getfixturevalue("tiny_bert_path")
    for server in simulated_azure.servers:
        server.wait_until_up()
    blob_service = BlobServiceClient.from_connection_string(simulated_azure.connection_string)
    blob_service.create_container(CONTAINER)
    root = simulated_azure.root
    home = root / "laptop"
    home.mkdir()
    settings = {
        "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
        "AZURE_RESOURCE_GROUP": "stackport-simulation",
        "AZURE_WORKSPACE": "stackport-simulation",
        "AZURE_STORAGE_ACCOUNT": AZURITE_ACCOUNT,
        "AZURE_STORAGE_CONTAINER": CONTAINER,
        "AZURE_STORAGE_CONNECTION_STRING": simulated_azure.connection_string,
        "AZURE_CONTAINER_REGISTRY": "stackportsim",
        "STACKPORT_MLFLOW_TRACKING_URI": simulated_azure.mlflow_url,
    }
    env_file = home / "config.env"
    env_file.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
    data = home / "bbc.csv"
    bbc_slice.rename(columns={"text": "article", "label": "topic"}).to_csv(data, index=False)
    # Small and quick, as in test_training_pipeline.py; the search step runs but tries nothing.
    config_file = tiny_config(home, MODEL_NAME, hpo={"n_trials": 0})
    parameters = yaml.safe_load(config_file.read_text())["parameters"]
    jobs = root / "azureml"
    jobs.mkdir()
    summary_file = home / "summary.json"
    command = [
        *(sys.executable, str(SIMULATION_SCRIPT), "--pipeline", "train", "--stack", "azure"),
        *("--env-file", str(env_file), "--image", IMAGE, "--config", str(config_file)),
        *("--data", str(data), "--text-column", "article", "--label-column", "topic"),
        *("--model", str(tiny_bert_path), "--no-cache", "--summary", str(summary_file)),
    ]
    environment = _client_environment(simulated_azure, home) | {SIMULATION_DIR_VARIABLE: str(jobs)}
    result = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    (job_dir,) = [path for path in jobs.iterdir() if (path / PIPELINE_JOB_FILE).is_file()]
    summary = json.loads(summary_file.read_text())
    return SimpleNamespace(
        command=command,
        environment=environment,
        jobs=jobs,
        output=output,
        summary=summary,
        parameters=parameters,
        job_dir=job_dir,
        job_yaml=(job_dir / PIPELINE_JOB_FILE).read_text(),
        spec=yaml.safe_load((job_dir / PIPELINE_JOB_FILE).read_text()),
        client=json.loads((job_dir / CLIENT_FILE).read_text()),
        described=_describe_run(simulated_azure, home, summary["run_id"]),
        settings=settings,
    )


def _describe_run(simulated_azure, home: Path, run_id: str) -> dict:
    """`describe_run` in a process logged in to the ZenML server like the laptop."""
    script = (
        "import json, sys; sys.path.insert(0, 'tests'); from azure_simulation import "
        "describe_run; print(json.dumps(describe_run(sys.argv[1])))"
    )
    environment = _client_environment(simulated_azure, home) | {"ZENML_LOGGING_VERBOSITY": "ERROR"}
    result = subprocess.run(
        [sys.executable, "-c", script, run_id],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _step_of_node(spec: dict) -> dict[str, str]:
    """Each node of the pipeline job mapped to the ZenML step its component runs."""
    return {node: job["component"]["name"] for node, job in spec["jobs"].items()}


def _step_environment(job: dict) -> dict[str, str]:
    """The environment ZenML hands a step: base64 JSON in the command's arguments."""
    arguments = job["component"]["command"].split()
    encoded = arguments[arguments.index("--zenml_env_variables") + 1]
    return json.loads(base64.b64decode(encoded))


def _local_dag(parameters: dict) -> dict[str, set[str]]:
    """The steps and their upstream steps as ZenML compiles the pipeline for the local stack."""
    from zenml.client import Client
    from zenml.config.compiler import Compiler
    from zenml.config.pipeline_run_configuration import PipelineRunConfiguration
    from zenml.stack import Stack
    from zenml.utils import source_utils

    from pipelines.run_parameters import validated_parameters
    from pipelines.training import training_pipeline
    from stacks.registration import load_stack_definition, register_stack

    source_utils.set_custom_source_root(str(REPO_ROOT))
    local_stack = Stack.from_model(
        Client().get_stack(register_stack(load_stack_definition("local")))
    )
    pipeline = training_pipeline.with_options()
    pipeline.prepare(**validated_parameters(training_pipeline, parameters))
    snapshot = Compiler().compile(pipeline, local_stack, PipelineRunConfiguration())
    return {
        name: set(step.spec.upstream_steps) for name, step in snapshot.step_configurations.items()
    }


# Compile: the pipeline job ZenML's AzureML orchestrator submitted.


def test_one_command_component_per_step(azure_run):
    jobs = azure_run.spec["jobs"]
    steps = sorted(_step_of_node(azure_run.spec).values())

    assert steps == sorted(_local_dag(azure_run.parameters))
    for job in jobs.values():
        component = job["component"]
        assert job["type"] == component["type"] == "command"
        assert component["command"].startswith("python -m zenml.entrypoints.entrypoint ")
        assert f"--step_name {component['name']} " in component["command"]
        assert "AzureMLEntrypointConfiguration" in component["command"]
        assert component["outputs"] == {"completed": {"type": "uri_file"}}


def test_dependencies_equal_the_local_dag(azure_run):
    step_of_node = _step_of_node(azure_run.spec)
    submitted = {
        step_of_node[node]: {step_of_node[upstream] for upstream in upstreams}
        for node, upstreams in pipeline_dependencies(azure_run.spec).items()
    }

    assert submitted == _local_dag(azure_run.parameters)
    assert submitted["load_data"] == set()
    assert "train_model" in submitted["evaluate_model"]


def test_image_compute_and_workspace(azure_run):
    images = {job["component"]["environment"]["image"] for job in azure_run.spec["jobs"].values()}

    assert images == {IMAGE}
    assert azure_run.spec["settings"]["default_compute"] == "serverless"
    assert "compute" not in azure_run.spec
    assert azure_run.client == {
        "credential": "DefaultAzureCredential",
        "subscription_id": azure_run.settings["AZURE_SUBSCRIPTION_ID"],
        "resource_group_name": azure_run.settings["AZURE_RESOURCE_GROUP"],
        "workspace_name": azure_run.settings["AZURE_WORKSPACE"],
    }


def test_environment_variables_reach_the_server_and_keep_steps_offline(azure_run, simulated_azure):
    for job in azure_run.spec["jobs"].values():
        environment = _step_environment(job)
        assert environment["ZENML_STORE_URL"] == simulated_azure.zenml_url
        assert environment["ZENML_STORE_TYPE"] == "rest"
        assert environment["HF_HUB_OFFLINE"] == environment["TRANSFORMERS_OFFLINE"] == "1"


def test_no_secret_inline(azure_run, simulated_azure):
    secret_values = [
        AZURITE_KEY,
        simulated_azure.connection_string,
        simulated_azure.zenml_password,
    ]
    run_id = azure_run.summary["run_id"]
    for job in azure_run.spec["jobs"].values():
        environment = _step_environment(job)
        inline = azure_run.job_yaml + json.dumps(environment)
        assert not [value for value in secret_values if value in inline]
        assert not [key for key in environment if key.startswith(("AZURE_", "MLFLOW_TRACKING"))]
        # ZenML's one credential in a job: a workload token scoped to this pipeline run.
        payload = environment["ZENML_STORE_API_TOKEN"].split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        assert claims["pipeline_run_id"] == run_id


# Execute: what the simulated AzureML's runs of the components left behind.


def test_training_pipeline_completes_on_the_azure_stack(azure_run):
    summary, described = azure_run.summary, azure_run.described

    assert summary["status"] == "completed", summary["error"]
    assert summary["stack"] == "azure"
    assert summary["model"]["name"] == MODEL_NAME
    assert set(summary["metrics"]) == {"accuracy", "macro_f1"}
    assert described["orchestrator_run_id"] == azure_run.job_dir.name
    assert {step["status"] for step in described["steps"].values()} == {"completed"}
    for node in azure_run.spec["jobs"]:
        assert (azure_run.job_dir / node / "outputs" / "completed").is_file()
        # The step's code came from the blob container, into the container's /app.
        assert (azure_run.job_dir / node / "app" / "code" / "steps").is_dir()
    assert f"Model: {MODEL_NAME} version {summary['model']['version']}" in azure_run.output


def test_artifacts_are_in_the_emulated_blob_container(azure_run, simulated_azure):
    container = BlobServiceClient.from_connection_string(
        simulated_azure.connection_string
    ).get_container_client(CONTAINER)
    blobs = {blob.name for blob in container.list_blobs(name_starts_with="stackport/")}
    prefix = f"az://{CONTAINER}/"
    uris = [
        uri
        for step in azure_run.described["steps"].values()
        for versions in step["outputs"].values()
        for uri in versions
    ]

    assert len(uris) >= 10
    for uri in uris:
        assert uri.startswith(f"{prefix}stackport/"), uri
        path = uri.removeprefix(prefix)
        assert any(blob.startswith(f"{path}/") for blob in blobs), uri
    assert any(blob.startswith("stackport/code_uploads/") for blob in blobs)
    assert any(blob.startswith("stackport/logs/") for blob in blobs)


def test_model_version_is_registered(azure_run):
    version = azure_run.described["model_version"]

    assert version["model"] == MODEL_NAME
    assert str(version["number"]) == azure_run.summary["model"]["version"]
    assert {"test_metrics", "baseline_test_metrics", "per_class"} <= set(version["metadata"])
    assert version["model_artifact"] == azure_run.summary["artifacts"]["model"]
    assert version["model_artifact"].startswith(f"az://{CONTAINER}/")


def test_metrics_and_model_are_on_the_mlflow_server(azure_run, simulated_azure):
    train_step = azure_run.described["steps"]["train_model"]
    client = MlflowClient(tracking_uri=simulated_azure.mlflow_url)
    mlflow_run = client.get_run(train_step["metadata"]["mlflow_run_id"])

    assert client.get_experiment(mlflow_run.info.experiment_id).name == "training_pipeline"
    assert mlflow_run.info.run_name == azure_run.summary["run_name"]
    assert {"eval_macro_f1", "test_macro_f1"} <= set(mlflow_run.data.metrics)
    assert "learning_rate" in mlflow_run.data.params
    logged = {item.path for item in client.list_artifacts(mlflow_run.info.run_id, "model")}
    assert "model/model.safetensors" in logged


def test_no_secret_in_logs_summary_or_stack(azure_run, simulated_azure):
    secret_values = [AZURITE_KEY, simulated_azure.connection_string, simulated_azure.zenml_password]
    node_logs = [path.read_text() for path in azure_run.job_dir.glob("*/user_logs/std_log.txt")]
    texts = {
        "run.py output": azure_run.output,
        "summary": json.dumps(azure_run.summary),
        "stack components": json.dumps(azure_run.described["components"]),
        "step logs": "\n".join(node_logs),
    }

    assert len(node_logs) == len(azure_run.spec["jobs"])
    for where, text in texts.items():
        assert not [value for value in secret_values if value in text], where
    # The storage credentials are in the ZenML secret the components name.
    assert azure_run.described["secret_keys"] == ["account_name", "connection_string"]
    store = azure_run.described["components"]["artifact_store"]["azure-blob-artifacts"]
    assert store == {
        "path": f"az://{CONTAINER}/stackport",
        "authentication_secret": "stackport-azure",
    }


# Deploy: `run.py --pipeline deploy --stack azure` makes an online endpoint of the trained version.


@pytest.fixture(scope="module")
def azure_deploy(azure_run, simulated_azure):
    """`run.py --pipeline deploy --stack azure` of the trained version (target azureml, the
    stack's default), against the same simulation."""
    home = simulated_azure.root / "laptop"
    command = [
        *(sys.executable, str(SIMULATION_SCRIPT), "--pipeline", "deploy", "--stack", "azure"),
        *("--env-file", str(home / "config.env"), "--model-name", MODEL_NAME),
        *("--model-version", azure_run.summary["model"]["version"]),
    ]
    environment = _client_environment(simulated_azure, home) | {
        SIMULATION_DIR_VARIABLE: str(simulated_azure.root / "azureml"),
        ENVIRONMENTS_VARIABLE: os.environ.get(ENVIRONMENTS_VARIABLE, str(DEFAULT_ENVIRONMENTS)),
    }
    result = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
    )
    workspace = simulated_azure.root / "azureml" / WORKSPACE_DIR
    return SimpleNamespace(
        exit_code=result.returncode,
        output=result.stdout + result.stderr,
        calls=[json.loads(line) for line in (workspace / "calls.jsonl").read_text().splitlines()],
        state=json.loads((workspace / "state.json").read_text()),
    )


def test_online_endpoint_deploy_on_the_azure_stack_registers_the_model_in_place(azure_deploy):
    assert azure_deploy.exit_code == 0, azure_deploy.output[-5000:]
    (model,) = [
        entry["entity"]
        for entry in azure_deploy.calls
        if entry["call"] == "models.create_or_update"
    ]
    onnx_uri = azure_deploy.state["models"][model["name"]][model["version"]]["path"]

    # The ONNX artifact's blobs, registered through the workspace's datastore on the container.
    assert model["path"].startswith(f"azureml://datastores/{ARTIFACT_DATASTORE}/paths/stackport/")
    assert onnx_uri == model["path"]
    assert model["name"] == MODEL_NAME
    calls = [entry["call"] for entry in azure_deploy.calls]
    assert calls.count("online_deployments.begin_create_or_update") == 1
    assert "online_endpoints.invoke" in calls
    assert "Serving tiny-bbc-azure version" in azure_deploy.output


def test_online_endpoint_deploy_serves_the_blob_files_under_the_inference_server(
    azure_deploy, simulated_azure
):
    (deployment,) = azure_deploy.state["deployments"][MODEL_NAME].values()
    staged = Path(deployment["model_dir"])
    model = OnnxModel.load(next(staged.iterdir()))
    text = "Shares in the airline rose after its profits doubled."
    body = json.dumps({"texts": [text]}).encode()
    request = simulated_azure.root / "request.json"
    request.write_bytes(body)
    client = SimulatedMLClient(simulated_azure.root / "azureml", None)

    answer = client.online_endpoints.invoke(endpoint_name=MODEL_NAME, request_file=str(request))

    expected = [p.model_dump(mode="json") for p in OnnxPredictor(model).predict([text])]
    assert json.loads(answer)[0]["label"] == expected[0]["label"]
    assert json.loads(answer)[0]["score"] == pytest.approx(expected[0]["score"], abs=1e-5)
    assert azure_deploy.state["endpoints"][MODEL_NAME]["traffic"] == {
        deployment["entity"]["name"]: 100
    }


def test_online_endpoint_deploy_stores_no_secret(azure_deploy, simulated_azure):
    secret_values = [AZURITE_KEY, simulated_azure.connection_string, simulated_azure.zenml_password]
    texts = json.dumps(azure_deploy.calls) + json.dumps(azure_deploy.state) + azure_deploy.output
    assert not [value for value in secret_values if value in texts]


# Schedules: `run.py --schedule` on the same stack, through the same `MLClient` boundary.

CRON = "0 3 * * 1"


@pytest.fixture(scope="module")
def azure_schedule(azure_run):
    """`run.py --pipeline train --stack azure --schedule CRON`: its output and the schedule."""
    command = [word for word in azure_run.command if word not in ("--no-cache",)]
    command = command[: command.index("--summary")] + ["--schedule", CRON]
    result = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=azure_run.environment,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    (schedule_file,) = (azure_run.jobs / SCHEDULES_DIR).glob("*.yaml")
    return SimpleNamespace(output=output, spec=yaml.safe_load(schedule_file.read_text()))


def test_schedule_registers_a_cron_job_schedule_of_the_training_pipeline(azure_schedule, azure_run):
    trigger = azure_schedule.spec["trigger"]
    job = azure_schedule.spec["create_job"]

    assert trigger["type"] == "cron"
    assert trigger["expression"] == CRON
    assert trigger["time_zone"] in ("UTC", "Coordinated Universal Time")
    assert sorted(_step_of_node(job).values()) == sorted(_step_of_node(azure_run.spec).values())
    assert {node["component"]["environment"]["image"] for node in job["jobs"].values()} == {IMAGE}
    assert f"Scheduled training_pipeline on stack azure: cron '{CRON}'" in azure_schedule.output
    # Registered, not run: the one job directory is the training run's.
    submitted = [path for path in azure_run.jobs.iterdir() if (path / PIPELINE_JOB_FILE).is_file()]
    assert submitted == [azure_run.job_dir]


# The simulated AzureML itself, on shell commands.


def test_simulated_azureml_runs_nodes_after_their_inputs_and_stops_at_a_failure(tmp_path):
    def node(command: str, *upstream: str) -> dict:
        bindings = {
            name: {"path": f"${{{{parent.jobs.{name}.outputs.completed}}}}"} for name in upstream
        }
        return {"type": "command", "component": {"command": command}, "inputs": bindings}

    order = tmp_path / "order"
    succeed = f'echo "$AZUREML_RUN_ID" >> {order} && touch "$AZURE_ML_OUTPUT_COMPLETED"'
    spec = {
        "jobs": {
            "first": node(succeed),
            "second": node(succeed, "first"),
            "failing": node('test -f "$AZURE_ML_INPUT_FIRST" && exit 3', "first"),
            "after_failure": node(succeed, "second", "failing"),
        }
    }

    failed = run_pipeline_job("job", spec, tmp_path / "job")

    assert failed == "failing"
    assert order.read_text().split() == ["job_first", "job_second"]
    assert not (tmp_path / "job" / "after_failure").exists()
