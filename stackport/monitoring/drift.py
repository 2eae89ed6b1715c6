"""What the monitor compares, and its verdict: features of the reference and of served inputs.

The reference is a model version's training data as the service would have logged it: a
seeded sample of its train split, predicted by the version's fp32 ONNX model (which every
served variant was gated against) and measured by `stackport.serving.request_log` exactly as
served texts are. Both sides become the same
drift features (`drift_features`): lengths, the tokenizer's unknown and split shares, what the
model decided and how sure it was, and the texts themselves. Evidently tests each feature;
`summarize` reads its result into a `DriftSummary`, and `not_enough` is the result of a window
with too few records, which gives no verdict.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, Field

from stackport.inference.predictor import OnnxPredictor
from stackport.monitoring.served_inputs import ServedWindow
from stackport.serving.request_log import TextFeatures, log_records
from stackport.tasks import inference_plugin

NUMERICAL_FEATURES = ("chars", "tokens", "unknown_share", "split_share", "outcome_count", "score")
CATEGORICAL_FEATURES = ("outcome",)
TEXT_FEATURE = "text"
NO_OUTCOME = "(none)"
REFERENCE_WORKER = "reference"
PREDICTION_BATCH = 32

Verdict = Literal["drift", "no drift", "not enough served inputs"]


def reference_inputs(
    predictor: OnnxPredictor,
    texts: Sequence[Any],
    model_name: str,
    model_version: str,
) -> pd.DataFrame:
    """The training texts as the service would log them: the model's predictions, measured.

    Args:
        predictor: The model version's fp32 ONNX model.
        texts: Training texts (pre-split words, as word-level data holds them, are joined by
            spaces, as a client would send them).
        model_name: The model, recorded in each row.
        model_version: Its version.

    Returns:
        One row per text, with the columns of the request log.
    """
    strings = [text if isinstance(text, str) else " ".join(text) for text in texts]
    predictions = predictor.predict_batches(strings, PREDICTION_BATCH)
    now = datetime.now(UTC)
    table = log_records(
        strings,
        predictions,
        [now] * len(strings),
        TextFeatures(predictor.tokenizer),
        inference_plugin(predictor.model.task).outcomes,
        {"model_name": model_name, "model_version": model_version, "worker": REFERENCE_WORKER},
        keep_texts=True,
    )
    return table.to_pandas()


def drift_features(records: pd.DataFrame, texts: bool) -> pd.DataFrame:
    """The features drift is tested on, from request-log records.

    `outcome` is the set of labels (entity types) a text got, joined by `|` (`(none)` for
    none); `outcome_count` how many it got (entities: with repeats); `score` their mean score
    (0 for none).

    Args:
        records: Rows with the request log's columns.
        texts: Keep the `text` column (for text drift); the caller checks both sides hold it.
    """
    outcomes = records["outcomes"].map(list)
    scores = records["scores"].map(list)
    features = pd.DataFrame(
        {
            "chars": records["chars"].astype(int),
            "tokens": records["tokens"].astype(int),
            "unknown_share": records["unknown_share"].astype(float),
            "split_share": records["split_share"].astype(float),
            "outcome_count": outcomes.map(len),
            "score": scores.map(lambda values: sum(values) / len(values) if values else 0.0),
            "outcome": outcomes.map(lambda labels: "|".join(sorted(set(labels))) or NO_OUTCOME),
        }
    )
    if texts:
        features[TEXT_FEATURE] = records[TEXT_FEATURE].fillna("").astype(str)
    return features.reset_index(drop=True)


def holds_texts(records: pd.DataFrame) -> bool:
    """Whether every record holds its text (the log was written with `texts: true`)."""
    return bool(len(records)) and bool(records[TEXT_FEATURE].notna().all())


class FeatureDrift(BaseModel):
    """Evidently's test of one feature."""

    feature: str
    kind: str = Field(description="num, cat or text, as Evidently treated the column.")
    statistic: str = Field(description="The test, e.g. `K-S p_value`.")
    score: float = Field(description="The test's value (a p-value, a distance, a ROC AUC).")
    threshold: float = Field(description="The value at which the feature counts as drifted.")
    drifted: bool


