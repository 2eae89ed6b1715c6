"""A simulated AzureML for the tests: `MLClient` is replaced, every other boundary is real.

`python tests/azure_simulation.py <run.py options>` is `python run.py` with one stand-in, the
AzureML SDK's `MLClient` (the client of AzureML's REST API), as ZenML's AzureML orchestrator
and `pipelines.azureml_endpoint` use it. `SimulatedMLClient` keeps each submitted pipeline job
(and job schedule) as the SDK serializes it (YAML) and, when ZenML streams the job, runs every
command component of that YAML as a local process, in dependency order, with the environment an
AzureML job gives it; it keeps models, environments, online endpoints and deployments, and
serves a deployment with the real AzureML inference server (see "online endpoints" below).
Everything else is real: the ZenML server the client and the steps talk to, Azure Blob Storage
(Azurite, through adlfs) for code and artifacts, an MLflow server, ZenML's compiler, entrypoint
and materializers.

The helpers below also start and stop those servers; tests/test_azure_simulation.py uses them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial
from graphlib import TopologicalSorter
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
SIMULATION_DIR_VARIABLE = "STACKPORT_AZUREML_SIMULATION_DIR"
PIPELINE_JOB_FILE = "pipeline_job.yaml"
CLIENT_FILE = "ml_client.json"
SCHEDULES_DIR = "schedules"
CONTAINER_SITE = Path(__file__).resolve().parent / "azure_container"
COMPONENT_TIMEOUT_SECONDS = 600
PARALLEL_NODES = os.cpu_count() or 1
# AzureML binds a node's input to an upstream node's output with this expression.
_OUTPUT_BINDING = re.compile(r"^\$\{\{parent\.jobs\.([^.]+)\.outputs\.([^}]+)\}\}$")

NODE_MODULES = REPO_ROOT / ".ci" / "node" / "node_modules"
AZURITE_BLOB = NODE_MODULES / ".bin" / "azurite-blob"
# Azurite's well-known development account (public, documented by Microsoft).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


@dataclass
class SimulatedJob:
    """What `MLClient.jobs` returns for a job: its name, status and studio URL."""

    name: str
    status: str
    studio_url: str
    services: dict[str, Any] = field(default_factory=dict)


class SimulatedJobs:
    """`MLClient.jobs`: a pipeline job is kept on submission and runs while it is streamed."""

    def __init__(self, directory: Path, client_settings: dict[str, Any]) -> None:
        self._directory = directory
        self._client_settings = client_settings
        self._jobs: dict[str, SimulatedJob] = {}

    def create_or_update(self, job: Any) -> SimulatedJob:
        name = f"stackport_sim_{uuid.uuid4().hex[:12]}"
        job_dir = self._directory / name
        job_dir.mkdir(parents=True)
        job.dump(job_dir / PIPELINE_JOB_FILE)
        (job_dir / CLIENT_FILE).write_text(json.dumps(self._client_settings, indent=2))
        studio_url = f"https://ml.azure.com/runs/{name}"
        self._jobs[name] = SimulatedJob(
            name, "NotStarted", studio_url, {"Studio": SimpleNamespace(endpoint=studio_url)}
        )
        return self._jobs[name]

    def get(self, name: str) -> SimulatedJob:
        return self._jobs[name]

    def stream(self, name: str) -> None:
        from azure.ai.ml.exceptions import JobException

        job = self._jobs[name]
        job.status = "Running"
        spec = yaml.safe_load((self._directory / name / PIPELINE_JOB_FILE).read_text())
        failed = run_pipeline_job(name, spec, self._directory / name)
        job.status = "Failed" if failed else "Completed"
        if failed:
            log = self._directory / name / failed / "user_logs" / "std_log.txt"
            message = f"Pipeline job {name} failed at {failed}; see {log}."
            raise JobException(message=message, no_personal_data_message=message)


class SimulatedSchedules:
    """`MLClient.schedules`: a job schedule is kept as the SDK serializes it (YAML), not run."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory / SCHEDULES_DIR

    def begin_create_or_update(self, schedule: Any) -> SimpleNamespace:
        self._directory.mkdir(parents=True, exist_ok=True)
        schedule.dump(self._directory / f"{schedule.name}.yaml")
        return SimpleNamespace(result=lambda: schedule)


