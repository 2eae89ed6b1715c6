"""Evaluate step: test-set metrics of the fine-tuned model."""

from typing import Annotated

import mlflow
from zenml import log_metadata, step

from textmodels.evaluation import EvaluationReport, classification_report
from textmodels.modeling import FineTunedModel
from textmodels.tokenization import TokenizedDataset


@step(experiment_tracker=True)
def evaluate_model(
    model: FineTunedModel, tokenized_dataset: TokenizedDataset
) -> Annotated[EvaluationReport, "model_evaluation"]:
    """Accuracy, macro-F1, per-class metrics and confusion matrix on the test split.

    Args:
        model: The fine-tuned model.
        tokenized_dataset: The tokenized test split.

    Returns:
        The evaluation report.
    """
    test = tokenized_dataset.splits["test"]
    report = classification_report(
        "fine-tuned",
        "test",
        model.label_names,
        true_ids=test.column("labels").to_pylist(),
        predicted_ids=model.predict_logits(test).argmax(axis=-1).tolist(),
    )
    if mlflow.active_run() is not None:
        mlflow.log_metrics({f"test_{name}": value for name, value in report.metrics.items()})
    log_metadata(report.metrics)
    return report
