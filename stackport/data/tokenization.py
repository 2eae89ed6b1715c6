"""Tokenizing labelled text into Arrow tables, with the label layout of the task.

A row of a tokenized table is one window of an example: a text longer than `max_length`
tokens is read as consecutive windows (`encode_texts`; a task reading words splits sentences
into windows of whole words instead), and a model's logits for an example are the mean of its
rows' (`text_logits`).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from transformers import PreTrainedTokenizerBase

from stackport.core.names import EXAMPLE_ID_COLUMN
from stackport.core.numerics import mean_by_text
from stackport.core.plugins import TaskTraining


def tokenized_schema(labels_type: pa.DataType) -> pa.Schema:
    """The columns of a task's tokenized tables.

    A row is one window of an example (a text or sentence): `example_id` gives the example,
    `num_tokens` the row's token count before truncation (more than `max_length` where the
    example was cut). `labels` holds label ids: one per text (classification), the ids of a
    text's labels (multilabel), or one per token, -100 where the loss ignores the token (ner);
    `labels_type` is the task's (`TaskTraining.labels_type`).
    """
    return pa.schema(
        [
            ("input_ids", pa.list_(pa.int32())),
            ("attention_mask", pa.list_(pa.int8())),
            ("labels", labels_type),
            ("num_tokens", pa.int32()),
            (EXAMPLE_ID_COLUMN, pa.int32()),
        ]
    )


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
    task: str
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

    def content_hash(self) -> str:
        """sha256 of everything the dataset holds: every split's values, the labels, settings.

        Equal content gives an equal hash whatever the tables' chunking in memory.
        """
        digest = hashlib.sha256()
        header = {
            "splits": list(self.splits),
            "label_names": self.label_names,
            "tokenizer_fingerprint": self.tokenizer_fingerprint,
            "max_length": self.max_length,
            "task": self.task,
            "max_windows": self.max_windows,
        }
        digest.update(json.dumps(header, sort_keys=True).encode())
        for table in self.splits.values():
            for name in table.column_names:
                digest.update(name.encode())
                _update_with_values(digest, table.column(name).combine_chunks())
        return digest.hexdigest()

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


def _update_with_values(digest: Any, array: pa.Array) -> None:
    """Feed an Arrow array's logical values (not its buffers, which may hold slack) to `digest`."""
    if pa.types.is_list(array.type):
        digest.update(array.value_lengths().to_numpy(zero_copy_only=False).tobytes())
        _update_with_values(digest, array.flatten())
    else:
        values = array.to_numpy(zero_copy_only=False)
        digest.update(str(values.dtype).encode() + values.tobytes())


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
    plugin: TaskTraining,
    max_windows: int = 1,
) -> pa.Table:
    """Tokenize one `text`/`label` frame as the task encodes it, against given label names."""
    encoded = plugin.encode(frame, tokenizer, label_names, max_length, max_windows)
    return pa.table(encoded, schema=tokenized_schema(plugin.labels_type))


def tokenize_dataset(
    splits: dict[str, pd.DataFrame],
    tokenizer: PreTrainedTokenizerBase,
    task: str,
    plugin: TaskTraining,
    max_length: int,
    max_windows: int = 1,
) -> TokenizedDataset:
    """Tokenize `text`/`label` split frames as the task encodes them, without padding.

    Label names come from the labels of all splits (see the task's `label_names`). Batches are
    padded dynamically at training and inference time. A text longer than `max_length` tokens
    becomes up to `max_windows` rows (classification, multilabel; ner keeps every window).

    Args:
        splits: The split frames, by name.
        tokenizer: The base model's tokenizer.
        task: The task's name, recorded in the dataset.
        plugin: The task's training plug-in, which encodes the texts and labels.
        max_length: Tokens per row (window).
        max_windows: Rows (windows) of a text at most.
    """
    label_names = plugin.label_names([frame["label"] for frame in splits.values()])
    return TokenizedDataset(
        splits={
            name: tokenize_split(frame, tokenizer, label_names, max_length, plugin, max_windows)
            for name, frame in splits.items()
        },
        label_names=label_names,
        tokenizer_fingerprint=tokenizer_fingerprint(tokenizer),
        max_length=max_length,
        task=task,
        max_windows=max_windows,
    )


def by_length(table: pa.Table) -> pa.Table:
    """The table's examples from shortest to longest, each example's rows together, in order.

    Batches of neighbouring rows then pad little; anything that reads the rows of an example
    in order (windows of a sentence) reads them as before.
    """
    examples = table.column(EXAMPLE_ID_COLUMN).to_numpy()
    lengths = pd.Series(table.column("num_tokens").to_numpy()).groupby(examples).transform("sum")
    order = np.lexsort((np.arange(len(examples)), examples, lengths.to_numpy()))
    return table.take(order)


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


def encode_labelled_texts(
    texts: Sequence[str],
    labels: Sequence[Any],
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    max_windows: int = 1,
) -> dict[str, list]:
    """The texts in windows (`encode_texts`), every row with its text's entry of `labels`."""
    encoded = encode_texts(texts, tokenizer, max_length, max_windows)
    return {**encoded, "labels": [labels[text] for text in encoded[EXAMPLE_ID_COLUMN]]}


def text_logits(logits: np.ndarray, table: pa.Table) -> tuple[np.ndarray, list]:
    """Each example's logits (the mean of its rows') and its labels, in example order."""
    examples = table.column(EXAMPLE_ID_COLUMN).to_numpy()
    first_rows = np.unique(examples, return_index=True)[1]
    labels = table.column("labels").to_pylist()
    return (
        mean_by_text(np.asarray(logits), examples, len(first_rows)),
        [labels[row] for row in first_rows],
    )
