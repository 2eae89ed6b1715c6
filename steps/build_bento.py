"""Build step: a bento of the service and the deployable ONNX model, exported as one file."""

from pathlib import Path
from typing import Annotated

from zenml import step
from zenml.logger import get_logger

from materializers.bento import default_bentoml_home, default_request_log
from materializers.onnx_model import step_output_directory
from pipelines.step_cache import code_cache_policy
from stackport.core.names import Artifact
from stackport.core.settings import DeploymentSettings, ServiceSettings
from stackport.inference.onnx_model import OnnxModel
from stackport.serving.bento import (
    SERVICE_MODULE,
    BentoArchive,
    build_bento_archive,
    deploy_config,
)

logger = get_logger(__name__)


# The bento build imports the service in a process of its own: its files count too.
@step(cache_policy=code_cache_policy(__name__, SERVICE_MODULE))
def build_bento(
    onnx_model: OnnxModel,
    onnx_model_optimized: OnnxModel,
    onnx_model_int8: OnnxModel,
    onnx_model_static_int8: OnnxModel,
    model_name: str,
    model_version: str,
    deployable: dict[str, dict[str, float]],
    service: ServiceSettings,
    deployment: DeploymentSettings,
) -> Annotated[BentoArchive, Artifact.BENTO]:
    """Build the bento of the deployable variants, and export it (Docker build files included).

    Args:
        onnx_model: The model version's fp32 ONNX model.
        onnx_model_optimized: Its `fp32-optimized` variant.
        onnx_model_int8: Its `dynamic-int8` variant.
        onnx_model_static_int8: Its `static-int8` variant.
        model_name: The Model Control Plane model.
        model_version: The version served.
        deployable: The variants the accuracy gate let through, each with its own test
            metrics (answered by `/metadata`); the bento carries only these.
        service: Workers, threads, batching, request limits and the request log, read by the
            service (a log without a path gets `default_request_log()`).
        deployment: Where it is deployed (copied into the bento with the rest of the settings);
            its `bentoml_home` is the store.

    Returns:
        The exported bento, tagged `<model name>:<version>-<content hash>`.
    """
    variants = [
        variant
        for variant in (onnx_model, onnx_model_optimized, onnx_model_int8, onnx_model_static_int8)
        if variant.variant in deployable
    ]
    if service.request_log.path is None:
        request_log = service.request_log.model_copy(update={"path": default_request_log()})
        service = service.model_copy(update={"request_log": request_log})
    archive = build_bento_archive(
        variants,
        model_name,
        model_version,
        deployable,
        deploy_config(model_name, model_version, service, deployment),
        Path(deployment.bentoml_home or default_bentoml_home()),
        step_output_directory(Artifact.BENTO),
    )
    logger.info("Built bento %s (ONNX variants: %s).", archive.tag, ", ".join(deployable))
    return archive
