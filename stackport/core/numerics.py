"""The little numerics predictions are made of: softmax, sigmoid, and a text's mean over rows."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, stable for large logits."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """The logistic function, in float64 (as thresholds are tuned)."""
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))


def mean_by_text(row_logits: np.ndarray, row_texts: Sequence[int], texts: int) -> np.ndarray:
    """The mean logits of each text's rows: row `i` belongs to text `row_texts[i]`."""
    sums = np.zeros((texts, *row_logits.shape[1:]), dtype=np.float64)
    np.add.at(sums, np.asarray(row_texts), row_logits)
    counts = np.bincount(np.asarray(row_texts), minlength=texts).reshape(-1, *[1] * (sums.ndim - 1))
    return (sums / counts).astype(row_logits.dtype)
