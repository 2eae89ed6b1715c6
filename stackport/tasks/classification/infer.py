"""Single-label classification at inference: the most probable label of each text."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

from stackport.core.numerics import softmax
from stackport.core.plugins import EncodedBatch, Probability, TaskInference


class ClassPrediction(BaseModel):
    """Single-label classification: the most probable label of a text."""

    label: str = Field(description="The most probable label.")
    score: Probability = Field(description="Its softmax probability.")


def classify(
    logits: np.ndarray,
    batch: EncodedBatch,
    label_names: list[str],
    thresholds: list[float] | None,
) -> list[ClassPrediction]:
    """The most probable label of each text and its probability."""
    probabilities = softmax(logits)
    best = probabilities.argmax(axis=-1)
    return [
        ClassPrediction(label=label_names[index], score=float(probabilities[row, index]))
        for row, index in enumerate(best)
    ]


def outcomes(prediction: ClassPrediction) -> tuple[list[str], list[float]]:
    """The predicted label and its score."""
    return [prediction.label], [prediction.score]


INFERENCE = TaskInference(
    prediction=ClassPrediction,
    post_process=classify,
    export_task="text-classification",
    outcomes=outcomes,
)
