"""Register step: a Model Control Plane version with the model, its ONNX forms and its metrics."""

from typing import Annotated

from zenml import get_step_context, log_metadata, step
from zenml.logger import get_logger
from zenml.model.utils import link_artifact_to_model

from textmodels.benchmarking import BenchmarkReport
from textmodels.evaluation import EvaluationReport
from textmodels.modeling import FineTunedModel
from textmodels.onnx_model import MODEL_FILENAME, OnnxModel
from textmodels.quantization import QuantizationReport
from textmodels.task_registry import task_spec

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
) -> Annotated[str, "model_version"]:
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
    log_metadata(
        {
            "test_metrics": model_evaluation.metrics,
            "baseline_test_metrics": baseline_evaluation.metrics,
            "per_class": {
                name: metrics.model_dump() for name, metrics in model_evaluation.per_class.items()
            },
            "labels": model.label_names,
            "task": model.task.value,
            "onnx": {
                "deployable": quantization_report.deployable,
                "reason": quantization_report.reason,
                "opset": onnx_model.opset,
                "int8_mode": str(onnx_model_int8.quantization),
                "fp32_sha256": onnx_model.file_sha256[MODEL_FILENAME],
                "int8_sha256": onnx_model_int8.file_sha256[MODEL_FILENAME],
            },
            "benchmark": benchmark_report.figures(),
        },
        infer_model=True,
    )
    version = context.model.version
    metric = task_spec(model.task).selection_metric
    logger.info(
        "Registered %s version %s: test %s %.4f (baseline %s: %.4f).",
        context.model.name,
        version,
        metric,
        model_evaluation.metrics[metric],
        baseline_evaluation.model_name,
        baseline_evaluation.metrics[metric],
    )
    return str(version)
