"""The drift summary read from a real Evidently report, and the monitor's two materializers."""

import numpy as np
import pandas as pd
from evidently.legacy.metric_preset import DataDriftPreset
from evidently.legacy.pipeline.column_mapping import ColumnMapping
from evidently.legacy.report import Report

from materializers.drift_report import DriftReportPageMaterializer, DriftSummaryMaterializer
from stackport.monitoring.drift import DriftReportPage, not_enough, not_enough_page, summarize
from stackport.monitoring.served_inputs import ServedWindow
from tests.helpers import materializer_round_trip

WINDOW = ServedWindow(
    path="log",
    files=1,
    model_records=300,
    records=300,
    last_records=None,
    since=None,
    first=None,
    last=None,
)


def evidently_report(shift: float, seed: int = 1) -> dict:
    random = np.random.default_rng(seed)
    reference = pd.DataFrame(
        {"chars": random.normal(100, 10, 500), "tokens": random.normal(20, 3, 500)}
    )
    current = pd.DataFrame(
        {"chars": random.normal(100 + shift, 10, 300), "tokens": random.normal(20, 3, 300)}
    )
    report = Report(metrics=[DataDriftPreset(drift_share=0.5)])
    report.run(
        reference_data=reference,
        current_data=current,
        column_mapping=ColumnMapping(numerical_features=["chars", "tokens"]),
    )
    return report.as_dict()


def test_a_shift_in_one_of_two_features_is_drift_at_a_share_of_one_half():
    summary = summarize(evidently_report(shift=30), "m", "1", WINDOW, 50, 500)

    assert summary.verdict == "drift" and summary.drift_detected is True
    assert summary.drifted_features == ["chars"]
    assert summary.drifted_share == 0.5
    chars = summary.features[0]
    assert chars.statistic.startswith("K-S") and chars.score < chars.threshold
    assert summary.verdict_fields()["drifted_features"] == ["chars"]


def test_no_shift_is_no_drift():
    summary = summarize(evidently_report(shift=0), "m", "1", WINDOW, 50, 500)

    assert summary.verdict == "no drift" and summary.drift_detected is False
    assert summary.drifted_features == []


def test_materializers_round_trip(tmp_path):
    summary = summarize(evidently_report(shift=30), "m", "1", WINDOW, 50, 500)
    assert materializer_round_trip(DriftSummaryMaterializer, summary, tmp_path / "s") == summary
    few = not_enough("m", "1", WINDOW.model_copy(update={"records": 3}), 50, 500, 0.5)
    assert few.drift_detected is None and "(3 < 50)" in few.message
    page = not_enough_page(few)
    loaded = materializer_round_trip(DriftReportPageMaterializer, page, tmp_path / "p")
    assert loaded == page and isinstance(loaded, DriftReportPage)
