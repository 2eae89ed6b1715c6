"""Single-label classification: one label per text.

The functions `textmodels.task_registry` plugs in for the `classification` task; the text
encoding is shared with multi-label classification.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
from transformers import PreTrainedTokenizerBase

from textmodels.checks import (
    CLASS_LABELS,
    PlannedCheck,
    declared_labels_check,
    enough_classes_check,
    enough_examples_check,
    is_missing,
    label_text,
    not_null_check,
)
from textmodels.data_sources import LoadReport, read_bbc_news, read_source
from textmodels.evaluation import EvaluationReport, classification_report
from textmodels.inference import mean_by_text
from textmodels.settings import DataSettings
from textmodels.tasks import EXAMPLE_ID_COLUMN

if TYPE_CHECKING:
    from textmodels.validation import ValidationSettings


def read_labelled_texts(data: DataSettings) -> tuple[pd.DataFrame, LoadReport]:
    """The configured source's rows, or the bundled BBC News corpus when none is set."""
    return read_bbc_news() if data.source is None else read_source(data.source)


def label_checks(
    data: pd.DataFrame, label_column: str, settings: ValidationSettings, text_column: str | None
) -> list[PlannedCheck]:
    """Every row has a label; declared labels only; enough classes and examples per class."""
    label_lists = data[label_column].map(
        lambda value: [] if is_missing(value) else [label_text(value)]
    )
    planned = [not_null_check(label_column, "label_not_null", "label")]
    if settings.labels is not None:
        declared = [str(label) for label in settings.labels]
        planned.append(declared_labels_check(data, label_lists, declared, CLASS_LABELS))
    return [
        *planned,
        enough_classes_check(data, label_lists, settings.min_classes, CLASS_LABELS),
        enough_examples_check(data, label_lists, settings.min_examples_per_class, CLASS_LABELS),
    ]


def text_key(text: object) -> str:
    """Texts that differ only in surrounding white space are the same text."""
    return str(text).strip()


def label_names(labels: Sequence[pd.Series]) -> list[str]:
    """The distinct labels of all splits, sorted."""
    return sorted({str(label) for column in labels for label in column})


def encode_texts(
    texts: Sequence[str], tokenizer: PreTrainedTokenizerBase, max_length: int, max_windows: int = 1
) -> dict[str, list]:
    """Each text as up to `max_windows` consecutive windows of `max_length` tokens, one row each.

    `example_id` gives each row's text (its position in `texts`); with one window a text is
    truncated to `max_length`. `num_tokens` is a row's token count before truncation: the
    window's length, and for a text's last row all its tokens from there on, so a row longer
    than `max_length` marks a text that was cut. No padding is applied: batches are padded
    dynamically at training and inference time.
    """
    texts = list(texts)
    # Every window of every text: together they hold each text's tokens, so the untruncated
    # lengths need no second tokenization.
    windows = tokenizer(
        texts, truncation=True, max_length=max_length, return_overflowing_tokens=True
    )
    special_tokens = tokenizer.num_special_tokens_to_add(pair=False)
    text_rows: dict[int, list[int]] = defaultdict(list)
    for row, text in enumerate(windows["overflow_to_sample_mapping"]):
        text_rows[text].append(row)
    columns: dict[str, list] = {
        "input_ids": [],
        "attention_mask": [],
        "num_tokens": [],
        EXAMPLE_ID_COLUMN: [],
    }
    for text in range(len(texts)):
        rows = text_rows[text]
        kept = rows[:max_windows]
        for index, row in enumerate(kept):
            ids = windows["input_ids"][row]
            if index == len(kept) - 1:  # counts every token left from here on
                left = [len(windows["input_ids"][rest]) - special_tokens for rest in rows[index:]]
                columns["num_tokens"].append(sum(left) + special_tokens)
            else:
                columns["num_tokens"].append(len(ids))
            columns["input_ids"].append(ids)
            columns["attention_mask"].append(windows["attention_mask"][row])
            columns[EXAMPLE_ID_COLUMN].append(text)
    return columns


def encode(
    frame: pd.DataFrame,
    tokenizer: PreTrainedTokenizerBase,
    names: list[str],
    max_length: int,
    max_windows: int = 1,
) -> dict[str, list]:
    """The split's texts encoded (`encode_texts`), each row with the index of its text's label."""
    label_ids = {name: index for index, name in enumerate(names)}
    encoded = encode_texts(frame["text"], tokenizer, max_length, max_windows)
    labels = [label_ids[label] for label in frame["label"]]
    return {**encoded, "labels": [labels[text] for text in encoded[EXAMPLE_ID_COLUMN]]}


def text_logits(logits: np.ndarray, table: pa.Table) -> tuple[np.ndarray, list]:
    """Each text's logits (the mean of its windows' rows) and its labels, in text order."""
    texts = table.column(EXAMPLE_ID_COLUMN).to_numpy()
    first_rows = np.unique(texts, return_index=True)[1]
    labels = table.column("labels").to_pylist()
    return (
        mean_by_text(np.asarray(logits), texts, len(first_rows)),
        [labels[row] for row in first_rows],
    )


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
        model_name,
        split,
        names,
        true_ids=true_ids,
        predicted_ids=logits.argmax(axis=-1).tolist(),
    )
