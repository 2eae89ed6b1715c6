"""Multi-label classification in training: any number of labels per text.

A text's labels
are read as a list; the model scores every label with a sigmoid (binary cross-entropy), and a
label is predicted when its probability reaches the label's own threshold, tuned on the
validation split for the best F1 and stored in the model's config as `label_thresholds`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import torch
from scipy.special import expit
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from transformers import (
    AutoModelForSequenceClassification,
    DataCollatorWithPadding,
    PreTrainedTokenizerBase,
)

from stackport.core.plugins import TaskTraining
from stackport.core.settings import DataSettings, ValidationSettings
from stackport.data.checks import (
    CLASS_LABELS,
    PlannedCheck,
    helper_column,
    is_missing,
    label_set_checks,
    label_text,
    rows_have,
    text_checks,
)
from stackport.data.sources import LoadReport, cell_list, read_source
from stackport.data.splitting import stripped_text
from stackport.data.tokenization import encode_labelled_texts, text_logits
from stackport.evaluation.report import EvaluationReport, per_class_metrics
from stackport.evaluation.tfidf import logistic_regression, tfidf_vectorizer
from stackport.tasks.multilabel.infer import DEFAULT_THRESHOLD, MultilabelPrediction

BASELINE_NAME = "tfidf-logreg-one-vs-rest"
# The thresholds tried per label: 0.05, 0.10, ..., 0.95.
THRESHOLD_GRID = np.round(np.arange(0.05, 1.0, 0.05), 2)


def parse_label_set(value: Any, delimiter: str) -> list[str]:
    """The distinct labels of one cell, in order.

    A list (JSONL, Parquet) gives its items; a string (a CSV cell) is split at `delimiter`,
    ignoring white space around labels and empty parts; a missing cell is an empty set; any
    other value is one label.
    """
    items = cell_list(value)
    if items is None:
        if is_missing(value):
            items = []
        elif isinstance(value, str):
            items = value.split(delimiter)
        else:
            items = [value]
    labels = (label_text(item) for item in items)
    return list(dict.fromkeys(label.strip() for label in labels if label and label.strip()))


def read_label_sets(source: str, data: DataSettings) -> tuple[pd.DataFrame, LoadReport]:
    """The rows of a file or folder, the label column parsed into label lists."""
    frame, report = read_source(source)
    if data.label_column in frame.columns:
        frame[data.label_column] = frame[data.label_column].map(
            lambda value: parse_label_set(value, data.label_delimiter)
        )
    return frame, report


def label_list(value: Any) -> list[str]:
    """A parsed label cell (a list, or an array after a Parquet round trip) as a list."""
    return [str(label) for label in cell_list(value) or []]


def label_checks(
    data: pd.DataFrame, label_column: str, settings: ValidationSettings, text_column: str | None
) -> list[PlannedCheck]:
    """No empty label sets (unless allowed); declared labels, all seen; enough of each."""
    label_sets = data[label_column].map(label_list)
    planned = [] if settings.allow_empty_label_sets else [_label_set_not_empty(data, label_sets)]
    return [*planned, *label_set_checks(data, label_sets, settings, CLASS_LABELS)]


def _label_set_not_empty(data: pd.DataFrame, label_sets: pd.Series) -> PlannedCheck:
    """Every text has at least one label."""
    import great_expectations.expectations as gxe

    column = helper_column(data, "label_count")
    data[column] = label_sets.map(len)
    return PlannedCheck(
        "label_set_not_empty",
        "every text has at least one label",
        gxe.ExpectColumnValuesToBeBetween(column=column, min_value=1),
        lambda result: rows_have(result["unexpected_index_list"], "an empty label set"),
    )


def rarest_label(label_sets: pd.Series) -> pd.Series:
    """Each text's rarest label, to stratify a split by (`""` for a text without labels).

    Strata too small to be split (one text) join the most common stratum.
    """
    counts = Counter(label for labels in label_sets for label in labels)
    strata = label_sets.map(
        lambda labels: min(labels, key=lambda label: (counts[label], label), default="")
    )
    sizes = strata.value_counts()
    if sizes.empty:
        return strata
    return strata.where(strata.map(sizes) > 1, sizes.index[0])


def label_names(labels: Sequence[pd.Series]) -> list[str]:
    """The distinct labels of all splits, sorted."""
    return sorted({label for column in labels for value in column for label in label_list(value)})


def encode(
    frame: pd.DataFrame,
    tokenizer: PreTrainedTokenizerBase,
    names: list[str],
    max_length: int,
    max_windows: int = 1,
) -> dict[str, list]:
    """The split's texts in windows, each row with its text's sorted label ids."""
    label_ids = {name: index for index, name in enumerate(names)}
    labels = [sorted(label_ids[label] for label in label_list(value)) for value in frame["label"]]
    return encode_labelled_texts(frame["text"], labels, tokenizer, max_length, max_windows)


class MultiLabelCollator:
    """Pads a batch and turns each row's label indices into a multi-hot float vector (for BCE)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, num_labels: int):
        self.pad = DataCollatorWithPadding(tokenizer)
        self.num_labels = num_labels

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """The padded batch with `labels` of shape (rows, labels)."""
        batch = self.pad(
            [{key: value for key, value in row.items() if key != "labels"} for row in rows]
        )
        batch["labels"] = torch.from_numpy(
            multi_hot([row["labels"] for row in rows], self.num_labels)
        )
        return batch


