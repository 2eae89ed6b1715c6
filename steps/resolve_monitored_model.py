"""Resolve step: the model version the monitor watches, found when the run starts."""

from typing import Annotated

from zenml import step
from zenml.logger import get_logger

from pipelines.monitored_model import MonitoredModel, find_monitored_model
from stackport.core.names import Artifact
from stackport.core.settings import MonitorSettings

logger = get_logger(__name__)


# A stage names another version once a newer one is promoted: resolve it every run.
@step(enable_cache=False)
def resolve_monitored_model(
    monitor: MonitorSettings,
) -> Annotated[MonitoredModel, Artifact.MONITORED_MODEL]:
    """The version `monitor.model_name` / `model_version` name, with its ONNX model and train split.

    Args:
        monitor: Which model and version (by default the production version of the model of
            the latest training run).

    Returns:
        The version and the artifact IDs of its fp32 ONNX model and its train split.
    """
    monitored = find_monitored_model(monitor)
    logger.info("Monitoring %s version %s.", monitored.name, monitored.version)
    return monitored
