"""Splitting labelled text into train, validation and test sets without leakage."""

from __future__ import annotations

import pandas as pd
from sklearn.model_selection import train_test_split

from stackport.core.names import SPLIT_COLUMN, SPLIT_NAMES
from stackport.core.plugins import TaskTraining
from stackport.core.settings import SplitSettings


def stripped_text(text: object) -> str:
    """The key of a text that makes texts differing only in surrounding white space the same."""
    return str(text).strip()


def split_dataset(
    frame: pd.DataFrame,
    text_column: str,
    label_column: str,
    settings: SplitSettings,
    plugin: TaskTraining,
) -> dict[str, pd.DataFrame]:
    """Return train/validation/test frames with `text` and `label` columns.

    Texts and labels are as the task holds them: strings (classification), a string and a
    list of labels (multilabel), or lists of tokens and tags (ner). Rows that carry a `split`
    column keep their split. Splits that are missing are carved out of the training rows with
    a seeded split, stratified as the task says (by label; multilabel: by a text's rarest
    label; ner: not at all). Identical texts always land in the same split, so that no text is
    both trained and tested on. A split longer than its `max_rows` is cut to a seeded sample.
    """
    data = pd.DataFrame(
        {
            "text": frame[text_column].map(plugin.as_text),
            "label": frame[label_column].map(plugin.as_label),
        }
    )
    if SPLIT_COLUMN in frame.columns:
        splits = {name: data[frame[SPLIT_COLUMN] == name] for name in SPLIT_NAMES}
    else:
        splits = {"train": data}
    carved_test = False
    if _is_missing(splits, "test"):
        splits["train"], splits["test"] = _carve(
            splits["train"], settings.test_fraction, settings.seed, plugin
        )
        carved_test = True
    if _is_missing(splits, "validation"):
        # Fractions are of all rows to split: rescale once the test rows are gone.
        share = settings.validation_fraction / (1 - settings.test_fraction * carved_test)
        splits["train"], splits["validation"] = _carve(
            splits["train"], share, settings.seed, plugin
        )
    return {
        name: _subset(splits[name], settings.max_rows.get(name), settings.seed).reset_index(
            drop=True
        )
        for name in SPLIT_NAMES
    }


def _subset(frame: pd.DataFrame, max_rows: int | None, seed: int) -> pd.DataFrame:
    """At most `max_rows` rows of `frame`, a seeded sample in the original order."""
    if max_rows is None or len(frame) <= max_rows:
        return frame
    return frame.sample(n=max_rows, random_state=seed).sort_index()


def _is_missing(splits: dict[str, pd.DataFrame], name: str) -> bool:
    return name not in splits or splits[name].empty


def _carve(
    frame: pd.DataFrame, fraction: float, seed: int, spec: TaskTraining
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split off `fraction` of the distinct texts, stratified; duplicates stay together."""
    keys = frame["text"].map(spec.text_key)
    first = ~keys.duplicated()
    strata = spec.strata(frame.loc[first, "label"])
    _, carved = train_test_split(
        keys[first], test_size=fraction, random_state=seed, stratify=strata
    )
    in_carved = keys.isin(set(carved))
    return frame[~in_carved], frame[in_carved]
