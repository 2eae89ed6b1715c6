"""Served-inputs step: the window of the request log the monitor compares with the reference."""

from typing import Annotated

import pandas as pd
from zenml import step
from zenml.client import Client
from zenml.logger import get_logger

from materializers.bento import default_request_log
from pipelines.monitored_model import MonitoredModel
from stackport.core.names import Artifact
from stackport.core.settings import MonitorSettings
from stackport.monitoring.drift import drift_features, holds_texts
from stackport.monitoring.served_inputs import ServedWindow, read_window

logger = get_logger(__name__)


# The log grows between runs under the same settings: read it every time.
@step(enable_cache=False)
def load_served_inputs(
    monitored: MonitoredModel, monitor: MonitorSettings
) -> tuple[
    Annotated[pd.DataFrame, Artifact.SERVED_INPUTS],
    Annotated[ServedWindow, Artifact.SERVED_WINDOW],
]:
    """Read the version's records of the window (`last_records`, `since`) from the log.

    A log on the artifact store's filesystem (a URI of its scheme) is read with
    the artifact store's credentials.

    Args:
        monitored: The version whose records are read.
        monitor: Where the log is (null: `default_request_log()`) and the window.

    Returns:
        The records' drift features (with the texts when `monitor.texts` and the log holds
        them), and what the window holds.
    """
    path = monitor.request_log or default_request_log()
    store = Client().active_stack.artifact_store
    on_store = path.startswith(tuple(store.config.SUPPORTED_SCHEMES - {""}))
    records, window = read_window(
        path,
        monitored.name,
        monitored.version,
        monitor.last_records,
        monitor.since,
        filesystem=store.filesystem if on_store else None,
    )
    logger.info(
        "Served inputs: %d records of %d files in %s (%d of this version in all).",
        window.records,
        window.files,
        window.path,
        window.model_records,
    )
    return drift_features(records, texts=monitor.texts and holds_texts(records)), window
