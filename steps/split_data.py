"""Split step: train, validation and test sets."""

from typing import Annotated

import pandas as pd
from zenml import log_metadata, step

from textmodels.settings import DataSettings
from textmodels.splitting import SplitSettings, split_dataset
from textmodels.validation import ValidationReport


@step
def split_data(
    raw_dataset: pd.DataFrame,
    validation_report: ValidationReport,
    data: DataSettings,
    split: SplitSettings,
) -> tuple[
    Annotated[pd.DataFrame, "train_set"],
    Annotated[pd.DataFrame, "validation_set"],
    Annotated[pd.DataFrame, "test_set"],
]:
    """Split validated rows into `text`/`label` frames, keeping given splits.

    Args:
        raw_dataset: The rows as read.
        validation_report: The passed validation; taking it orders this step after validation.
        data: The task, and which columns hold text and label.
        split: Fractions and seed for splits the data does not bring.

    Returns:
        The train, validation and test sets.
    """
    splits = split_dataset(raw_dataset, data.text_column, data.label_column, split, data.task)
    log_metadata({f"{name}_rows": len(frame) for name, frame in splits.items()})
    return splits["train"], splits["validation"], splits["test"]
