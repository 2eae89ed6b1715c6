"""Build step: a bento of the service and the deployable ONNX model, exported as one file."""

from pathlib import Path
from typing import Annotated

from zenml import step
from zenml.logger import get_logger

from materializers.bento import BentoArchiveMaterializer, default_bentoml_home
from materializers.onnx_model import step_output_directory
from service.config import ServiceSettings
from textmodels.bento_build import BentoArchive, build_bento_archive
from textmodels.local_serving import DeploymentSettings
from textmodels.onnx_model import OnnxModel

logger = get_logger(__name__)

OUTPUT = "bento"


@step(output_materializers=BentoArchiveMaterializer)
def build_bento(
    onnx_model: OnnxModel,
    model_name: str,
    model_version: str,
    metrics: dict[str, float],
    service: ServiceSettings,
    deployment: DeploymentSettings,
) -> Annotated[BentoArchive, OUTPUT]:
    """Build the bento in the BentoML store and export it (Docker build files included).

    Args:
        onnx_model: The model version's deployable ONNX model.
        model_name: The Model Control Plane model.
        model_version: The version served.
        metrics: Its test metrics, answered by `/metadata`.
        service: Workers, threads, batching and request limits, read by the service.
        deployment: Where it is deployed (copied into the bento with the rest of the settings);
            its `bentoml_home` is the store.

    Returns:
        The exported bento, tagged `<model name>:<version>-<content hash>`.
    """
    deploy_config = {
        "parameters": {
            "model": {"name": model_name, "version": model_version},
            "service": service.model_dump(mode="json"),
            "deployment": deployment.model_dump(mode="json"),
        }
    }
    archive = build_bento_archive(
        onnx_model,
        model_name,
        model_version,
        metrics,
        deploy_config,
        Path(deployment.bentoml_home or default_bentoml_home()),
        step_output_directory(OUTPUT),
    )
    logger.info("Built bento %s (%s ONNX model).", archive.tag, onnx_model.quantization)
    return archive
