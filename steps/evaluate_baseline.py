"""Baseline step: TF-IDF + logistic regression on the same split."""

from typing import Annotated

import pandas as pd
from zenml import log_metadata, step

from textmodels.baseline import evaluate_tfidf_baseline
from textmodels.evaluation import EvaluationReport
from textmodels.tokenization import TokenizedDataset


@step
def evaluate_baseline(
    train_set: pd.DataFrame, test_set: pd.DataFrame, tokenized_dataset: TokenizedDataset
) -> Annotated[EvaluationReport, "baseline_evaluation"]:
    """Fit the TF-IDF baseline on the training set and evaluate it on the test set.

    Args:
        train_set: Training rows.
        test_set: Test rows.
        tokenized_dataset: Gives the label order the fine-tuned model uses.

    Returns:
        The baseline's evaluation report.
    """
    report = evaluate_tfidf_baseline(train_set, test_set, tokenized_dataset.label_names)
    log_metadata(report.metrics)
    return report
