"""Single-label classification: one label per text.

The functions `textmodels.task_registry` plugs in for the `classification` task; the text
encoding is shared with multi-label classification.
"""

from __future__ import annotations

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
from textmodels.settings import DataSettings

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
    texts: Sequence[str], tokenizer: PreTrainedTokenizerBase, max_length: int
) -> dict[str, list]:
    """Token ids and attention masks truncated to `max_length`, and token counts before it.

    No padding is applied: batches are padded dynamically at training and inference time.
    """
    texts = list(texts)
    full = tokenizer(texts, truncation=False, verbose=False)["input_ids"]
    truncated = tokenizer(texts, truncation=True, max_length=max_length)
    return {
        "input_ids": truncated["input_ids"],
        "attention_mask": truncated["attention_mask"],
        "num_tokens": [len(ids) for ids in full],
    }


def encode(
    frame: pd.DataFrame,
    tokenizer: PreTrainedTokenizerBase,
    names: list[str],
    max_length: int,
) -> dict[str, list]:
    """The split's texts encoded, each with the index of its label in `names`."""
    label_ids = {name: index for index, name in enumerate(names)}
    return {
        **encode_texts(frame["text"], tokenizer, max_length),
        "labels": [label_ids[label] for label in frame["label"]],
    }


def report(
    model_name: str,
    split: str,
    names: list[str],
    logits: np.ndarray,
    table: pa.Table,
    thresholds: Sequence[float] | None = None,
) -> EvaluationReport:
    """The report of the highest-scoring label of every row against its true label."""
    return classification_report(
        model_name,
        split,
        names,
        true_ids=table.column("labels").to_pylist(),
        predicted_ids=np.asarray(logits).argmax(axis=-1).tolist(),
    )
