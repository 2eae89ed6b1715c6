"""Tokenizing labelled text into Arrow tables, with the label layout of the task."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
from transformers import PreTrainedTokenizerBase

from textmodels.task_registry import task_spec
from textmodels.tasks import EXAMPLE_ID_COLUMN, Task

SPLITS = ("train", "validation", "test")


def tokenized_schema(task: Task) -> pa.Schema:
    """The columns of a task's tokenized tables.

    A row is one window of an example (a text or sentence): `example_id` gives the example,
    `num_tokens` the row's token count before truncation (more than `max_length` where the
    example was cut). `labels` holds label ids: one per text (classification), the ids of a
    text's labels (multilabel), or one per token, -100 where the loss ignores the token (ner).
    """
    spec = task_spec(task)
    return pa.schema(
        [
            ("input_ids", pa.list_(pa.int32())),
            ("attention_mask", pa.list_(pa.int8())),
            ("labels", spec.labels_type),
            ("num_tokens", pa.int32()),
            (EXAMPLE_ID_COLUMN, pa.int32()),
        ]
    )


# The schema of classification tables, for callers written before the other tasks.
TOKENIZED_SCHEMA = tokenized_schema(Task.CLASSIFICATION)


@dataclass
class TokenizedDataset:
    """Token ids, attention masks and label ids of every split, plus what produced them.

    Attributes:
        splits: One Arrow table per split name, with the columns of `tokenized_schema(task)`.
        label_names: Label names; the ids in a row's `labels` index this list.
        tokenizer_fingerprint: sha256 of the tokenizer's files, to detect a mismatched model.
        max_length: Rows (windows) hold at most this many tokens.
        task: The task the labels are for.
        max_windows: classification and multilabel: a text is split into at most this many
            windows (rows); the rest is cut. ner keeps every window of a sentence.
    """

    splits: dict[str, pa.Table]
    label_names: list[str]
    tokenizer_fingerprint: str
    max_length: int
    task: Task
    max_windows: int = 1

    def row_label_names(self, labels: Any) -> list[str]:
        """The names of the label ids of one row's `labels` (ids of -100 are left out)."""
        ids = labels if isinstance(labels, list) else [labels]
        return [self.label_names[index] for index in ids if index >= 0]

    def label_counts(self, split: str) -> dict[str, int]:
        """How often each label occurs in one split's rows (each window of a text; ner: words)."""
        counts = Counter(
            name
            for labels in self.splits[split].column("labels").to_pylist()
            for name in self.row_label_names(labels)
        )
        return {name: counts.get(name, 0) for name in self.label_names}

    def example_count(self, split: str) -> int:
        """Examples in one split; the rows (windows) of one example share an `example_id`."""
        return len(self.splits[split].column(EXAMPLE_ID_COLUMN).unique())

    def truncation_rate(self, split: str) -> float:
        """Share of the split's examples that were cut: a row longer than `max_length` tokens."""
        table = self.splits[split]
        if table.num_rows == 0:
            return 0.0
        cut = pd.DataFrame(
            {
                "example": table.column(EXAMPLE_ID_COLUMN).to_numpy(),
                "cut": table.column("num_tokens").to_numpy() > self.max_length,
            }
        )
        return float(cut.groupby("example")["cut"].any().mean())


def tokenizer_fingerprint(tokenizer: PreTrainedTokenizerBase) -> str:
    """A sha256 over the tokenizer's vocabulary and settings."""
    state = {
        "class": type(tokenizer).__name__,
        "vocab": sorted(tokenizer.get_vocab().items()),
        "do_lower_case": getattr(tokenizer, "do_lower_case", None),
        "special_tokens": tokenizer.special_tokens_map,
    }
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()


def tokenize_split(
    frame: pd.DataFrame,
    tokenizer: PreTrainedTokenizerBase,
    label_names: list[str],
    max_length: int,
    task: Task,
    max_windows: int = 1,
) -> pa.Table:
    """Tokenize one `text`/`label` frame as the task encodes it, against given label names."""
    encoded = task_spec(task).encode(frame, tokenizer, label_names, max_length, max_windows)
    return pa.table(encoded, schema=tokenized_schema(task))


def tokenize_dataset(
    splits: dict[str, pd.DataFrame],
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    task: Task = Task.CLASSIFICATION,
    max_windows: int = 1,
) -> TokenizedDataset:
    """Tokenize `text`/`label` split frames as the task encodes them, without padding.

    Label names come from the labels of all splits (see the task's `label_names`). Batches are
    padded dynamically at training and inference time. A text longer than `max_length` tokens
    becomes up to `max_windows` rows (classification, multilabel; ner keeps every window).
    """
    label_names = task_spec(task).label_names([frame["label"] for frame in splits.values()])
    return TokenizedDataset(
        splits={
            name: tokenize_split(frame, tokenizer, label_names, max_length, task, max_windows)
            for name, frame in splits.items()
        },
        label_names=label_names,
        tokenizer_fingerprint=tokenizer_fingerprint(tokenizer),
        max_length=max_length,
        task=task,
        max_windows=max_windows,
    )
