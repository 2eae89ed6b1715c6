"""Reference step: the version's train split as the service would have logged it."""

from typing import Annotated

import pandas as pd
from zenml import step
from zenml.client import Client
from zenml.logger import get_logger

from pipelines.monitored_model import MonitoredModel
from pipelines.step_cache import code_cache_policy
from stackport.core.names import Artifact
from stackport.core.settings import MonitorSettings
from stackport.inference.predictor import OnnxPredictor
from stackport.monitoring.drift import drift_features, reference_inputs

logger = get_logger(__name__)


@step(cache_policy=code_cache_policy(__name__))
def build_drift_reference(
    monitored: MonitoredModel, monitor: MonitorSettings
) -> Annotated[pd.DataFrame, Artifact.DRIFT_REFERENCE]:
    """Predict a seeded sample of the train split with the version's ONNX model; its features.

    Args:
        monitored: The version, its ONNX model and its train split.
        monitor: `reference_rows` and `seed` of the sample.

    Returns:
        The drift features (`stackport.monitoring.drift.drift_features`) of the sample.
    """
    client = Client()
    train_set: pd.DataFrame = client.get_artifact_version(monitored.train_set_artifact_id).load()
    onnx_model = client.get_artifact_version(monitored.onnx_artifact_id).load()
    sample = train_set.sample(
        min(monitor.reference_rows, len(train_set)), random_state=monitor.seed
    )
    records = reference_inputs(
        OnnxPredictor(onnx_model), sample["text"].tolist(), monitored.name, monitored.version
    )
    logger.info("Reference: %d training texts of %s, predicted.", len(records), monitored.name)
    return drift_features(records, texts=True)
