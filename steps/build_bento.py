"""Build step: a bento of the service and the deployable ONNX model, exported as one file."""

from pathlib import Path
from typing import Annotated

from zenml import step
from zenml.logger import get_logger

from materializers.bento import default_bentoml_home
from materializers.onnx_model import step_output_directory
from stackport.core.names import Artifact
from stackport.core.settings import DeploymentSettings, ServiceSettings
from stackport.inference.onnx_model import OnnxModel
from stackport.serving.bento import BentoArchive, build_bento_archive, deploy_config

logger = get_logger(__name__)


@step
def build_bento(
    onnx_model: OnnxModel,
    model_name: str,
    model_version: str,
    metrics: dict[str, float],
    metrics_of: str,
    service: ServiceSettings,
    deployment: DeploymentSettings,
) -> Annotated[BentoArchive, Artifact.BENTO]:
    """Build the bento in the BentoML store and export it (Docker build files included).

    Args:
        onnx_model: The model version's deployable ONNX model.
        model_name: The Model Control Plane model.
        model_version: The version served.
        metrics: The ONNX model's own test metrics, answered by `/metadata`.
        metrics_of: Which model and split the metrics are of.
        service: Workers, threads, batching and request limits, read by the service.
        deployment: Where it is deployed (copied into the bento with the rest of the settings);
            its `bentoml_home` is the store.

    Returns:
        The exported bento, tagged `<model name>:<version>-<content hash>`.
    """
    archive = build_bento_archive(
        onnx_model,
        model_name,
        model_version,
        metrics,
        metrics_of,
        deploy_config(model_name, model_version, service, deployment),
        Path(deployment.bentoml_home or default_bentoml_home()),
        step_output_directory(Artifact.BENTO),
    )
    logger.info("Built bento %s (%s ONNX model).", archive.tag, onnx_model.quantization)
    return archive
