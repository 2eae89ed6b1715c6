"""The task registry: everything that differs between tasks, in one `TaskSpec` per task.

The pipeline's steps and the library's generic functions (reading, validation, splitting,
tokenization, training, evaluation, baseline) look the task up here and call what its spec
names; none of them branches on the task. A new task is one module and one entry in `TASKS`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from transformers import (
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    DataCollatorWithPadding,
    PreTrainedTokenizerBase,
)

from textmodels import classification, multilabel, ner
from textmodels.baseline import evaluate_tfidf_baseline
from textmodels.checks import PlannedCheck, text_checks
from textmodels.data_sources import LoadReport
from textmodels.evaluation import EvaluationReport, classification_report
from textmodels.settings import DataSettings
from textmodels.tasks import Task

Reader = Callable[[DataSettings], tuple[pd.DataFrame, LoadReport]]
CheckPlanner = Callable[..., list[PlannedCheck]]
Encoder = Callable[[pd.DataFrame, PreTrainedTokenizerBase, list[str], int, int], dict[str, list]]
Reporter = Callable[
    [str, str, list[str], np.ndarray, pa.Table, Sequence[float] | None], EvaluationReport
]
Baseline = Callable[[pd.DataFrame, pd.DataFrame, list[str]], EvaluationReport]
PredictionReporter = Callable[[str, pd.DataFrame, list[str], Sequence[Any]], EvaluationReport]


@dataclass(frozen=True)
class TaskSpec:
    """How one task reads, checks, splits, encodes, trains, scores and is baselined.

    Attributes:
        task: The task.
        selection_metric: The validation metric that early stopping keeps the best epoch by,
            and the test metric that promotes a model.
        model_class: The Hugging Face auto class of the model.
        problem_type: The model config's `problem_type` (which loss the model uses).
        read: Reads the configured source into a frame with the configured columns.
        text_checks: Plans the checks of the text column: `(data, text_column, settings)`.
        label_checks: Plans the checks of the label column:
            `(data, label_column, settings, text_column or None when it is missing)`.
        text_key: Texts with the same key are the same text (no text in two splits).
        as_text: One cell of the text column as the splits hold it.
        as_label: One cell of the label column as the splits hold it.
        strata: The stratum of each split row, from the label column; None: no strata.
        label_names: The label names of a model, from the label columns of all splits.
        encode: Tokenizes a split frame (`text`, `label`) into the columns of its table, one
            row per window of an example: `(frame, tokenizer, label_names, max_length,
            max_windows)`.
        labels_type: The Arrow type of the `labels` column.
        make_collator: The data collator of a tokenizer and label names.
        train_one_window: Training draws one random row (window) of each example per epoch
            (a long text's windows share its label); False: training takes every row.
        report: The evaluation report of model logits for a table's rows, per example:
            `(model_name, split, label_names, logits, table, label_thresholds)`.
        baseline: Fits the simple baseline on a train frame and reports on a test frame:
            `(train, test, label_names)`.
        report_predictions: The test report of `textmodels.inference` predictions for the
            rows of a split frame: `(model_name, frame, label_names, predictions)`.
        tune_thresholds: For a task deciding by per-label thresholds: the thresholds that fit
            the logits of a table best (kept in the model config as `label_thresholds`).
    """

    task: Task
    selection_metric: str
    model_class: type
    problem_type: str | None
    read: Reader
    text_checks: CheckPlanner
    label_checks: CheckPlanner
    text_key: Callable[[Any], str]
    as_text: Callable[[Any], Any]
    as_label: Callable[[Any], Any]
    strata: Callable[[pd.Series], pd.Series | None]
    label_names: Callable[[Sequence[pd.Series]], list[str]]
    encode: Encoder
    labels_type: pa.DataType
    make_collator: Callable[[PreTrainedTokenizerBase, list[str]], Any]
    report: Reporter
    baseline: Baseline
    report_predictions: PredictionReporter
    train_one_window: bool = False
    tune_thresholds: Callable[[np.ndarray, pa.Table], list[float]] | None = None


def _classification_predictions_report(
    model_name: str, frame: pd.DataFrame, names: list[str], predictions: Sequence[Any]
) -> EvaluationReport:
    """The report of `ClassPrediction`s against the `label` of each row."""
    label_ids = {name: index for index, name in enumerate(names)}
    return classification_report(
        model_name,
        "test",
        names,
        true_ids=[label_ids[label] for label in frame["label"]],
        predicted_ids=[label_ids[prediction.label] for prediction in predictions],
    )


TASKS: dict[Task, TaskSpec] = {
    spec.task: spec
    for spec in (
        TaskSpec(
            task=Task.CLASSIFICATION,
            selection_metric="macro_f1",
            model_class=AutoModelForSequenceClassification,
            problem_type="single_label_classification",
            read=classification.read_labelled_texts,
            text_checks=text_checks,
            label_checks=classification.label_checks,
            text_key=classification.text_key,
            as_text=str,
            as_label=str,
            strata=lambda labels: labels,
            label_names=classification.label_names,
            encode=classification.encode,
            labels_type=pa.int64(),
            train_one_window=True,
            make_collator=lambda tokenizer, names: DataCollatorWithPadding(tokenizer),
            report=classification.report,
            baseline=evaluate_tfidf_baseline,
            report_predictions=_classification_predictions_report,
        ),
        TaskSpec(
            task=Task.MULTILABEL,
            selection_metric="macro_f1",
            model_class=AutoModelForSequenceClassification,
            problem_type="multi_label_classification",
            read=multilabel.read_label_sets,
            text_checks=text_checks,
            label_checks=multilabel.label_checks,
            text_key=classification.text_key,
            as_text=str,
            as_label=multilabel.label_list,
            strata=multilabel.rarest_label,
            label_names=multilabel.label_names,
            encode=multilabel.encode,
            labels_type=pa.list_(pa.int64()),
            train_one_window=True,
            make_collator=multilabel.make_collator,
            report=multilabel.report,
            baseline=multilabel.evaluate_baseline,
            report_predictions=multilabel.report_predictions,
            tune_thresholds=multilabel.tune_thresholds,
        ),
        TaskSpec(
            task=Task.NER,
            selection_metric="entity_f1",
            model_class=AutoModelForTokenClassification,
            problem_type=None,
            read=ner.read_sentences,
            text_checks=ner.text_checks,
            label_checks=ner.label_checks,
            text_key=ner.text_key,
            as_text=ner.token_list,
            as_label=ner.token_list,
            strata=ner.no_strata,
            label_names=ner.label_names,
            encode=ner.encode,
            labels_type=pa.list_(pa.int64()),
            make_collator=ner.make_collator,
            report=ner.report,
            baseline=ner.evaluate_baseline,
            report_predictions=ner.report_predictions,
        ),
    )
}


def task_spec(task: Task | str) -> TaskSpec:
    """The spec of a task."""
    return TASKS[Task(task)]