def make_collator(tokenizer: PreTrainedTokenizerBase, names: list[str]) -> MultiLabelCollator:
    """The collator of a model scoring `names`."""
    return MultiLabelCollator(tokenizer, len(names))


def multi_hot(label_ids: Sequence[Sequence[int]], num_labels: int) -> np.ndarray:
    """Rows of label indices as a (rows, labels) float32 matrix of 0 and 1."""
    matrix = np.zeros((len(label_ids), num_labels), dtype=np.float32)
    for row, ids in enumerate(label_ids):
        matrix[row, list(ids)] = 1.0
    return matrix


def tune_thresholds(logits: np.ndarray, table: pa.Table) -> list[float]:
    """Per label, the threshold of `THRESHOLD_GRID` with the best F1 on these texts.

    A text's logits are the mean of its rows' (`text_logits`). Ties, such as a label without
    positive texts, go to the threshold closest to 0.5.
    """
    logits, label_ids = text_logits(logits, table)
    probabilities = expit(np.asarray(logits, dtype=np.float64))
    truth = multi_hot(label_ids, probabilities.shape[1]).astype(bool)
    predicted = probabilities[None, :, :] >= THRESHOLD_GRID[:, None, None]
    true_positives = (predicted & truth).sum(axis=1)
    errors = (predicted & ~truth).sum(axis=1) + (~predicted & truth).sum(axis=1)
    denominator = 2 * true_positives + errors
    f1 = np.divide(
        2 * true_positives, denominator, out=np.zeros(denominator.shape), where=denominator > 0
    )
    is_best = f1 >= f1.max(axis=0) - 1e-12
    distance = np.where(is_best, np.abs(THRESHOLD_GRID - DEFAULT_THRESHOLD)[:, None], np.inf)
    return [float(threshold) for threshold in THRESHOLD_GRID[distance.argmin(axis=0)]]


def report(
    model_name: str,
    split: str,
    names: list[str],
    logits: np.ndarray,
    table: pa.Table,
    thresholds: Sequence[float] | None = None,
) -> EvaluationReport:
    """The report of each text's labels whose probability reaches their threshold (default 0.5).

    A text's logits are the mean of its rows' (`text_logits`).
    """
    limits = np.asarray(thresholds if thresholds is not None else [DEFAULT_THRESHOLD] * len(names))
    logits, label_ids = text_logits(logits, table)
    predicted = (expit(np.asarray(logits, dtype=np.float64)) >= limits).astype(np.float32)
    truth = multi_hot(label_ids, len(names))
    return multilabel_report(model_name, split, names, truth, predicted)


def report_predictions(
    model_name: str,
    split: str,
    frame: pd.DataFrame,
    names: list[str],
    predictions: Sequence[MultilabelPrediction],
) -> EvaluationReport:
    """The report of `MultilabelPrediction`s against the label list of each row."""
    label_ids = {name: index for index, name in enumerate(names)}

    def multi_hot_of(label_sets: Sequence[Sequence[str]]) -> np.ndarray:
        return multi_hot(
            [[label_ids[label] for label in labels] for labels in label_sets], len(names)
        )

    truth = multi_hot_of([label_list(value) for value in frame["label"]])
    predicted = multi_hot_of([prediction.labels for prediction in predictions])
    return multilabel_report(model_name, split, names, truth, predicted)


def multilabel_report(
    model_name: str, split: str, names: list[str], truth: np.ndarray, predicted: np.ndarray
) -> EvaluationReport:
    """Subset accuracy, macro- and micro-F1 and per-label P/R/F1 of multi-hot predictions."""
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, zero_division=0
    )
    return EvaluationReport(
        model_name=model_name,
        split=split,
        label_names=names,
        metrics={
            "accuracy": float(accuracy_score(truth, predicted)),
            "macro_f1": float(np.mean(f1)),
            "micro_f1": float(f1_score(truth, predicted, average="micro", zero_division=0)),
        },
        per_class=per_class_metrics(names, precision, recall, f1, support),
    )


def evaluate_baseline(
    train: pd.DataFrame, test: pd.DataFrame, names: list[str], seed: int = 42
) -> EvaluationReport:
    """TF-IDF + one logistic regression per label, fit on `train`, each predicting at 0.5."""
    label_ids = {name: index for index, name in enumerate(names)}

    def truth(frame: pd.DataFrame) -> np.ndarray:
        ids = [[label_ids[label] for label in label_list(value)] for value in frame["label"]]
        return multi_hot(ids, len(names))

    classifier = make_pipeline(tfidf_vectorizer(), OneVsRestClassifier(logistic_regression(seed)))
    classifier.fit(train["text"], truth(train))
    predicted = classifier.predict(test["text"])
    return multilabel_report(BASELINE_NAME, "test", names, truth(test), predicted)


TRAINING = TaskTraining(
    selection_metric="macro_f1",
    model_class=AutoModelForSequenceClassification,
    problem_type="multi_label_classification",
    read=read_label_sets,
    text_checks=text_checks,
    label_checks=label_checks,
    text_key=stripped_text,
    as_text=str,
    as_label=label_list,
    strata=rarest_label,
    label_names=label_names,
    encode=encode,
    labels_type=pa.list_(pa.int64()),
    make_collator=make_collator,
    report=report,
    baseline=evaluate_baseline,
    report_predictions=report_predictions,
    train_one_window=True,
    tune_thresholds=tune_thresholds,
)
