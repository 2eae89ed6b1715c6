"""What a task folder provides: its inference plug-in and its training plug-in.

`stackport/tasks/<task>/infer.py` defines `INFERENCE`, a `TaskInference`: the torch-free half
(how a model's outputs become predictions, what one prediction looks like, how the model is
exported). `stackport/tasks/<task>/train.py` defines `TRAINING`, a `TaskTraining`: how data of
the task is read, checked, split, encoded, trained on, scored and baselined. `stackport.tasks`
finds them by the folder's name; nothing else in the library branches on a task.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from pydantic import BaseModel, Field

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from transformers import PreTrainedTokenizerBase

    from stackport.core.settings import DataSettings, ValidationSettings
    from stackport.data.checks import PlannedCheck
    from stackport.data.sources import LoadReport
    from stackport.evaluation.report import EvaluationReport

# Where each word of a text is: (start, end) character offsets.
WordSpans = list[tuple[int, int]]
# A score of a prediction.
Probability = Annotated[float, Field(ge=0, le=1)]


@dataclass(frozen=True)
class EncodedBatch:
    """A batch of texts as a model's graph takes it, with what post-processing needs.

    A text gives one row, or several: the windows of a long text (of tokens; of whole words
    for a word-level model).

    Attributes:
        texts: The texts (pre-split words joined by single spaces).
        inputs: The graph's int64 inputs by name, padded to the longest row.
        row_texts: The text (its index in `texts`) of each row, in order.
        words: Word-level models: the character spans of each text's words; else None.
        row_words: Word-level models: the (first, last + 1) words of its text each row holds.
        row_word_ids: Word-level models: per row, the word (counted from the row's first word)
            of each token, None for special and padding tokens.
    """

    texts: list[str]
    inputs: dict[str, np.ndarray]
    row_texts: list[int]
    words: list[WordSpans] | None = None
    row_words: list[tuple[int, int]] | None = None
    row_word_ids: list[list[int | None]] | None = None


# Turns the logits of a batch's rows into one prediction per text:
# `(logits, batch, label_names, thresholds)`. A text-level task gets one row of logits per
# text (the mean of its windows'); a word-level task gets every row's token logits.
PostProcessor = Callable[[np.ndarray, EncodedBatch, list[str], list[float] | None], list[Any]]
# What a prediction decided, as the request log records it: its labels (or entity types),
# each with its score.
Outcomes = Callable[[Any], tuple[list[str], list[float]]]


@dataclass(frozen=True)
class TaskInference:
    """The torch-free half of a task: what its model's outputs mean.

    Attributes:
        prediction: The pydantic model of one text's prediction (also the service's response
            schema for one text).
        post_process: Logits to predictions (`PostProcessor`).
        export_task: The Optimum task the model is exported to ONNX as.
        outcomes: A prediction's labels (entity types) and their scores (`Outcomes`).
        word_level: Texts are split into words, each word tokenized on its own and predicted
            by its first sub-word (as the training data's words were); else a text is read as
            token windows whose logits are averaged.
    """

    prediction: type[BaseModel]
    post_process: PostProcessor
    export_task: str
    outcomes: Outcomes
    word_level: bool = False


@dataclass(frozen=True)
class TaskTraining:
    """How one task reads, checks, splits, encodes, trains, scores and is baselined.

    Attributes:
        selection_metric: The validation metric that early stopping keeps the best epoch by,
            and the test metric that promotes a model.
        model_class: The Hugging Face auto class of the model.
        problem_type: The model config's `problem_type` (which loss the model uses).
        read: Reads a source (a path or URI; a bundled data set is read by `stackport.data`)
            into a frame with the configured columns: `(source, data settings)`.
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
        report: The evaluation report of model logits for a table's rows, per example:
            `(model_name, split, label_names, logits, table, label_thresholds)`.
        baseline: Fits the simple baseline on a train frame and reports on a test frame:
            `(train, test, label_names)`.
        report_predictions: The report of the inference plug-in's predictions for the rows of
            a split frame: `(model_name, split, frame, label_names, predictions)`.
        train_one_window: Training draws one random row (window) of each example per epoch
            (a long text's windows share its label); False: training takes every row.
        tune_thresholds: For a task deciding by per-label thresholds: the thresholds that fit
            the logits of a table best (kept in the model config as `label_thresholds`).
    """

    selection_metric: str
    model_class: type
    problem_type: str | None
    read: Callable[[str, DataSettings], tuple[pd.DataFrame, LoadReport]]
    text_checks: Callable[[pd.DataFrame, str, ValidationSettings], list[PlannedCheck]]
    label_checks: Callable[..., list[PlannedCheck]]
    text_key: Callable[[Any], str]
    as_text: Callable[[Any], Any]
    as_label: Callable[[Any], Any]
    strata: Callable[[pd.Series], pd.Series | None]
    label_names: Callable[[Sequence[pd.Series]], list[str]]
    encode: Callable[[pd.DataFrame, PreTrainedTokenizerBase, list[str], int, int], dict]
    labels_type: pa.DataType
    make_collator: Callable[[PreTrainedTokenizerBase, list[str]], Any]
    report: Callable[..., EvaluationReport]
    baseline: Callable[[pd.DataFrame, pd.DataFrame, list[str]], EvaluationReport]
    report_predictions: Callable[..., EvaluationReport]
    train_one_window: bool = False
    tune_thresholds: Callable[[np.ndarray, pa.Table], list[float]] | None = None