class SimulatedMLClient:
    """Stands in for `azure.ai.ml.MLClient`; records the workspace it was created for.

    `jobs` runs pipeline jobs; the other operations are the workspace's online endpoints, its
    assets and datastores (`SimulatedWorkspace`), kept in `directory` so that they outlive the
    process, as a workspace does.
    """

    def __init__(self, directory: Path, credential: Any, **workspace: str) -> None:
        settings = {"credential": type(credential).__name__, **workspace}
        self.jobs = SimulatedJobs(directory, settings)
        state = SimulatedWorkspace(directory / WORKSPACE_DIR, settings)
        self.models = SimulatedAssets(state, "models")
        self.environments = SimulatedAssets(state, "environments")
        self.datastores = SimulatedDatastores()
        self.online_endpoints = SimulatedOnlineEndpoints(state)
        self.online_deployments = SimulatedOnlineDeployments(state)
        self.schedules = SimulatedSchedules(directory)


def _upstream_nodes(node: dict[str, Any]) -> dict[str, str]:
    """The node's inputs, each mapped to the upstream node whose output it binds."""
    upstream = {}
    for input_name, binding in node.get("inputs", {}).items():
        match = _OUTPUT_BINDING.match(str(binding.get("path", "")))
        if match:
            upstream[input_name] = match.group(1)
    return upstream


def pipeline_dependencies(spec: dict[str, Any]) -> dict[str, set[str]]:
    """Each node of a pipeline job YAML with the nodes it waits for."""
    return {name: set(_upstream_nodes(node).values()) for name, node in spec["jobs"].items()}


def container_environment(app_dir: Path, home: Path, image_dir: Path) -> dict[str, str]:
    """What a job's container starts with: the image's PATH and ENV, nothing of this process.

    The image is this virtual environment. ZENML_CONFIG_PATH and
    ZENML_ENABLE_REPO_INIT_WARNINGS are the ENV of the images ZenML builds; matplotlib's font
    cache is shared by the nodes, as if built into the image, only to save each node the time.
    """
    path = [str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]
    return {
        "PATH": os.pathsep.join(path),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(CONTAINER_SITE),
        "STACKPORT_SIMULATED_APP_DIR": str(app_dir),
        "ZENML_CONFIG_PATH": str(app_dir / ".zenconfig"),
        "ZENML_ENABLE_REPO_INIT_WARNINGS": "False",
        "MPLCONFIGDIR": str(image_dir / "matplotlib"),
    }


def run_command_job(job_name: str, node_name: str, node: dict[str, Any], job_dir: Path) -> bool:
    """Run one command node as AzureML would, in its own folder; True if it succeeded.

    The node sees the variables AzureML sets: the pipeline job's id, its own run id, its
    output's path and its inputs' paths (the upstream outputs).
    """
    node_dir = job_dir / node_name
    app_dir, home, log = node_dir / "app", node_dir / "home", node_dir / "user_logs"
    for folder in (app_dir, home, log, node_dir / "outputs"):
        folder.mkdir(parents=True)
    completed = node_dir / "outputs" / "completed"
    environment = container_environment(app_dir, home, job_dir.parent / "image") | {
        "AZUREML_ROOT_RUN_ID": job_name,
        "AZUREML_RUN_ID": f"{job_name}_{node_name}",
        "AZURE_ML_OUTPUT_COMPLETED": str(completed),
    }
    for input_name, upstream in _upstream_nodes(node).items():
        environment[f"AZURE_ML_INPUT_{input_name.upper()}"] = str(
            job_dir / upstream / "outputs" / "completed"
        )
    with open(log / "std_log.txt", "w") as output:
        result = subprocess.run(
            node["component"]["command"],
            shell=True,  # AzureML runs a component's command in a shell
            cwd=app_dir,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=COMPONENT_TIMEOUT_SECONDS,
        )
    return result.returncode == 0 and completed.is_file()


