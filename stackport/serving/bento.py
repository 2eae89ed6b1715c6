"""Building a bento of the service and an `OnnxModel`, and moving it between BentoML stores.

BentoML keeps its stores in process-wide state (`BENTOML_HOME`) and `bentoml build` imports
the service module, which reads its configuration at import time; every BentoML command
therefore runs in a child process of its own, with the store given in `BENTOML_HOME`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import yaml
from pydantic import BaseModel

from stackport.core.settings import DeploymentSettings, ServiceSettings
from stackport.core.sources import LIBRARY_PACKAGE, REPO_ROOT, local_sources
from stackport.inference.onnx_model import MANIFEST_FILENAME, MODEL_FILENAME, OnnxModel

SERVICE_MODULE = "stackport.serving.service"
SERVICE = f"{SERVICE_MODULE}:TextModelService"
# Everything the service imports; the bento installs nothing else (no torch, no transformers).
BENTO_PACKAGES = ("onnxruntime", "tokenizers", "numpy", "pydantic", "PyYAML", "pyarrow", "fsspec")
# The fsspec implementation a request log on a URI of this protocol needs.
PROTOCOL_PACKAGES = {"az": "adlfs", "abfs": "adlfs", "abfss": "adlfs"}
PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
BUILD_TIMEOUT_S = 600
TAG_MAX_LENGTH = 63
HASH_CHARS = 8
ARCHIVE_SUFFIX = ".bento.tar"


@dataclass
class BentoArchive:
    """A bento exported to one `.bento.tar` file: service code, ONNX model and Docker build files.

    Attributes:
        tag: The bento's tag, `<model name>:<model version>-<content hash>`.
        path: The local `.bento.tar` file: an uncompressed tar archive of the bento directory
            (`bentoml import` reads it by its extension). BentoML's own `.bento` is xz, which
            spends minutes compressing ONNX weights that hardly compress.
    """

    tag: str
    path: Path


class BuildRequest(BaseModel):
    """What the build child process does (`python -m stackport.serving.bento REQUEST_JSON`)."""

    context: str
    model_directories: dict[str, str]
    model_tag: str
    bento_tag: str
    output: str


def tag_part(text: str, max_length: int = TAG_MAX_LENGTH) -> str:
    """`text` made part of a BentoML tag: lowercase, `a-z0-9._-`, at most `max_length` chars."""
    cleaned = re.sub(r"[^a-z0-9._-]+", "-", text.lower())[:max_length]
    return cleaned.strip("._-") or "0"


def storage_package(request_log_path: str) -> str | None:
    """The fsspec implementation a served-input log at `request_log_path` needs, if any."""
    protocol = request_log_path.split("://")[0] if "://" in request_log_path else ""
    return PROTOCOL_PACKAGES.get(protocol)


def python_requirements(
    request_log_path: str = "", packages: tuple[str, ...] = BENTO_PACKAGES
) -> list[str]:
    """A server's Python packages (the bento's by default), pinned to the versions installed here.

    Args:
        request_log_path: Where the server logs its inputs; an `az://` URI adds adlfs.
        packages: What the server imports.
    """
    storage = storage_package(request_log_path)
    names = [*packages, *([storage] if storage else [])]
    return [f"{name}=={version(name)}" for name in names]


def service_sources(task: str, entry_module: str = SERVICE_MODULE) -> list[Path]:
    """A server's module and the library modules it imports, transitively (by their AST).

    The server (the bento's service, or the AzureML scoring script `entry_module` names)
    loads the inference plug-in of the served model's task by name, so the walk starts from
    that plug-in too.

    Returns:
        Paths relative to the repository, sorted, with each package's `__init__.py`.
    """
    return local_sources([entry_module, f"{LIBRARY_PACKAGE}.tasks.{task}.infer"])


def content_hash(directory: Path) -> str:
    """sha256 over the relative paths and contents of every file under `directory`."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(directory)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def deploy_config(
    model_name: str, model_version: str, service: ServiceSettings, deployment: DeploymentSettings
) -> dict:
    """The deployment settings a bento carries as its `configs/deploy.yaml` (a run config)."""
    return {
        "parameters": {
            "model": {"name": model_name, "version": model_version},
            "service": service.model_dump(mode="json"),
            "deployment": deployment.model_dump(mode="json"),
        }
    }


