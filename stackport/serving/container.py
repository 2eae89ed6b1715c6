"""Building a bento's OCI image with `bentoml containerize` on a container engine.

The image is built on the first container engine that works here (Docker, podman, buildah or
nerdctl), after pulling the bento's base image.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from stackport.core.settings import ContainerEngine, DeploymentSettings
from stackport.serving.bento import BentoArchive, import_bento, run_bentoml
from stackport.serving.deployment import Deployment

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


class ContainerEngineUnavailableError(RuntimeError):
    """`target: container` needs a working container engine, and there is none."""


class BaseImageUnavailableError(RuntimeError):
    """The container engine cannot get the bento's base image (e.g. its registry is offline)."""


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
