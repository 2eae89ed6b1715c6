"""Tokenize step: token ids with the base model's tokenizer."""

from typing import Annotated

import pandas as pd
from transformers import AutoTokenizer
from zenml import step
from zenml.logger import get_logger

from pipelines.step_cache import code_cache_policy
from stackport.core.names import Artifact
from stackport.core.settings import DataSettings, ModelSettings
from stackport.data.tokenization import TokenizedDataset, tokenize_dataset
from stackport.tasks import training_plugin
from stackport.training.model import resolve_base_model

logger = get_logger(__name__)


@step(cache_policy=code_cache_policy(__name__))
def tokenize_data(
    train_set: pd.DataFrame,
    validation_set: pd.DataFrame,
    test_set: pd.DataFrame,
    data: DataSettings,
    model: ModelSettings,
) -> Annotated[TokenizedDataset, Artifact.TOKENIZED_DATASET]:
    """Tokenize every split as the task encodes it, in windows of `model.max_length` tokens.

    Args:
        train_set: Training rows.
        validation_set: Validation rows.
        test_set: Test rows.
        data: The task.
        model: The base model (whose tokenizer is used), the window length and count.

    Returns:
        The tokenized splits.
    """
    dataset = tokenize_dataset(
        {"train": train_set, "validation": validation_set, "test": test_set},
        AutoTokenizer.from_pretrained(resolve_base_model(model.base_model)),
        data.task,
        training_plugin(data.task),
        max_length=model.max_length,
        max_windows=model.max_windows,
    )
    for split in dataset.splits:
        logger.info(
            "%s: %d examples in %d rows of up to %d tokens, %.0f%% of examples cut.",
            split,
            dataset.example_count(split),
            dataset.splits[split].num_rows,
            dataset.max_length,
            100 * dataset.truncation_rate(split),
        )
    return dataset
