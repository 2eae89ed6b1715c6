"""Single-label classification in training: reading, checks, encoding, scoring and the baseline.

A text is read as up to `model.max_windows` windows of `model.max_length` tokens; training
draws one window per text per epoch, and a text's logits are the mean of its windows'.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
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
    is_missing,
    label_set_checks,
    label_text,
    not_null_check,
    text_checks,
)
from stackport.data.sources import LoadReport, read_source
from stackport.data.splitting import stripped_text
from stackport.data.tokenization import encode_labelled_texts, text_logits
from stackport.evaluation.report import EvaluationReport, classification_report
from stackport.evaluation.tfidf import logistic_regression, tfidf_vectorizer
from stackport.tasks.classification.infer import ClassPrediction

BASELINE_NAME = "tfidf-logreg"


def read_labelled_texts(source: str, data: DataSettings) -> tuple[pd.DataFrame, LoadReport]:
    """The rows of a file or folder, with their original columns."""
    return read_source(source)


def label_checks(
    data: pd.DataFrame, label_column: str, settings: ValidationSettings, text_column: str | None
) -> list[PlannedCheck]:
    """Every row has a label; declared labels only, each seen; enough classes and examples."""
    labels = data[label_column].map(lambda value: [] if is_missing(value) else [label_text(value)])
    return [
        not_null_check(label_column, "label_not_null", "label"),
        *label_set_checks(data, labels, settings, CLASS_LABELS),
    ]


def label_names(labels: Sequence[pd.Series]) -> list[str]:
    """The distinct labels of all splits, sorted."""
    return sorted({str(label) for column in labels for label in column})


def encode(
    frame: pd.DataFrame,
    tokenizer: PreTrainedTokenizerBase,
    names: list[str],
    max_length: int,
    max_windows: int = 1,
) -> dict[str, list]:
    """The split's texts in windows, each row with its text's label id."""
    label_ids = {name: index for index, name in enumerate(names)}
    labels = [label_ids[label] for label in frame["label"]]
    return encode_labelled_texts(frame["text"], labels, tokenizer, max_length, max_windows)


def report(
    model_name: str,
    split: str,
    names: list[str],
    logits: np.ndarray,
    table: pa.Table,
    thresholds: Sequence[float] | None = None,
) -> EvaluationReport:
    """The report of every text's highest-scoring label (`text_logits`) against its label."""
    logits, true_ids = text_logits(logits, table)
    return classification_report(
        model_name, split, names, true_ids=true_ids, predicted_ids=logits.argmax(axis=-1).tolist()
    )


def report_predictions(
    model_name: str,
    split: str,
    frame: pd.DataFrame,
    names: list[str],
    predictions: Sequence[ClassPrediction],
) -> EvaluationReport:
    """The report of predictions against the `label` of each row."""
    label_ids = {name: index for index, name in enumerate(names)}
    return classification_report(
        model_name,
        split,
        names,
        true_ids=[label_ids[label] for label in frame["label"]],
        predicted_ids=[label_ids[prediction.label] for prediction in predictions],
    )


def evaluate_baseline(
    train: pd.DataFrame, test: pd.DataFrame, names: list[str], seed: int = 42
) -> EvaluationReport:
    """Fit TF-IDF (word 1-2 grams) + logistic regression on `train`, evaluate on `test`."""
    classifier = make_pipeline(tfidf_vectorizer(), logistic_regression(seed))
    label_ids = {name: index for index, name in enumerate(names)}
    classifier.fit(train["text"], train["label"].map(label_ids))
    return classification_report(
        BASELINE_NAME,
        "test",
        names,
        true_ids=test["label"].map(label_ids).tolist(),
        predicted_ids=classifier.predict(test["text"]).tolist(),
    )


TRAINING = TaskTraining(
    selection_metric="macro_f1",
    model_class=AutoModelForSequenceClassification,
    problem_type="single_label_classification",
    read=read_labelled_texts,
    text_checks=text_checks,
    label_checks=label_checks,
    text_key=stripped_text,
    as_text=str,
    as_label=str,
    strata=lambda labels: labels,
    label_names=label_names,
    encode=encode,
    labels_type=pa.int64(),
    make_collator=lambda tokenizer, names: DataCollatorWithPadding(tokenizer),
    report=report,
    baseline=evaluate_baseline,
    report_predictions=report_predictions,
    train_one_window=True,
)
