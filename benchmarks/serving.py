"""Serving benchmark: the bento against FastAPI + ONNX Runtime and FastAPI + transformers.

Every server serves one model version of the Model Control Plane: by default the production
version of the latest trained model, chosen as `run.py --pipeline deploy` chooses it
(`--model-name`, `--model-version` otherwise). The servers:

- **bento (auto)**: the version's deployable ONNX variants with the default service settings;
  at start-up the service times each and serves the fastest, which `/metadata` names.
- **bento (<variant>)**: the same bento pinned to each deployable variant (`service.runtime`).
- **FastAPI + ONNX Runtime** (`benchmarks/onnx_runtime_app.py`): the variant the auto bento
  chose, one ONNX Runtime session, one forward pass per request.
- **FastAPI + transformers** (`benchmarks/transformers_app.py`): the version's fine-tuned
  PyTorch weights in fp32, a transformers pipeline, one forward pass per request.

Each server is started in the background. For each set of texts (the default data set's
sentences, and BBC News articles, which the model truncates at its `max_length`) and at 1, 16
and 64 concurrent clients sending one text per request, the servers are warmed up and then
take turns, so that the load other programs put on the machine touches them alike. Besides
requests per second and latency, the table gives errors, 503s (the service's answer to a
request it cannot serve within its latency budget, counted apart), requests per CPU-second
of the server's processes (how much work a request costs, whatever share of the cores the
server got), the cores the server's processes kept busy (CPU seconds per second) and the cores
the clients themselves used (they run in this process, on the same cores).

    .venv/bin/python -m benchmarks.serving [--requests 300] [--clients 1,16,64]
        [--texts rotten-tomatoes,bbc-news] [--no-each-variant] [--service KEY=VALUE,...]...
        [--request-log]
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import urlopen

from stackport.core.offline import stay_offline

# Everything loads from local paths or installed packages: never reach for a model hub.
stay_offline()

import aiohttp  # noqa: E402
import click  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402
import yaml  # noqa: E402
from zenml.client import Client  # noqa: E402

from pipelines.deployment import choose_model, resolve_deployable  # noqa: E402
from stackport.core.names import Artifact  # noqa: E402
from stackport.core.settings import (  # noqa: E402
    DeploymentSettings,
    ModelSelection,
    ServiceSettings,
)
from stackport.data.bundled import BUNDLED  # noqa: E402
from stackport.inference.onnx_model import OnnxModel  # noqa: E402
from stackport.onnx.benchmark import cpu_description  # noqa: E402
from stackport.serving.bento import build_bento_archive  # noqa: E402
from stackport.serving.deployment import Deployment  # noqa: E402
from stackport.serving.local import port_in_use, serve_locally, stop  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
PORT = 3917
STARTUP_TIMEOUT_S = 300
CLIENT_TIMEOUT_S = 60
TEXT_SEED = 0
TEXT_SETS = ("rotten-tomatoes", "bbc-news")
ONNX_RUNTIME_BASELINE = "FastAPI + ONNX Runtime"
TRANSFORMERS_BASELINE = "FastAPI + transformers (PyTorch fp32)"


@dataclass
class ServedVersion:
    """The model version the servers serve, read from the Model Control Plane."""

    name: str
    version: str
    variants: dict[str, OnnxModel]
    metrics: dict[str, dict[str, float]]
    pytorch_directory: Path


def served_version(selection: ModelSelection, work: Path) -> ServedVersion:
    """The selected version's deployable ONNX variants and its PyTorch model (saved in `work`)."""
    name, how = choose_model(selection)
    deployable = resolve_deployable(name, selection.version)
    click.echo(f"Serving {name} version {deployable.version} ({how}).")
    client = Client()
    variants = {
        variant: client.get_artifact_version(deployable.artifact_ids[variant]).load()
        for variant in deployable.deployable
    }
    model_version = client.get_model_version(name, deployable.version)
    model_version.get_artifact(Artifact.MODEL).load().save(work / "pytorch")
    return ServedVersion(
        name, deployable.version, variants, deployable.deployable, work / "pytorch"
    )


