"""Register step: a Model Control Plane version with the model and its metrics."""

from typing import Annotated

from zenml import get_step_context, log_metadata, step
from zenml.logger import get_logger
from zenml.model.utils import link_artifact_to_model

from textmodels.evaluation import EvaluationReport
from textmodels.modeling import FineTunedModel

logger = get_logger(__name__)


@step
def register_model(
    model: FineTunedModel,
    model_evaluation: EvaluationReport,
    baseline_evaluation: EvaluationReport,
) -> Annotated[str, "model_version"]:
    """Link the model and its evaluations to this run's model version and log the metrics.

    The step's configured `model` (set by the pipeline) names the Model Control Plane model;
    the version is created when this step starts, so a run that stops earlier creates none.

    Args:
        model: The fine-tuned model.
        model_evaluation: Its test metrics.
        baseline_evaluation: The TF-IDF baseline's test metrics.

    Returns:
        The name of the model version.
    """
    context = get_step_context()
    for inputs in context.inputs.values():
        for artifact in inputs:
            link_artifact_to_model(artifact)
    log_metadata(
        {
            "test_metrics": model_evaluation.metrics,
            "baseline_test_metrics": baseline_evaluation.metrics,
            "per_class": {
                name: metrics.model_dump() for name, metrics in model_evaluation.per_class.items()
            },
            "labels": model.label_names,
            "task": model.task.value,
        },
        infer_model=True,
    )
    version = context.model.version
    logger.info(
        "Registered %s version %s: macro-F1 %.4f (TF-IDF baseline %.4f).",
        context.model.name,
        version,
        model_evaluation.metrics["macro_f1"],
        baseline_evaluation.metrics["macro_f1"],
    )
    return str(version)
