"""Serving a bento on this machine with `bentoml serve` in the background.

A local deployment is recorded in `<BENTOML_HOME>/deployments/<model>.json` (URL, PID and the
process's start time); deploying the same model again stops the recorded process first, after
checking that the PID still belongs to it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from stackport.core.settings import DeploymentSettings
from stackport.serving.bento import BentoArchive, import_bento, tag_part
from stackport.serving.deployment import Deployment

READY_POLL_S = 0.5
STOP_TIMEOUT_S = 20
LOG_TAIL_CHARS = 3000
ALL_INTERFACES = ("0.0.0.0", "::", "")


def deployments_directory(bentoml_home: Path) -> Path:
    """Where local deployments are recorded and log."""
    return bentoml_home / "deployments"


def record_path(bentoml_home: Path, model_name: str) -> Path:
    """The record of the local deployment of `model_name`."""
    return deployments_directory(bentoml_home) / f"{tag_part(model_name)}.json"


def serve_locally(
    archive: BentoArchive,
    model_name: str,
    model_version: str,
    settings: DeploymentSettings,
    bentoml_home: Path,
) -> Deployment:
    """Serve the bento with `bentoml serve` in the background, replacing the model's last one.

    Args:
        archive: The exported bento; imported into the store if needed.
        model_name: The model, whose earlier local deployment is stopped first.
        model_version: Its version (recorded).
        settings: Host, port and how long to wait for `/readyz`.
        bentoml_home: The BentoML store.

    Returns:
        The deployment, once `/readyz` answers 200.

    Raises:
        RuntimeError: The port is taken by another process (the earlier deployment keeps
            running), or the server exited or did not get ready in time (it is stopped; the
            message ends with its log).
    """
    import_bento(archive, bentoml_home)
    record = record_path(bentoml_home, model_name)
    previous = Deployment.model_validate_json(record.read_text()) if record.is_file() else None
    url = server_url(settings.host, settings.port)
    frees_the_port = previous is not None and previous.url == url and running(previous) is not None
    if port_in_use(settings.host, settings.port) and not frees_the_port:
        raise RuntimeError(
            f"Port {settings.port} on {settings.host} is in use by another process: stop it "
            "or choose another deployment.port."
        )
    if previous is not None:
        stop(previous)
        record.unlink()
    log_file = deployments_directory(bentoml_home) / f"{archive.tag.replace(':', '-')}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    process = start_server(archive.tag, settings.host, settings.port, bentoml_home, log_file)
    deployment = Deployment(
        model_name=model_name,
        model_version=model_version,
        bento_tag=archive.tag,
        target="local",
        url=url,
        pid=process.pid,
        process_started=psutil.Process(process.pid).create_time(),
        log_file=str(log_file),
    )
    try:
        wait_until_ready(deployment, process, settings.startup_timeout_s)
    except RuntimeError:
        stop(deployment)
        raise
    record.write_text(deployment.model_dump_json(indent=2))
    return deployment


def server_url(host: str, port: int) -> str:
    """The URL clients on this machine use."""
    return f"http://{'127.0.0.1' if host in ALL_INTERFACES else host}:{port}"


def port_in_use(host: str, port: int) -> bool:
    """Whether something accepts connections on the port."""
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1" if host in ALL_INTERFACES else host, port)) == 0


def start_server(
    bento_tag: str, host: str, port: int, bentoml_home: Path, log_file: Path
) -> subprocess.Popen:
    """Start `bentoml serve` in a session of its own, so that it outlives this process."""
    with log_file.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "bentoml", "serve", bento_tag]
            + ["--host", host, "--port", str(port)],
            env={**os.environ, "BENTOML_HOME": str(bentoml_home), "BENTOML_DO_NOT_TRACK": "1"},
            cwd=bentoml_home,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def wait_until_ready(deployment: Deployment, process: subprocess.Popen, timeout_s: float) -> None:
    """Poll `/readyz` until it answers 200.

    Raises:
        RuntimeError: The server exited, or was not ready after `timeout_s`; with its log's end.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"bentoml serve {deployment.bento_tag} exited with code {process.returncode}:\n"
                f"{log_tail(deployment)}"
            )
        try:
            with urllib.request.urlopen(f"{deployment.url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(READY_POLL_S)
    raise RuntimeError(
        f"bentoml serve {deployment.bento_tag} was not ready at {deployment.url}/readyz after "
        f"{timeout_s:g} s:\n{log_tail(deployment)}"
    )


def log_tail(deployment: Deployment) -> str:
    """The end of the server's log."""
    path = Path(deployment.log_file or "")
    return path.read_text(errors="replace")[-LOG_TAIL_CHARS:] if path.is_file() else ""


def running(deployment: Deployment) -> psutil.Process | None:
    """The deployment's server process, if it runs.

    A process is only taken for the server when its start time is the recorded one, so a PID
    reused by another program is left alone.
    """
    if deployment.pid is None:
        return None
    try:
        process = psutil.Process(deployment.pid)
        started = process.create_time()
    except psutil.NoSuchProcess:
        return None
    return process if started == deployment.process_started else None


def stop(deployment: Deployment) -> bool:
    """Stop a local deployment's server and its workers (SIGTERM, SIGKILL after 20 s).

    Returns:
        Whether a running server was stopped.
    """
    process = running(deployment)
    if process is None:
        return False
    try:
        processes = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return False
    for member in processes:  # the workers run in sessions of their own
        with contextlib.suppress(psutil.NoSuchProcess):
            member.terminate()
    _, alive = psutil.wait_procs(processes, timeout=STOP_TIMEOUT_S)
    for survivor in alive:
        survivor.kill()
    psutil.wait_procs(alive, timeout=STOP_TIMEOUT_S)
    return True