class DriftSummary(BaseModel):
    """A monitor run's verdict on one model version's served inputs."""

    model_name: str
    model_version: str
    verdict: Verdict
    drift_detected: bool | None = Field(
        description="Whether the served inputs drifted; null when there were too few."
    )
    message: str = Field(description="The verdict in words.")
    records: int = Field(description="Served records in the window.")
    min_records: int = Field(description="Fewest records that give a verdict.")
    reference_records: int = Field(description="Records of the training reference.")
    window: ServedWindow
    drift_share: float = Field(description="Share of drifted features at which the data drifted.")
    drifted_share: float | None = Field(description="Share of the features that drifted.")
    features: list[FeatureDrift] = Field(default_factory=list)

    @property
    def drifted_features(self) -> list[str]:
        """The features that drifted, in the order tested."""
        return [feature.feature for feature in self.features if feature.drifted]

    def verdict_fields(self) -> dict[str, Any]:
        """What `run.py --summary` writes of it."""
        return {
            "drift_detected": self.drift_detected,
            "verdict": self.verdict,
            "message": self.message,
            "drifted_features": self.drifted_features,
            "drifted_share": self.drifted_share,
            "records": self.records,
            "window": self.window.model_dump(mode="json"),
        }


@dataclass(frozen=True)
class DriftReportPage:
    """The monitor's report as one self-contained HTML page (Evidently's, when it ran).

    Attributes:
        html: The page.
    """

    html: str


def not_enough_page(summary: DriftSummary) -> DriftReportPage:
    """The page of a run without a verdict: how many records there were, and how many it needs."""
    message = html.escape(summary.message)
    return DriftReportPage(
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>Data drift</title></head>'
        f"<body><h2>Data drift: no verdict</h2><p>{message}.</p><p>Send more requests to the "
        "service, or widen the window (<code>monitor.last_records</code>, "
        "<code>monitor.since</code>).</p></body></html>"
    )


def not_enough(
    model_name: str,
    model_version: str,
    window: ServedWindow,
    min_records: int,
    reference_records: int,
    drift_share: float,
) -> DriftSummary:
    """The result of a window with fewer than `min_records` records: no verdict."""
    return DriftSummary(
        model_name=model_name,
        model_version=model_version,
        verdict="not enough served inputs",
        drift_detected=None,
        message=f"not enough served inputs ({window.records} < {min_records}) of "
        f"{model_name} version {model_version} in {window.path}: no verdict",
        records=window.records,
        min_records=min_records,
        reference_records=reference_records,
        window=window,
        drift_share=drift_share,
        drifted_share=None,
    )


def summarize(
    evidently_result: dict[str, Any],
    model_name: str,
    model_version: str,
    window: ServedWindow,
    min_records: int,
    reference_records: int,
) -> DriftSummary:
    """The summary of an Evidently `DataDriftPreset` report (its `as_dict()`).

    Raises:
        ValueError: The report holds no `DatasetDriftMetric` or `DataDriftTable` result.
    """
    results = {metric["metric"]: metric["result"] for metric in evidently_result["metrics"]}
    if not {"DatasetDriftMetric", "DataDriftTable"} <= set(results):
        raise ValueError(f"Not a data drift report: it holds {sorted(results)}.")
    dataset, table = results["DatasetDriftMetric"], results["DataDriftTable"]
    features = [
        FeatureDrift(
            feature=name,
            kind=column["column_type"],
            statistic=column["stattest_name"],
            score=float(column["drift_score"]),
            threshold=float(column["stattest_threshold"]),
            drifted=bool(column["drift_detected"]),
        )
        for name, column in table["drift_by_columns"].items()
    ]
    drifted = bool(dataset["dataset_drift"])
    share = float(dataset["share_of_drifted_columns"])
    names = [feature.feature for feature in features if feature.drifted]
    message = (
        f"{'drift' if drifted else 'no drift'}: {len(names)} of {len(features)} features "
        f"drifted ({share:.0%}; drift at {dataset['drift_share']:.0%})"
        + (f": {', '.join(names)}" if names else "")
    )
    return DriftSummary(
        model_name=model_name,
        model_version=model_version,
        verdict="drift" if drifted else "no drift",
        drift_detected=drifted,
        message=message,
        records=window.records,
        min_records=min_records,
        reference_records=reference_records,
        window=window,
        drift_share=float(dataset["drift_share"]),
        drifted_share=share,
        features=features,
    )
