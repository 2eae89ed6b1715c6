"""The monitoring pipeline: a model version's served inputs against its training reference.

resolve the version → build its reference (train split, predicted) → load a window of the
request log → Evidently's drift report. `run.py --pipeline monitor` runs it, writes the verdict
(`--summary`) and, with `monitor.retrain_on_drift`, starts the training pipeline when the
served inputs drifted (`retrain_after_drift`).
"""

from __future__ import annotations

from typing import Any

from zenml import pipeline

from stackport.core.settings import MonitorSettings
from stackport.monitoring.drift import DriftSummary
from steps.build_drift_reference import build_drift_reference
from steps.detect_drift import detect_drift
from steps.load_served_inputs import load_served_inputs
from steps.resolve_monitored_model import resolve_monitored_model

# The training run started because of drift carries this tag and `RETRAIN_REASON_KEY` metadata.
RETRAIN_TAG = "retrained-on-drift"
RETRAIN_REASON_KEY = "trigger"


@pipeline
def monitoring_pipeline(monitor: MonitorSettings) -> None:
    """Compare a window of the served inputs with the version's training data, by Evidently.

    Args:
        monitor: The model version, the log and its window, and the verdict's thresholds.
    """
    monitored = resolve_monitored_model(monitor=monitor)
    drift_reference = build_drift_reference(monitored, monitor=monitor)
    served_inputs, served_window = load_served_inputs(monitored, monitor=monitor)
    detect_drift(drift_reference, served_inputs, served_window, monitored, monitor=monitor)


def retrain_reason(summary: DriftSummary, monitor_run: str) -> dict[str, Any]:
    """Why a training run was started: the monitor run and what drifted (run metadata)."""
    return {
        "reason": "drift detected",
        "monitor_run": monitor_run,
        "model": f"{summary.model_name} version {summary.model_version}",
        "drifted_features": summary.drifted_features,
        "drifted_share": summary.drifted_share,
        "records": summary.records,
    }
