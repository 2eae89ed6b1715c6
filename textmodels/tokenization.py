"""Tokenizing labelled text into fixed-schema Arrow tables."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
from transformers import PreTrainedTokenizerBase

from textmodels.tasks import Task

SPLITS = ("train", "validation", "test")

TOKENIZED_SCHEMA = pa.schema(
    [
        ("input_ids", pa.list_(pa.int32())),
        ("attention_mask", pa.list_(pa.int8())),
        ("labels", pa.int64()),
        # Token count before truncation, so the truncation rate can be reported.
        ("num_tokens", pa.int32()),
    ]
)


@dataclass
class TokenizedDataset:
    """Token ids, attention masks and label ids of every split, plus what produced them.

    Attributes:
        splits: One Arrow table per split name, with the columns of `TOKENIZED_SCHEMA`.
        label_names: Label names; a row's `labels` value indexes this list.
        tokenizer_fingerprint: sha256 of the tokenizer's files, to detect a mismatched model.
        max_length: Sequences were truncated to this many tokens.
        task: The task the labels are for.
    """

    splits: dict[str, pa.Table]
    label_names: list[str]
    tokenizer_fingerprint: str
    max_length: int
    task: Task

    def label_counts(self, split: str) -> dict[str, int]:
        """Examples per label name in one split."""
        counts = Counter(self.splits[split].column("labels").to_pylist())
        return {name: counts.get(index, 0) for index, name in enumerate(self.label_names)}

    def truncation_rate(self, split: str) -> float:
        """Share of the split's examples that were longer than `max_length` tokens."""
        table = self.splits[split]
        if table.num_rows == 0:
            return 0.0
        lengths = table.column("num_tokens").to_numpy()
        return float((lengths > self.max_length).mean())


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
) -> pa.Table:
    """Tokenize one split with `text` and `label` columns into a `TOKENIZED_SCHEMA` table.

    No padding is applied: batches are padded dynamically at training and inference time.
    """
    label_ids = {name: index for index, name in enumerate(label_names)}
    texts = frame["text"].tolist()
    full = tokenizer(texts, truncation=False, verbose=False)["input_ids"]
    truncated = tokenizer(texts, truncation=True, max_length=max_length)
    return pa.table(
        {
            "input_ids": truncated["input_ids"],
            "attention_mask": truncated["attention_mask"],
            "labels": [label_ids[label] for label in frame["label"]],
            "num_tokens": [len(ids) for ids in full],
        },
        schema=TOKENIZED_SCHEMA,
    )


def tokenize_dataset(
    splits: dict[str, pd.DataFrame],
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    task: Task = Task.CLASSIFICATION,
) -> TokenizedDataset:
    """Tokenize train/validation/test frames; label names are the sorted labels of all splits."""
    label_names = sorted({str(label) for frame in splits.values() for label in frame["label"]})
    return TokenizedDataset(
        splits={
            name: tokenize_split(frame, tokenizer, label_names, max_length)
            for name, frame in splits.items()
        },
        label_names=label_names,
        tokenizer_fingerprint=tokenizer_fingerprint(tokenizer),
        max_length=max_length,
        task=task,
    )
