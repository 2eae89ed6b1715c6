"""How a model did on a labelled split: the report every task's evaluation produces."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support


class ClassMetrics(BaseModel):
    """Precision, recall and F1 of one class."""

    precision: float
    recall: float
    f1: float
    support: int


class EvaluationReport(BaseModel):
    """How a model did on a labelled split.

    Attributes:
        model_name: What was evaluated, e.g. `fine-tuned` or `tfidf-logreg`.
        split: The split evaluated on.
        label_names: Label names (for `ner`, the tags), the row/column order of
            `confusion_matrix`.
        metrics: Headline metrics; every task reports `accuracy` and `macro_f1`, see each task's
            `train.py` for the others.
        per_class: Precision/recall/F1/support per label name (for `ner`, per entity type).
        confusion_matrix: Rows are true labels, columns predicted labels (for `ner`, tags of
            words); empty for `multilabel`, whose labels are not exclusive.
    """

    model_name: str
    split: str
    label_names: list[str]
    metrics: dict[str, float]
    per_class: dict[str, ClassMetrics]
    confusion_matrix: list[list[int]] = Field(default_factory=list)


def classification_report(
    model_name: str,
    split: str,
    label_names: Sequence[str],
    true_ids: Sequence[int],
    predicted_ids: Sequence[int],
) -> EvaluationReport:
    """Accuracy, macro-F1, per-class P/R/F1 and the confusion matrix of label-id predictions."""
    ids = list(range(len(label_names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        true_ids, predicted_ids, labels=ids, zero_division=0
    )
    return EvaluationReport(
        model_name=model_name,
        split=split,
        label_names=list(label_names),
        metrics={
            "accuracy": float(accuracy_score(true_ids, predicted_ids)),
            "macro_f1": float(np.mean(f1)),
        },
        per_class=per_class_metrics(label_names, precision, recall, f1, support),
        confusion_matrix=confusion_matrix(true_ids, predicted_ids, labels=ids).tolist(),
    )


def per_class_metrics(
    names: Sequence[str],
    precision: Sequence[float],
    recall: Sequence[float],
    f1: Sequence[float],
    support: Sequence[int],
) -> dict[str, ClassMetrics]:
    """`ClassMetrics` by name from parallel sequences of figures."""
    return {
        name: ClassMetrics(
            precision=float(precision[i]),
            recall=float(recall[i]),
            f1=float(f1[i]),
            support=int(support[i]),
        )
        for i, name in enumerate(names)
    }
