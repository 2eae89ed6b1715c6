"""Serving a bento on this machine with `bentoml serve` in the background, or building its image.

An image is built by `bentoml containerize` on the first container engine that works here
(Docker, podman, buildah or nerdctl), after pulling the bento's base image.

A local deployment is recorded in `<BENTOML_HOME>/deployments/<model>.json` (URL, PID and the
process's start time); deploying the same model again stops the recorded process first, after
checking that the PID still belongs to it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Literal

import psutil
import yaml
from pydantic import BaseModel, Field

from service.config import StrictSettings
from textmodels.bento_build import BentoArchive, import_bento, run_bentoml, tag_part

READY_POLL_S = 0.5
STOP_TIMEOUT_S = 20
LOG_TAIL_CHARS = 3000
ALL_INTERFACES = ("0.0.0.0", "::", "")
ContainerEngine = Literal["docker", "podman", "buildah", "nerdctl"]
# `bentoml containerize` backends that keep the image in the engine's store, in the order
# tried; buildctl is left out: it needs a BuildKit daemon and an explicit output.
CONTAINER_ENGINES: tuple[ContainerEngine, ...] = ("docker", "podman", "buildah", "nerdctl")
# How each engine tells whether it has an image (exit code 0).
HAS_IMAGE = {
    "docker": ["image", "inspect"],
    "podman": ["image", "exists"],
    "buildah": ["inspect", "--type", "image"],
    "nerdctl": ["image", "inspect"],
}
ENGINE_TIMEOUT_S = 60
PULL_TIMEOUT_S = 900
CONTAINERIZE_TIMEOUT_S = 3600


class DeploymentSettings(StrictSettings):
    """Where and how a bento is deployed."""

    target: Literal["local", "container"] = Field(
        "local", description="local: `bentoml serve` in the background; container: OCI image."
    )
    host: str = "127.0.0.1"
    port: int = Field(3000, ge=1, le=65535)
    startup_timeout_s: float = Field(180, gt=0, description="Wait this long for /readyz.")
    bentoml_home: str | None = Field(
        None, description="BentoML store; null: `bentoml` in the ZenML config directory."
    )
    image_tag: str | None = Field(None, description="container: image tag; null: the bento tag.")
    container_engine: ContainerEngine | None = Field(
        None,
        description="container: the `bentoml containerize` backend; null: the first of "
        "docker, podman, buildah and nerdctl that works here (`<engine> info`).",
    )


class Deployment(BaseModel):
    """A deployed bento: the URL and process of a local server, or the built image."""

    model_name: str
    model_version: str
    bento_tag: str
    target: Literal["local", "container"]
    url: str | None = None
    pid: int | None = None
    process_started: float | None = Field(
        None, description="The process's start time (epoch seconds): tells a reused PID apart."
    )
    log_file: str | None = None
    image: str | None = None
    engine: ContainerEngine | None = Field(None, description="The engine that built the image.")


class ContainerEngineUnavailableError(RuntimeError):
    """`target: container` needs a working container engine, and there is none."""


class BaseImageUnavailableError(RuntimeError):
    """The container engine cannot get the bento's base image (e.g. its registry is offline)."""


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


def build_image(
    archive: BentoArchive,
    model_name: str,
    model_version: str,
    settings: DeploymentSettings,
    bentoml_home: Path,
) -> Deployment:
    """Build the bento's OCI image with `bentoml containerize` on a container engine.

    Raises:
        ContainerEngineUnavailableError: No container engine is usable here.
        BaseImageUnavailableError: The engine cannot get the bento's base image.
        RuntimeError: `bentoml containerize` failed; with the end of its output.
    """
    image = settings.image_tag or archive.tag
    by_hand = build_by_hand(archive, image)
    engine = find_container_engine(settings.container_engine, by_hand)
    bento = import_bento(archive, bentoml_home)
    base_image = yaml.safe_load((bento / "bento.yaml").read_text())["image"]["base_image"]
    ensure_base_image(engine, base_image, by_hand)
    run_bentoml(
        [sys.executable, "-m", "bentoml", "containerize", archive.tag]
        + ["--backend", engine, "--image-tag", image],
        bentoml_home,
        timeout_s=CONTAINERIZE_TIMEOUT_S,
    )
    return Deployment(
        model_name=model_name,
        model_version=model_version,
        bento_tag=archive.tag,
        target="container",
        image=image,
        engine=engine,
    )


def build_by_hand(archive: BentoArchive, image: str) -> str:
    """How to build the image on a machine with Docker, from the exported bento."""
    return (
        f"To build it on a machine with Docker, copy {archive.path} (the run's `bento` "
        f"artifact) there and run: bentoml import {archive.path.name} && bentoml containerize "
        f"{archive.tag} --image-tag {image}"
    )


def engine_problem(engine: str) -> str | None:
    """Why `engine` cannot build images here (not installed, `<engine> info` fails), or None."""
    if shutil.which(engine) is None:
        return "not installed"
    try:
        result = subprocess.run(
            [engine, "info"], capture_output=True, text=True, timeout=ENGINE_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return f"`{engine} info` did not answer in {ENGINE_TIMEOUT_S} s"
    if result.returncode != 0:
        return f"`{engine} info` failed: {last_line(result)}"
    return None


def find_container_engine(preferred: str | None, by_hand: str) -> str:
    """The configured engine, or the first of `CONTAINER_ENGINES` that works here.

    Raises:
        ContainerEngineUnavailableError: It (or none of them) works; names each one's problem.
    """
    problems = []
    for engine in [preferred] if preferred else CONTAINER_ENGINES:
        problem = engine_problem(engine)
        if problem is None:
            return engine
        problems.append(f"{engine}: {problem}")
    raise ContainerEngineUnavailableError(
        "target: container builds the image with `bentoml containerize`, which needs a "
        f"container engine, and none is usable here ({'; '.join(problems)}). Start Docker, "
        "install podman or buildah (where overlay mounts are not allowed: export "
        "STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot) or use target: local. " + by_hand
    )


def ensure_base_image(engine: str, base_image: str, by_hand: str) -> None:
    """Pull the bento's base image unless the engine has it already.

    Raises:
        BaseImageUnavailableError: The pull failed (e.g. no access to the image's registry).
    """
    present = subprocess.run(
        [engine, *HAS_IMAGE[engine], base_image],
        capture_output=True,
        timeout=ENGINE_TIMEOUT_S,
        check=False,
    )
    if present.returncode == 0:
        return
    result = subprocess.run(
        [engine, "pull", base_image],
        capture_output=True,
        text=True,
        timeout=PULL_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0:
        raise BaseImageUnavailableError(
            f"target: container: {engine} cannot pull the bento's base image {base_image} "
            f"(`{engine} pull {base_image}`: {last_line(result)}). Give {engine} access to "
            "the image's registry or load the image into it, or use target: local. " + by_hand
        )


def last_line(result: subprocess.CompletedProcess) -> str:
    """The last line a command wrote (stderr, else stdout), at most 500 characters."""
    lines = (result.stderr or result.stdout).strip().splitlines() or ["no output"]
    return lines[-1][-500:]


def deploy(
    archive: BentoArchive,
    model_name: str,
    model_version: str,
    settings: DeploymentSettings,
    bentoml_home: Path,
) -> Deployment:
    """Serve the bento locally or build its image, as `settings.target` says."""
    target = serve_locally if settings.target == "local" else build_image
    return target(archive, model_name, model_version, settings, bentoml_home)
