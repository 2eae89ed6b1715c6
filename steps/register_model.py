"""Register step: a Model Control Plane version with the model, its ONNX forms and its metrics."""

from typing import Annotated

from zenml import get_step_context, log_metadata, step
from zenml.logger import get_logger
from zenml.model.utils import link_artifact_to_model

from stackport.core.names import Artifact
from stackport.evaluation.report import EvaluationReport
from stackport.inference.onnx_model import OnnxModel
from stackport.onnx.benchmark import BenchmarkReport
from stackport.onnx.quantization import QuantizationReport
from stackport.release.registration import version_metadata
from stackport.tasks import training_plugin
from stackport.training.model import FineTunedModel

logger = get_logger(__name__)


# Registration links artifacts and logs metadata: a cached run would do neither.
@step(enable_cache=False)
def register_model(
    model: FineTunedModel,
    model_evaluation: EvaluationReport,
    baseline_evaluation: EvaluationReport,
    onnx_model: OnnxModel,
    onnx_model_int8: OnnxModel,
    quantization_report: QuantizationReport,
    benchmark_report: BenchmarkReport,
) -> Annotated[str, Artifact.MODEL_VERSION]:
    """Link the models, evaluations and benchmark to this run's model version; log the figures.

    The step's configured `model` (set by the pipeline) names the Model Control Plane model;
    the version is created when this step starts, so a run that stops earlier creates none.

    Args:
        model: The fine-tuned model.
        model_evaluation: Its test metrics.
        baseline_evaluation: The task baseline's test metrics (TF-IDF for classification).
        onnx_model: The fp32 ONNX export.
        onnx_model_int8: The int8 ONNX model.
        quantization_report: Which ONNX model is deployable, and why.
        benchmark_report: Latency, throughput, task metric and size of every runtime.

    Returns:
        The name of the model version.
    """
    context = get_step_context()
    for inputs in context.inputs.values():
        for artifact in inputs:
            link_artifact_to_model(artifact)
    metadata = version_metadata(
        model,
        model_evaluation,
        baseline_evaluation,
        onnx_model,
        onnx_model_int8,
        quantization_report,
        benchmark_report,
    )
    log_metadata(metadata, infer_model=True)
    metric = training_plugin(model.task).selection_metric
    logger.info(
        "Registered %s version %s: test %s %.4f (baseline %s: %.4f).",
        context.model.name,
        context.model.version,
        metric,
        model_evaluation.metrics[metric],
        baseline_evaluation.model_name,
        baseline_evaluation.metrics[metric],
    )
    return str(context.model.version)