@dataclass
class Server:
    """A running server: its URL and the PID of its main process."""

    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server and its worker processes."""
        main = psutil.Process(self.pid)
        processes = [main, *main.children(recursive=True)]
        return sum(sum(process.cpu_times()[:2]) for process in processes)

    def metadata(self) -> dict:
        """The bento's `GET /metadata`, once the worker that answers has loaded its model.

        `/readyz` answered 200 from one worker; another may still be timing the variants.
        """
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            try:
                with urlopen(f"{self.url}/metadata", timeout=CLIENT_TIMEOUT_S) as response:
                    return json.load(response)
            except HTTPError as error:
                if error.code != 503 or time.monotonic() > deadline:
                    raise
            time.sleep(1)


def service_settings(overrides: str, runtime: str = "auto") -> ServiceSettings:
    """The default service settings serving `runtime`, with `KEY=VALUE,...` overrides.

    Keys are dotted paths into `ServiceSettings` (`batching.concurrent_batches=1`); values are
    read as YAML. The served-input log is off unless an override turns it on.
    """
    values: dict = {"runtime": runtime, "request_log": {"path": None}}
    for override in filter(None, overrides.split(",")):
        key, _, value = override.partition("=")
        *parents, leaf = key.strip().split(".")
        section = values
        for parent in parents:
            section = section.setdefault(parent, {})
        section[leaf] = yaml.safe_load(value)
    return ServiceSettings.model_validate(values)


@contextmanager
def bento_server(
    served: ServedVersion, service: ServiceSettings, work: Path, port: int
) -> Iterator[Server]:
    """The bento of the version's deployable variants with `service` settings, served locally."""
    config = {"parameters": {"service": service.model_dump(mode="json")}}
    # A store per server: a store runs one local deployment of a model at a time.
    home = work / f"bentoml-{port}"
    variants = list(served.variants.values())
    archive = build_bento_archive(
        variants, served.name, served.version, served.metrics, config, home, home
    )
    settings = DeploymentSettings(port=port, startup_timeout_s=STARTUP_TIMEOUT_S)
    deployment: Deployment = serve_locally(archive, served.name, served.version, settings, home)
    try:
        yield Server(deployment.url, deployment.pid)
    finally:
        stop(deployment)


@contextmanager
def uvicorn_server(app: str, port: int, environment: dict[str, str]) -> Iterator[Server]:
    """`benchmarks/<app>.py`'s FastAPI app under uvicorn, with `environment` added."""
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", f"{app}:app", "--app-dir", "benchmarks"]
        + ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=REPO_ROOT,
        env={**os.environ, **environment},
    )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not port_in_use("127.0.0.1", port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"benchmarks/{app}.py did not start.")
            time.sleep(0.5)
        yield Server(f"http://127.0.0.1:{port}", process.pid)
    finally:
        process.terminate()
        process.wait(30)


@dataclass
class Round:
    """One burst of requests against one server."""

    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    errors: int = 0
    unavailable: int = 0
    cpu_seconds: float = 0.0
    client_cpu_seconds: float = 0.0


async def load(url: str, texts: list[str], clients: int, requests: int) -> Round:
    """Send `requests` one-text requests from `clients` concurrent clients; time each one.

    A 503 is counted apart from errors (any other status, or no answer within the timeout).
    """
    burst = Round()
    timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def client(first: int) -> None:
            for number in range(first, requests, clients):
                start = time.perf_counter()
                body = {"texts": [texts[number % len(texts)]]}
                try:
                    async with session.post(f"{url}/predict", json=body) as response:
                        await response.read()
                        status = response.status
                except (TimeoutError, aiohttp.ClientError):
                    status = None
                burst.latencies.append(time.perf_counter() - start)
                burst.unavailable += status == 503
                burst.errors += status not in (200, 503)

        start = time.perf_counter()
        await asyncio.gather(*(client(first) for first in range(clients)))
        burst.elapsed = time.perf_counter() - start
        return burst