def copy_sources(directory: Path, sources: list[Path]) -> None:
    """Copy the repository's files `sources` (relative paths) into `directory`."""
    for relative in sources:
        (directory / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO_ROOT / relative, directory / relative)


def write_build_context(directory: Path, served_model: dict, deploy_config: dict) -> None:
    """Fill `directory` with what the bento's `src` holds.

    Args:
        directory: An empty directory.
        served_model: `ServedModel` fields, written to `configs/served_model.json`.
        deploy_config: The deployment settings, written as `configs/deploy.yaml`.
    """
    copy_sources(directory, service_sources(served_model["task"]))
    configs = directory / "configs"
    configs.mkdir(exist_ok=True)
    (configs / "deploy.yaml").write_text(yaml.safe_dump(deploy_config, sort_keys=False))
    (configs / "served_model.json").write_text(json.dumps(served_model, indent=2))


def bentofile(bento_name: str, description: str, request_log_path: str = "") -> dict:
    """The build configuration: service, pinned packages, the container's Python, env."""
    return {
        "service": SERVICE,
        "name": bento_name,
        "description": description,
        "include": ["**/*.py", "configs/*"],
        "python": {"packages": python_requirements(request_log_path), "lock_packages": False},
        # As measured: each worker tokenizes in the thread that runs its session.
        "envs": [{"name": "TOKENIZERS_PARALLELISM", "value": "false", "stage": "runtime"}],
        "docker": {"distro": "debian", "python_version": PYTHON_VERSION},
    }


def build_bento_archive(
    variants: list[OnnxModel],
    model_name: str,
    model_version: str,
    metrics: dict[str, dict[str, float]],
    deploy_config: dict,
    bentoml_home: Path,
    output_directory: Path,
) -> BentoArchive:
    """Build (or reuse) the bento serving the deployable ONNX variants, and export it.

    The variants are one BentoML model, a folder per variant; the service serves the fastest
    of them on the machine it starts on (`service.runtime`). The bento's version is the model
    version followed by a hash of the bento's sources, configuration and models, so that equal
    content gives an equal tag and is built once.

    Args:
        variants: The version's deployable ONNX variants, one of each.
        model_name: Its Model Control Plane model name.
        model_version: Its Model Control Plane version name.
        metrics: Each variant's own test metrics, answered by `/metadata`, by variant.
        deploy_config: The deployment settings, copied into the bento as `configs/deploy.yaml`.
        bentoml_home: The BentoML store (`BENTOML_HOME`).
        output_directory: Receives the exported `<name>-<version>.bento.tar` file.

    Returns:
        The exported bento.
    """
    model_name_part = tag_part(model_name, TAG_MAX_LENGTH - len("-onnx"))
    version_part = tag_part(model_version, TAG_MAX_LENGTH - HASH_CHARS - 1)
    graphs = {str(model.variant): model.file_sha256[MODEL_FILENAME] for model in variants}
    graphs_hash = hashlib.sha256(json.dumps(graphs, sort_keys=True).encode()).hexdigest()
    model_tag = f"{model_name_part}-onnx:{version_part}-{graphs_hash[:HASH_CHARS]}"
    served_model = {
        "name": model_name,
        "version": model_version,
        "task": variants[0].task,
        "bentoml_model": model_tag,
        "variants": {str(model.variant): metrics[str(model.variant)] for model in variants},
    }
    with tempfile.TemporaryDirectory(prefix="stackport-bento-") as context:
        context_path = Path(context)
        write_build_context(context_path, served_model, deploy_config)
        fingerprint = hashlib.sha256(
            (content_hash(context_path) + graphs_hash).encode()
        ).hexdigest()
        bento_tag = f"{tag_part(model_name)}:{version_part}-{fingerprint[:HASH_CHARS]}"
        names = ", ".join(graphs)
        description = f"{model_name} version {model_version} (ONNX variants: {names})."
        request_log = deploy_config["parameters"]["service"].get("request_log", {})
        build = bentofile(tag_part(model_name), description, request_log.get("path") or "")
        (context_path / "bentofile.yaml").write_text(yaml.safe_dump(build, sort_keys=False))
        output = output_directory / f"{bento_tag.replace(':', '-')}{ARCHIVE_SUFFIX}"
        request = BuildRequest(
            context=context,
            model_directories={str(model.variant): str(model.directory) for model in variants},
            model_tag=model_tag,
            bento_tag=bento_tag,
            output=str(output),
        )
        run_bentoml(
            [sys.executable, "-m", "stackport.serving.bento", request.model_dump_json()],
            bentoml_home,
        )
    return BentoArchive(tag=bento_tag, path=output)


