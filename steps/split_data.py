"""Split step: train, validation and test sets."""

from typing import Annotated

import pandas as pd
from zenml import log_metadata, step

from pipelines.step_cache import code_cache_policy
from stackport.core.names import Artifact
from stackport.core.settings import DataSettings, SplitSettings
from stackport.data.splitting import split_dataset
from stackport.data.validation import ValidationReport
from stackport.tasks import training_plugin


@step(cache_policy=code_cache_policy(__name__))
def split_data(
    raw_dataset: pd.DataFrame,
    validation_report: ValidationReport,
    data: DataSettings,
    split: SplitSettings,
) -> tuple[
    Annotated[pd.DataFrame, Artifact.TRAIN_SET],
    Annotated[pd.DataFrame, Artifact.VALIDATION_SET],
    Annotated[pd.DataFrame, Artifact.TEST_SET],
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
    splits = split_dataset(
        raw_dataset, data.text_column, data.label_column, split, training_plugin(data.task)
    )
    log_metadata({f"{name}_rows": len(frame) for name, frame in splits.items()})
    return splits["train"], splits["validation"], splits["test"]
