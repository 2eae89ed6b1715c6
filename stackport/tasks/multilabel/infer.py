"""Multi-label classification at inference: every label whose probability reaches its threshold."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

from stackport.core.numerics import sigmoid
from stackport.core.plugins import EncodedBatch, Probability, TaskInference

DEFAULT_THRESHOLD = 0.5


class MultilabelPrediction(BaseModel):
    """Multi-label classification: the labels whose probability reaches their threshold."""

    labels: list[str] = Field(
        description="The predicted labels, in the model's label order; possibly none."
    )
    scores: list[Probability] = Field(
        description="The sigmoid probability of each predicted label, in the order of `labels`."
    )


def classify_multilabel(
    logits: np.ndarray,
    batch: EncodedBatch,
    label_names: list[str],
    thresholds: list[float] | None,
) -> list[MultilabelPrediction]:
    """Every label whose probability reaches its threshold (tuned on validation; else 0.5)."""
    probabilities = sigmoid(logits)
    limits = np.asarray(thresholds or [DEFAULT_THRESHOLD] * len(label_names))
    chosen = probabilities >= limits
    return [
        MultilabelPrediction(
            labels=[label_names[index] for index in np.flatnonzero(row_chosen)],
            scores=[float(probabilities[row, index]) for index in np.flatnonzero(row_chosen)],
        )
        for row, row_chosen in enumerate(chosen)
    ]


def outcomes(prediction: MultilabelPrediction) -> tuple[list[str], list[float]]:
    """The predicted labels and their scores."""
    return list(prediction.labels), list(prediction.scores)


INFERENCE = TaskInference(
    prediction=MultilabelPrediction,
    post_process=classify_multilabel,
    export_task="text-classification",
    outcomes=outcomes,
)