def run_bentoml(command: list[str], bentoml_home: Path, timeout_s: float = BUILD_TIMEOUT_S) -> str:
    """Run a BentoML command in a child process on the store `bentoml_home`; its stdout.

    Raises:
        RuntimeError: The command failed; with the end of its output.
    """
    environment = {**os.environ, "BENTOML_HOME": str(bentoml_home), "BENTOML_DO_NOT_TRACK": "1"}
    result = subprocess.run(
        command,
        env=environment,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command[:4])} failed (exit code {result.returncode}):\n"
            f"{(result.stdout + result.stderr)[-3000:]}"
        )
    return result.stdout


def bento_directory(tag: str, bentoml_home: Path) -> Path:
    """Where the store `bentoml_home` keeps the bento `tag`."""
    name, version_part = tag.split(":")
    return bentoml_home / "bentos" / name / version_part


def import_bento(archive: BentoArchive, bentoml_home: Path) -> Path:
    """Put an exported bento into the store `bentoml_home`, unless it is there already.

    Returns:
        The bento's directory in the store.
    """
    directory = bento_directory(archive.tag, bentoml_home)
    if not directory.is_dir():
        run_bentoml([sys.executable, "-m", "bentoml", "import", str(archive.path)], bentoml_home)
    return directory


def _build_in_store(request: BuildRequest) -> None:
    """In the child process: save the model in the store, build the bento, export it."""
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        bentoml.models.get(request.model_tag)
    except NotFound:
        models = {
            variant: OnnxModel.load(directory)
            for variant, directory in request.model_directories.items()
        }
        first = next(iter(models.values()))
        with bentoml.models.create(
            request.model_tag,
            module="stackport.onnx",
            labels={"task": first.task, "variants": ",".join(models)},
            metadata={
                "label_names": first.label_names,
                "max_length": first.max_length,
                "max_windows": first.max_windows,
            },
        ) as stored:
            for variant, model in models.items():
                folder = Path(stored.path) / variant
                folder.mkdir()
                for name in [MANIFEST_FILENAME, *model.file_sha256]:
                    shutil.copyfile(model.directory / name, folder / name)
    try:
        bento = bentoml.get(request.bento_tag)
    except NotFound:
        # The build imports the service to check it: from the build context, with the
        # context's configs, not from the library this process was started from.
        for name in [module for module in sys.modules if module.split(".")[0] == LIBRARY_PACKAGE]:
            del sys.modules[name]
        bento = bentoml.bentos.build_bentofile(
            str(Path(request.context) / "bentofile.yaml"),
            version=request.bento_tag.split(":")[1],
            build_ctx=request.context,
        )
    bentoml.export_bento(bento.tag, request.output, output_format="tar")


if __name__ == "__main__":
    _build_in_store(BuildRequest.model_validate_json(sys.argv[1]))
