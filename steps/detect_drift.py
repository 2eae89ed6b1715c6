"""Drift step: Evidently's data drift report on the served inputs against the reference."""

from typing import Annotated

import pandas as pd
from zenml import log_metadata, step
from zenml.integrations.evidently.column_mapping import EvidentlyColumnMapping
from zenml.integrations.evidently.data_validators import EvidentlyDataValidator
from zenml.integrations.evidently.metrics import EvidentlyMetricConfig
from zenml.logger import get_logger

from pipelines.monitored_model import MonitoredModel
from stackport.core.names import Artifact
from stackport.core.settings import MonitorSettings
from stackport.monitoring.drift import (
    CATEGORICAL_FEATURES,
    NUMERICAL_FEATURES,
    TEXT_FEATURE,
    DriftReportPage,
    DriftSummary,
    not_enough,
    not_enough_page,
    summarize,
)
from stackport.monitoring.served_inputs import ServedWindow

logger = get_logger(__name__)


@step(enable_cache=False)
def detect_drift(
    drift_reference: pd.DataFrame,
    served_inputs: pd.DataFrame,
    served_window: ServedWindow,
    monitored: MonitoredModel,
    monitor: MonitorSettings,
) -> tuple[
    Annotated[DriftSummary, Artifact.DRIFT_SUMMARY],
    Annotated[DriftReportPage, Artifact.DRIFT_REPORT],
]:
    """Test every feature (and the texts, when both sides hold them) for drift; record the verdict.

    With fewer than `monitor.min_records` served records there is no verdict. Otherwise the
    active stack's Evidently data validator runs a `DataDriftPreset`, and the version's
    metadata gets `drift_detected` and `drifted_share`.

    Args:
        drift_reference: The reference's drift features.
        served_inputs: The window's drift features.
        served_window: What the window holds.
        monitored: The version monitored.
        monitor: `min_records` and `drift_share`.

    Returns:
        The summary, and the report page (Evidently's HTML report, when it ran).
    """
    context = (monitored.name, monitored.version, served_window)
    if served_window.records < monitor.min_records:
        summary = not_enough(
            *context, monitor.min_records, len(drift_reference), monitor.drift_share
        )
        logger.warning("%s.", summary.message)
        log_metadata(
            {"drift_verdict": summary.message},
            model_name=monitored.name,
            model_version=monitored.version,
        )
        return summary, not_enough_page(summary)
    texts = (
        [TEXT_FEATURE] if TEXT_FEATURE in served_inputs and TEXT_FEATURE in drift_reference else []
    )
    columns = EvidentlyColumnMapping(
        target=None,
        prediction=None,
        numerical_features=list(NUMERICAL_FEATURES),
        categorical_features=list(CATEGORICAL_FEATURES),
        text_features=texts or None,
    )
    validator = EvidentlyDataValidator.get_active_data_validator()
    report = validator.data_profiling(
        dataset=drift_reference[[*NUMERICAL_FEATURES, *CATEGORICAL_FEATURES, *texts]],
        comparison_dataset=served_inputs[[*NUMERICAL_FEATURES, *CATEGORICAL_FEATURES, *texts]],
        profile_list=[
            EvidentlyMetricConfig.metric("DataDriftPreset", drift_share=monitor.drift_share)
        ],
        column_mapping=columns.to_evidently_column_mapping(),
    )
    summary = summarize(report.as_dict(), *context, monitor.min_records, len(drift_reference))
    logger.info("%s.", summary.message)
    log_metadata(
        {
            "drift_detected": summary.drift_detected,
            "drifted_share": summary.drifted_share,
            "drifted_features": summary.drifted_features,
            "drift_verdict": summary.message,
        },
        model_name=monitored.name,
        model_version=monitored.version,
    )
    return summary, DriftReportPage(report.get_html())
