"""Evaluate step: test-set metrics of the fine-tuned model, as its task reports them."""

from typing import Annotated

import mlflow
from zenml import log_metadata, step

from pipelines.step_cache import code_cache_policy
from stackport.core.names import Artifact
from stackport.data.tokenization import TokenizedDataset
from stackport.evaluation.report import EvaluationReport
from stackport.training.model import FineTunedModel


@step(experiment_tracker=True, cache_policy=code_cache_policy(__name__))
def evaluate_model(
    model: FineTunedModel, tokenized_dataset: TokenizedDataset
) -> Annotated[EvaluationReport, Artifact.MODEL_EVALUATION]:
    """The task's test metrics, per-class metrics and confusion matrix.

    Classification: accuracy and macro-F1. Multilabel: subset accuracy, macro- and micro-F1
    at the model's label thresholds. NER: entity-level F1/precision/recall, macro-F1 over
    entity types and word accuracy.

    Args:
        model: The fine-tuned model.
        tokenized_dataset: The tokenized test split.

    Returns:
        The evaluation report.
    """
    report = model.evaluate(tokenized_dataset.splits["test"], "test")
    if mlflow.active_run() is not None:
        mlflow.log_metrics({f"test_{name}": value for name, value in report.metrics.items()})
    log_metadata(report.metrics)
    return report