def timed_round(server: Server, texts: list[str], clients: int, requests: int) -> Round:
    """One round of load, with the CPU time the server and the clients spent on it.

    The clients run in this process, on the same cores as the server.
    """
    cpu_before, client_cpu_before = server.cpu_seconds(), time.process_time()
    burst = asyncio.run(load(server.url, texts, clients, requests))
    burst.cpu_seconds = server.cpu_seconds() - cpu_before
    burst.client_cpu_seconds = time.process_time() - client_cpu_before
    return burst


def measure(
    servers: dict[str, Server], texts: list[str], clients: int, requests: int, rounds: int
) -> dict[str, dict[str, float]]:
    """Every server's figures at one concurrency.

    After a warm-up, the servers take turns, `rounds` times, `requests / rounds` requests each
    turn (in a rotating order), so that changes in the machine's load touch all of them alike.
    """
    for server in servers.values():
        asyncio.run(load(server.url, texts[::-1], clients, max(16, 2 * clients)))
    results: dict[str, list[Round]] = {name: [] for name in servers}
    names = list(servers)
    for number in range(rounds):
        for name in names[number % len(names) :] + names[: number % len(names)]:
            results[name].append(timed_round(servers[name], texts, clients, requests // rounds))
    figures = {}
    for name, server_rounds in results.items():
        latencies = [latency for burst in server_rounds for latency in burst.latencies]
        elapsed = sum(burst.elapsed for burst in server_rounds)
        cpu_seconds = sum(burst.cpu_seconds for burst in server_rounds)
        figures[name] = {
            "clients": clients,
            "requests_per_s": len(latencies) / elapsed,
            "p50_ms": 1000 * float(np.percentile(latencies, 50)),
            "p99_ms": 1000 * float(np.percentile(latencies, 99)),
            "errors": sum(burst.errors for burst in server_rounds),
            "unavailable": sum(burst.unavailable for burst in server_rounds),
            "requests_per_cpu_s": len(latencies) / cpu_seconds,
            "cores_used": cpu_seconds / elapsed,
            "client_cores": sum(burst.client_cpu_seconds for burst in server_rounds) / elapsed,
        }
        print(name, figures[name], flush=True)
    return figures


def markdown(results: dict[str, dict[str, list[dict]]]) -> str:
    """A table of every server's figures, by text set."""
    lines = [
        "| texts | server | clients | req/s | p50 (ms) | p99 (ms) | errors | 503s "
        "| req per CPU-s | cores used | client cores |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for text_set, servers in results.items():
        for server, rows in servers.items():
            lines += [
                f"| {text_set} | {server} | {row['clients']} | {row['requests_per_s']:.1f} | "
                f"{row['p50_ms']:.0f} | {row['p99_ms']:.0f} | {row['errors']} | "
                f"{row['unavailable']} | {row['requests_per_cpu_s']:.1f} | "
                f"{row['cores_used']:.2f} | {row['client_cores']:.2f} |"
                for row in rows
            ]
    return "\n".join(lines)


def accuracy_table(served: ServedVersion, chosen: dict) -> str:
    """Each deployable variant's test metrics (the version's metadata) and start-up timing."""
    names = sorted({name for metrics in served.metrics.values() for name in metrics})
    lines = [
        "| variant | " + " | ".join(names) + " | start-up workload (CPU ms) |",
        "| --- | " + " | ".join("---:" for _ in names) + " | ---: |",
    ]
    for variant, metrics in served.metrics.items():
        served_by_auto = " (served by auto)" if variant == chosen["variant"] else ""
        warmup = chosen["warmup_ms"].get(variant)
        cells = [f"{metrics.get(name, float('nan')):.4f}" for name in names]
        cells.append("" if warmup is None else f"{warmup:.0f}")
        lines.append(f"| {variant}{served_by_auto} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sample_texts(text_set: str, count: int) -> list[str]:
    """`count` texts of a bundled data set, in a seeded random order."""
    frame, _ = BUNDLED[text_set].read()
    return frame["text"].sample(n=min(count, len(frame)), random_state=TEXT_SEED).tolist()


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--model-name", default=None, help="Default: the latest trained model.")
@click.option("--model-version", default=ModelSelection().version, show_default=True)
@click.option("--requests", default=300, show_default=True, help="Timed requests per level.")
@click.option("--rounds", default=3, show_default=True, help="Turns the servers take per level.")
@click.option("--clients", default="1,16,64", show_default=True, help="Concurrency levels.")
@click.option(
    "--texts",
    "text_sets",
    default=",".join(TEXT_SETS),
    show_default=True,
    help="Bundled data sets whose texts are sent.",
)
@click.option(
    "--each-variant/--no-each-variant",
    default=True,
    show_default=True,
    help="Also serve a bento pinned to each deployable variant.",
)
@click.option(
    "--service",
    "service_overrides",
    multiple=True,
    default=[""],
    show_default=True,
    help="Service settings of an auto bento, as KEY=VALUE,... over the defaults (dotted keys, "
    "e.g. workers=4,batching.concurrent_batches=1); repeat for one bento each.",
)
@click.option(
    "--request-log",
    is_flag=True,
    help="Also serve the auto bento with the served-input log on: the log's cost beside it.",
)
def main(
    model_name: str | None,
    model_version: str,
    requests: int,
    rounds: int,
    clients: str,
    text_sets: str,
    each_variant: bool,
    service_overrides: tuple[str, ...],
    request_log: bool,
) -> None:
    """Measure req/s, p50/p99 latency, errors and 503s of the bento and the two baselines."""
    load_before = os.getloadavg()
    results: dict[str, dict[str, list[dict]]] = {}
    with tempfile.TemporaryDirectory(prefix="stackport-serving-bench-") as work_dir:
        work = Path(work_dir)
        served = served_version(ModelSelection(name=model_name, version=model_version), work)
        texts = {text_set: sample_texts(text_set, 2000) for text_set in text_sets.split(",")}
        with ExitStack() as servers:
            ports = iter(range(PORT, PORT + 100))
            running = {}
            for overrides in service_overrides:
                auto = servers.enter_context(
                    bento_server(served, service_settings(overrides), work, next(ports))
                )
                chosen = auto.metadata()
                click.echo(f"The auto bento serves {chosen['variant']}: {chosen['runtime']}")
                label = f"bento (auto: {chosen['variant']})" + (
                    f", {overrides}" if overrides else ""
                )
                running[label] = auto
            if each_variant:
                for variant in served.variants:
                    running[f"bento ({variant})"] = servers.enter_context(
                        bento_server(served, service_settings("", variant), work, next(ports))
                    )
            if request_log:
                logged = service_settings("")
                logged.request_log.path = str(work / "request-log")
                running["bento (auto), request log on"] = servers.enter_context(
                    bento_server(served, logged, work, next(ports))
                )
            onnx_model = served.variants[chosen["variant"]]
            running[f"{ONNX_RUNTIME_BASELINE} ({chosen['variant']})"] = servers.enter_context(
                uvicorn_server(
                    "onnx_runtime_app", next(ports), {"ONNX_MODEL_DIR": str(onnx_model.directory)}
                )
            )
            running[TRANSFORMERS_BASELINE] = servers.enter_context(
                uvicorn_server(
                    "transformers_app",
                    next(ports),
                    {
                        "TRANSFORMERS_MODEL_DIR": str(served.pytorch_directory),
                        "TRANSFORMERS_MAX_LENGTH": str(onnx_model.max_length),
                    },
                )
            )
            for text_set, sent in texts.items():
                for count in clients.split(","):
                    level = measure(running, sent, int(count), requests, rounds)
                    for name, figures in level.items():
                        results.setdefault(text_set, {}).setdefault(name, []).append(figures)
    print()
    print(markdown(results))
    print()
    print(accuracy_table(served, chosen))
    print(
        f"\n{served.name} version {served.version}, max_length {onnx_model.max_length}. "
        f"{requests} timed requests per server, text set and level in {rounds} alternating "
        f"rounds, one text each; CPU: {cpu_description()}, {os.cpu_count()} cores; load "
        f"average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after."
    )


if __name__ == "__main__":
    main()