def run_pipeline_job(job_name: str, spec: dict[str, Any], job_dir: Path) -> str | None:
    """Run the nodes of a pipeline job YAML, each once the nodes it waits for succeeded.

    Like AzureML, independent nodes run side by side (here up to one per CPU); after a failure
    no node starts.

    Returns:
        The node that failed, or None when all succeeded.
    """
    graph = TopologicalSorter(pipeline_dependencies(spec))
    graph.prepare()
    running: dict[Future[bool], str] = {}
    failed = None
    with ThreadPoolExecutor(max_workers=PARALLEL_NODES) as pool:
        while True:
            if failed is None:
                for node_name in graph.get_ready():
                    node = spec["jobs"][node_name]
                    future = pool.submit(run_command_job, job_name, node_name, node, job_dir)
                    running[future] = node_name
            if not running:
                return failed
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                node_name = running.pop(future)
                if future.result():
                    graph.done(node_name)
                elif failed is None:
                    failed = node_name


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalServer:
    """A server process on 127.0.0.1, in its own process group so that it stops with its children.

    Args:
        name: Names the log file.
        command: The command that starts it.
        url: Any HTTP answer from this URL means the server is up.
        log_dir: Where its output goes.
        env: Its environment.
    """

    def __init__(
        self, name: str, command: list[str], url: str, log_dir: Path, env: dict[str, str]
    ) -> None:
        self.name = name
        self.url = url
        self.log = log_dir / f"{name}.log"
        with open(self.log, "w") as output:
            self._process = subprocess.Popen(
                command, stdout=output, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

    def wait_until_up(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(self.url, timeout=5).close()
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"{self.name} did not answer at {self.url} within {timeout}s")

    def stop(self) -> None:
        """SIGTERM to the server's process group, then SIGKILL to whatever is left of it."""
        with contextlib.suppress(ProcessLookupError):  # the group is gone already
            os.killpg(self._process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=15)
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait()


def azurite_command(port: int, location: Path) -> list[str]:
    """Azurite's blob service on 127.0.0.1:`port`, installed into .ci/node when missing."""
    if not AZURITE_BLOB.exists():
        subprocess.run(
            ["npm", "ci", "--prefix", str(NODE_MODULES.parent), "--no-audit", "--no-fund"],
            check=True,
        )
    return [
        shutil.which("node") or "node",
        str(AZURITE_BLOB),
        *("--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(location)),
        *("--silent", "--skipApiVersionCheck", "--disableTelemetry"),
    ]


def azurite_connection_string(port: int) -> str:
    """The connection string of Azurite's development account on 127.0.0.1:`port`."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};"
    )


def describe_run(run_id: str) -> dict[str, Any]:
    """What the active ZenML store knows of a run, as JSON-able data (no secret values).

    Returns:
        The run's status, orchestrator run id, stack components' configurations, steps
        (status, metadata, output URIs) and the model version the run registered, if any.
    """
    from zenml.client import Client

    client = Client()
    run = client.get_pipeline_run(run_id)
    description: dict[str, Any] = {
        "status": run.status.value,
        "orchestrator_run_id": run.orchestrator_run_id,
        "components": {
            str(kind): {found.name: found.configuration for found in components}
            for kind, components in run.stack.components.items()
        },
        "secret_keys": sorted(client.get_secret("stackport-azure").secret_values),
        "steps": {},
        "model_version": None,
    }
    for name, step in run.steps.items():
        description["steps"][name] = {
            "status": step.status.value,
            "metadata": {key: str(value) for key, value in step.run_metadata.items()},
            "outputs": {
                output: [v.uri for v in versions] for output, versions in step.outputs.items()
            },
        }
    from pipelines.model_registry import version_holding

    trained = run.steps.get("train_model")
    model_artifacts = trained.outputs.get("model", []) if trained is not None else []
    for model in client.list_models().items if model_artifacts else []:
        found = version_holding(model.name, str(model_artifacts[0].id))
        if found is not None:
            version = client.get_model_version(model.name, found.id)
            description["model_version"] = {
                "model": version.model.name,
                "number": version.number,
                "metadata": sorted(version.run_metadata),
                "model_artifact": version.get_model_artifact("model").uri,
            }
    return description


def main() -> None:
    """`run.py`'s command line, with the simulated AzureML in place of `MLClient`."""
    from zenml.integrations.azure.orchestrators import azureml_orchestrator
    from zenml.utils import source_utils

    sys.path.insert(0, str(REPO_ROOT))
    import run

    # As `python run.py` would: the repository is the code ZenML ships to the steps.
    source_utils.set_custom_source_root(str(REPO_ROOT))
    import pipelines.azureml_endpoint

    directory = Path(os.environ[SIMULATION_DIR_VARIABLE])
    simulated = partial(SimulatedMLClient, directory)
    with (
        mock.patch.object(azureml_orchestrator, "MLClient", simulated),
        mock.patch.object(pipelines.azureml_endpoint, "MLClient", simulated),
    ):
        run.main()


# ---------------------------------------------------------------- online endpoints
#
# What the simulated workspace does with models, environments, endpoints and deployments, as
# AzureML's REST API does: it keeps each entity as the SDK serializes it, "uploads" a local
# model or code folder by copying it into the workspace's own storage (a folder), builds an
# environment from its conda file's pip packages (a virtual environment, cached by their hash,
# as AzureML caches images), and runs a deployment as AzureML's images do: the deployment's
# code folder under the real AzureML inference server (`azmlinfsrv`) of that environment, with
# the model's files in AZUREML_MODEL_DIR, read from the datastore its path names (Azurite for a
# datastore on the emulated container). A deployment's server runs while it is provisioned
# (until its readiness probe, `GET /`, answers) and while it is invoked.

WORKSPACE_DIR = "workspace"
ENVIRONMENTS_VARIABLE = "STACKPORT_AZUREML_ENVIRONMENTS"
DEFAULT_ENVIRONMENTS = Path.home() / ".cache" / "stackport" / "azureml-environments"
WORKSPACE_DATASTORE = "workspaceblobstore"
ARTIFACT_DATASTORE = "stackport_artifacts"
_DATASTORE_PATH = re.compile(r"^azureml://datastores/([^/]+)/paths/(.+)$")
PROVISION_TIMEOUT_SECONDS = 120
PIP_TIMEOUT_SECONDS = 900


def scoring_environment(requirements: list[str], cache: Path | None = None) -> Path:
    """The Python of a virtual environment with exactly these pip packages, built once.

    It is built with this interpreter's base Python (nothing of the project's environment is
    in it), into `cache` (default: $STACKPORT_AZUREML_ENVIRONMENTS or
    ~/.cache/stackport/azureml-environments), under a hash of the requirements, in place (its
    scripts name their interpreter's path); one without the `complete` mark of a finished
    build is built again.
    """
    cache = cache or Path(os.environ.get(ENVIRONMENTS_VARIABLE, DEFAULT_ENVIRONMENTS))
    key = uuid.uuid5(uuid.NAMESPACE_OID, "\n".join(sorted(requirements))).hex[:16]
    environment = cache / key
    complete = environment / "complete"
    if not complete.is_file():
        shutil.rmtree(environment, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(environment)], check=True)
        (environment / "requirements.txt").write_text("\n".join(requirements) + "\n")
        subprocess.run(
            [str(environment / "bin" / "python"), "-m", "pip", "install", "--quiet"]
            + ["--disable-pip-version-check", "-r", str(environment / "requirements.txt")],
            check=True,
            timeout=PIP_TIMEOUT_SECONDS,
        )
        complete.touch()
    return environment / "bin" / "python"


def conda_pip_requirements(conda_file: dict[str, Any]) -> list[str]:
    """The pip packages of a conda specification."""
    for dependency in conda_file["dependencies"]:
        if isinstance(dependency, dict) and "pip" in dependency:
            return list(dependency["pip"])
    return []


def inference_server(
    python: Path,
    entry_script: Path,
    model_dir: Path,
    log_dir: Path,
    name: str,
    variables: dict[str, str] | None = None,
) -> LocalServer:
    """`azmlinfsrv` serving a scoring script on a free port of 127.0.0.1, as AzureML runs it.

    As on AzureML, the app root (`AML_APP_ROOT`, on `sys.path`) is the folder above the code
    folder, `AZUREML_MODEL_DIR` is the model's folder, and the deployment's environment
    `variables` are set. Wait for it with `wait_until_up`: its `GET /` (the liveness and
    readiness probes') answers once `init()` has run.
    """
    port = free_port()
    code_root = entry_script.parent
    while not (code_root / "stackport").is_dir():
        code_root = code_root.parent
    environment = {
        "PATH": f"{python.parent}{os.pathsep}/usr/bin:/bin",
        "HOME": str(log_dir),
        "LANG": "C.UTF-8",
        "AML_APP_ROOT": str(code_root.parent),
        "AZUREML_MODEL_DIR": str(model_dir),
        # The uploaded code folder stays as it was sent.
        "PYTHONDONTWRITEBYTECODE": "1",
        **(variables or {}),
    }
    return LocalServer(
        name,
        [str(python.parent / "azmlinfsrv"), "--entry_script", str(entry_script)]
        + ["--port", str(port)],
        f"http://127.0.0.1:{port}/",
        log_dir,
        environment,
    )


class SimulatedPoller:
    """What a `begin_*` operation returns: its result, or the error AzureML reported."""

    def __init__(self, result: Any = None, error: Exception | None = None) -> None:
        self._result, self._error = result, error

    def result(self, timeout: float | None = None) -> Any:
        if self._error is not None:
            raise self._error
        return self._result


def _http_error(status: int, message: str) -> Exception:
    from azure.core.exceptions import HttpResponseError

    error = HttpResponseError(message=f"({status}) {message}")
    error.status_code = status
    return error


def _not_found(what: str) -> Exception:
    from azure.core.exceptions import ResourceNotFoundError

    return ResourceNotFoundError(message=f"{what} was not found in the workspace.")


class SimulatedWorkspace:
    """The workspace's assets, endpoints and deployments, in a folder (`state.json`), and a log
    of every call that created or changed one (`calls.jsonl`, each entity as the SDK
    serializes it)."""

    def __init__(self, root: Path, client_settings: dict[str, Any]) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.client_settings = client_settings
        self._state_file = root / "state.json"

    def state(self) -> dict[str, Any]:
        if self._state_file.is_file():
            return json.loads(self._state_file.read_text())
        return {"models": {}, "environments": {}, "endpoints": {}, "deployments": {}}

    def save(self, state: dict[str, Any]) -> None:
        self._state_file.write_text(json.dumps(state, indent=2, default=str))

    def record(self, call: str, entity: dict[str, Any]) -> None:
        with open(self.root / "calls.jsonl", "a") as calls:
            calls.write(json.dumps({"call": call, "entity": entity}, default=str) + "\n")

    def storage(self, datastore: str) -> Path:
        """The folder of the workspace's own blob datastore."""
        return self.root / "storage" / datastore

    def stage_model(self, path: str, target: Path) -> Path:
        """The files at a model's datastore path, in `target/<folder name>` (AzureML's layout).

        Raises:
            ResourceNotFoundError: The path holds no file.
        """
        datastore, blob_path = _DATASTORE_PATH.match(path).groups()
        folder = target / Path(blob_path).name
        if datastore == WORKSPACE_DATASTORE:
            shutil.copytree(self.storage(datastore) / blob_path, folder)
        else:
            from azure.storage.blob import BlobServiceClient

            container = BlobServiceClient.from_connection_string(
                os.environ["AZURE_STORAGE_CONNECTION_STRING"]
            ).get_container_client(SimulatedDatastores.artifact_container())
            for blob in container.list_blobs(name_starts_with=f"{blob_path}/"):
                destination = folder / blob.name.removeprefix(f"{blob_path}/")
                destination.parent.mkdir(parents=True, exist_ok=True)
                destination.write_bytes(container.download_blob(blob.name).readall())
        if not folder.is_dir() or not any(folder.iterdir()):
            raise _not_found(f"Model files at {path}")
        return folder


class SimulatedAssets:
    """`MLClient.models` or `.environments`: versioned assets; a local model path is uploaded."""

    def __init__(self, workspace: SimulatedWorkspace, kind: str) -> None:
        self._workspace, self._kind = workspace, kind

    def get(self, name: str, version: str) -> Any:
        stored = self._workspace.state()[self._kind].get(name, {}).get(version)
        if stored is None:
            raise _not_found(f"{self._kind[:-1]} {name}:{version}")
        return self._entity(stored)

    def create_or_update(self, asset: Any) -> Any:
        entity = asset._to_dict()
        self._workspace.record(f"{self._kind}.create_or_update", entity)
        if self._kind == "models" and not str(asset.path).startswith("azureml://"):
            upload = Path("LocalUpload") / uuid.uuid4().hex / Path(asset.path).name
            shutil.copytree(asset.path, self._workspace.storage(WORKSPACE_DATASTORE) / upload)
            entity["path"] = f"azureml://datastores/{WORKSPACE_DATASTORE}/paths/{upload}"
        state = self._workspace.state()
        state[self._kind].setdefault(asset.name, {})[asset.version] = entity
        self._workspace.save(state)
        return self._entity(entity)

    def _entity(self, stored: dict[str, Any]) -> Any:
        from azure.ai.ml.entities import Environment, Model

        if self._kind == "models":
            return Model(
                name=stored["name"],
                version=stored["version"],
                path=stored["path"],
                type=stored["type"],
                tags=stored.get("tags", {}),
            )
        return Environment(
            name=stored["name"],
            version=stored["version"],
            image=stored["image"],
            conda_file=stored["conda_file"],
        )


class SimulatedDatastores:
    """`MLClient.datastores`: the workspace's own blob store, and one on the emulated container.

    When the laptop's settings name the artifact store's blob container and its connection
    string (the simulation's Azurite), the workspace has a datastore on that container.
    """

    @staticmethod
    def artifact_container() -> str | None:
        if os.environ.get("AZURE_STORAGE_CONNECTION_STRING"):
            return os.environ.get("AZURE_STORAGE_CONTAINER")
        return None

    def list(self) -> list[Any]:
        from azure.ai.ml.entities import AzureBlobDatastore

        datastores = [
            AzureBlobDatastore(
                name=WORKSPACE_DATASTORE,
                account_name="stackportsimulation",
                container_name="azureml-blobstore",
            )
        ]
        if self.artifact_container():
            datastores.append(
                AzureBlobDatastore(
                    name=ARTIFACT_DATASTORE,
                    account_name=os.environ.get("AZURE_STORAGE_ACCOUNT", AZURITE_ACCOUNT),
                    container_name=self.artifact_container(),
                )
            )
        return datastores


class SimulatedOnlineEndpoints:
    """`MLClient.online_endpoints`: endpoints with their traffic, invoked through the servers."""

    def __init__(self, workspace: SimulatedWorkspace) -> None:
        self._workspace = workspace

    def get(self, name: str) -> Any:
        from azure.ai.ml.entities import ManagedOnlineEndpoint

        stored = self._workspace.state()["endpoints"].get(name)
        if stored is None:
            raise _not_found(f"Online endpoint {name}")
        return ManagedOnlineEndpoint(
            name=name,
            auth_mode=stored["auth_mode"],
            traffic=stored.get("traffic", {}),
            description=stored.get("description"),
            tags=stored.get("tags", {}),
            scoring_uri=f"https://{name}.simulated.inference.ml.azure.com/score",
        )

    def begin_create_or_update(self, endpoint: Any) -> SimulatedPoller:
        entity = endpoint._to_dict()
        self._workspace.record("online_endpoints.begin_create_or_update", entity)
        state = self._workspace.state()
        traffic = entity.get("traffic") or {}
        deployments = state["deployments"].get(endpoint.name, {})
        unknown = sorted(set(traffic) - set(deployments))
        if unknown or sum(traffic.values()) not in (0, 100):
            return SimulatedPoller(
                error=_http_error(400, f"Invalid traffic {traffic} (deployments: {unknown}).")
            )
        state["endpoints"][endpoint.name] = entity
        state["deployments"].setdefault(endpoint.name, {})
        self._workspace.save(state)
        return SimulatedPoller(result=self.get(endpoint.name))

    def begin_delete(self, name: str) -> SimulatedPoller:
        state = self._workspace.state()
        if name not in state["endpoints"]:
            raise _not_found(f"Online endpoint {name}")
        self._workspace.record("online_endpoints.begin_delete", {"name": name})
        del state["endpoints"][name]
        state["deployments"].pop(name, None)
        self._workspace.save(state)
        shutil.rmtree(self._workspace.root / "deployments" / name, ignore_errors=True)
        return SimulatedPoller()

    def invoke(
        self, endpoint_name: str, *, request_file: str, deployment_name: str | None = None
    ) -> str:
        state = self._workspace.state()
        traffic = state["endpoints"][endpoint_name].get("traffic", {})
        name = deployment_name or max(traffic, key=traffic.get)
        self._workspace.record(
            "online_endpoints.invoke", {"endpoint": endpoint_name, "deployment": name}
        )
        deployment = state["deployments"][endpoint_name][name]
        with SimulatedOnlineDeployments.running(deployment) as server:
            request = urllib.request.Request(
                f"{server.url}score",
                data=Path(request_file).read_bytes(),
                headers={"Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    return response.read().decode()
            except urllib.error.HTTPError as error:
                raise _http_error(error.code, error.read().decode()) from None


class SimulatedOnlineDeployments:
    """`MLClient.online_deployments`: each provisioned as AzureML would, from its entities."""

    def __init__(self, workspace: SimulatedWorkspace) -> None:
        self._workspace = workspace

    @staticmethod
    @contextlib.contextmanager
    def running(deployment: dict[str, Any]):
        """The deployment's inference server, up until the block ends."""
        folder = Path(deployment["folder"])
        server = inference_server(
            Path(deployment["python"]),
            folder / "app" / "code" / deployment["entity"]["code_configuration"]["scoring_script"],
            Path(deployment["model_dir"]),
            folder,
            "server",
            deployment["entity"].get("environment_variables"),
        )
        try:
            server.wait_until_up(PROVISION_TIMEOUT_SECONDS)
            yield server
        finally:
            server.stop()
            with open(folder / "deployment.log", "a") as log:
                log.write(server.log.read_text())

    def begin_create_or_update(self, deployment: Any) -> SimulatedPoller:
        entity = deployment._to_dict()
        self._workspace.record("online_deployments.begin_create_or_update", entity)
        state = self._workspace.state()
        endpoint = deployment.endpoint_name
        if endpoint not in state["endpoints"]:
            raise _not_found(f"Online endpoint {endpoint}")
        folder = self._workspace.root / "deployments" / endpoint / deployment.name
        shutil.rmtree(folder, ignore_errors=True)
        # The SDK uploads the code folder as it sends the deployment.
        shutil.copytree(entity["code_configuration"]["code"], folder / "app" / "code")
        _, model_name, model_version = entity["model"].split(":")
        _, environment_name, environment_version = entity["environment"].split(":")
        model = state["models"][model_name][model_version]
        environment = state["environments"][environment_name][environment_version]
        stored = {
            "entity": entity,
            "folder": str(folder),
            "model_dir": str(folder / "azureml-models"),
            "python": str(scoring_environment(conda_pip_requirements(environment["conda_file"]))),
        }
        self._workspace.stage_model(model["path"], Path(stored["model_dir"]))
        try:
            with self.running(stored):
                pass  # provisioned: the readiness probe answered
        except (RuntimeError, TimeoutError) as error:
            return SimulatedPoller(error=_http_error(424, f"ResourceNotReady: {error}"))
        state["deployments"][endpoint][deployment.name] = stored
        self._workspace.save(state)
        return SimulatedPoller(result=deployment)

    def list(self, endpoint_name: str) -> list[Any]:
        from azure.ai.ml.entities import ManagedOnlineDeployment

        deployments = self._workspace.state()["deployments"].get(endpoint_name, {})
        return [
            ManagedOnlineDeployment(name=name, endpoint_name=endpoint_name) for name in deployments
        ]

    def get_logs(self, name: str, endpoint_name: str, lines: int = 50) -> str:
        log = self._workspace.root / "deployments" / endpoint_name / name / "deployment.log"
        text = log.read_text() if log.is_file() else ""
        return "\n".join(text.splitlines()[-lines:])

    def begin_delete(self, name: str, endpoint_name: str) -> SimulatedPoller:
        state = self._workspace.state()
        traffic = state["endpoints"][endpoint_name].get("traffic", {})
        if traffic.get(name, 0) > 0:
            return SimulatedPoller(
                error=_http_error(400, f"Deployment {name} takes {traffic[name]} % of traffic.")
            )
        self._workspace.record(
            "online_deployments.begin_delete", {"name": name, "endpoint": endpoint_name}
        )
        state["deployments"][endpoint_name].pop(name, None)
        state["endpoints"][endpoint_name].get("traffic", {}).pop(name, None)
        self._workspace.save(state)
        shutil.rmtree(
            self._workspace.root / "deployments" / endpoint_name / name, ignore_errors=True
        )
        return SimulatedPoller()


if __name__ == "__main__":
    main()
