"""Deploy step: serve the bento locally in the background, or build its container image."""

from pathlib import Path
from typing import Annotated

from zenml import log_metadata, step
from zenml.logger import get_logger

from materializers.bento import default_bentoml_home
from stackport.core.names import Artifact
from stackport.core.settings import DeploymentSettings
from stackport.serving.bento import BentoArchive
from stackport.serving.deployment import Deployment
from stackport.serving.targets import deploy

logger = get_logger(__name__)


@step(enable_cache=False)
def deploy_bento(
    bento: BentoArchive,
    model_name: str,
    model_version: str,
    deployment: DeploymentSettings,
) -> Annotated[Deployment, Artifact.BENTO_DEPLOYMENT]:
    """Deploy the bento (`deployment.target`) and record it on the model version.

    Args:
        bento: The exported bento.
        model_name: The Model Control Plane model; its earlier local deployment is replaced.
        model_version: The version served.
        deployment: Target, host, port, start-up timeout, container engine and BentoML store.

    Returns:
        URL and PID of the local server, or the image tag and the engine that built it.
    """
    return deploy_and_record(bento, model_name, model_version, deployment)


def deploy_and_record(
    bento: BentoArchive, model_name: str, model_version: str, deployment: DeploymentSettings
) -> Deployment:
    """Deploy the bento and log the deployment as the model version's `deployment` metadata.

    The deploy step calls this, and so does `pipelines.deployment.run_deployment` on the
    client when the pipeline ran on a remote orchestrator.
    """
    bentoml_home = Path(deployment.bentoml_home or default_bentoml_home())
    deployed = deploy(bento, model_name, model_version, deployment, bentoml_home)
    logger.info("Deployed %s: %s", bento.tag, deployed.url or deployed.image)
    log_metadata(
        {"deployment": deployed.model_dump(mode="json")},
        model_name=model_name,
        model_version=model_version,
    )
    return deployed
