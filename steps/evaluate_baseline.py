"""Baseline step: the task's simple baseline on the same split."""

from typing import Annotated

import pandas as pd
from zenml import log_metadata, step

from pipelines.step_cache import code_cache_policy
from stackport.core.names import Artifact
from stackport.data.tokenization import TokenizedDataset
from stackport.evaluation.report import EvaluationReport
from stackport.tasks import training_plugin


@step(cache_policy=code_cache_policy(__name__))
def evaluate_baseline(
    train_set: pd.DataFrame, test_set: pd.DataFrame, tokenized_dataset: TokenizedDataset
) -> Annotated[EvaluationReport, Artifact.BASELINE_EVALUATION]:
    """Fit the task's baseline on the training set and evaluate it on the test set.

    Classification: TF-IDF + logistic regression; multilabel: TF-IDF + one-vs-rest logistic
    regression; NER: each word's most frequent tag in the training set.

    Args:
        train_set: Training rows.
        test_set: Test rows.
        tokenized_dataset: Gives the task and the label order the fine-tuned model uses.

    Returns:
        The baseline's evaluation report.
    """
    baseline = training_plugin(tokenized_dataset.task).baseline
    report = baseline(train_set, test_set, tokenized_dataset.label_names)
    log_metadata(report.metrics)
    return report
