"""A simulated AzureML for the tests: `MLClient` is replaced, every other boundary is real.

`python tests/azure_simulation.py <run.py options>` is `python run.py` with one stand-in, the
AzureML SDK's `MLClient` (the client of AzureML's REST API), as ZenML's AzureML orchestrator
uses it. `SimulatedMLClient` keeps each submitted pipeline job as the SDK serializes it (YAML)
and, when ZenML streams the job, runs every command component of that YAML as a local process,
in dependency order, with the environment an AzureML job gives it. Everything else is real: the
ZenML server the client and the steps talk to, Azure Blob Storage (Azurite, through adlfs) for
code and artifacts, an MLflow server, ZenML's compiler, entrypoint and materializers.

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


class SimulatedMLClient:
    """Stands in for `azure.ai.ml.MLClient`; records the workspace it was created for."""

    def __init__(self, directory: Path, credential: Any, **workspace: str) -> None:
        settings = {"credential": type(credential).__name__, **workspace}
        self.jobs = SimulatedJobs(directory, settings)


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
        (status, metadata, output URIs) and the model version a step created, if any.
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
        if step.model_version is not None:
            version = client.get_model_version(step.model_version.model.name, step.model_version.id)
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
    directory = Path(os.environ[SIMULATION_DIR_VARIABLE])
    with mock.patch.object(azureml_orchestrator, "MLClient", partial(SimulatedMLClient, directory)):
        run.main()


if __name__ == "__main__":
    main()
