"""Register step: a Model Control Plane version with the model, its ONNX forms and its metrics."""

from typing import Annotated

from zenml import get_step_context, step
from zenml.logger import get_logger

from pipelines.model_registry import RegisteredVersion, register_version
from stackport.core.names import Artifact
from stackport.evaluation.report import EvaluationReport
from stackport.inference.onnx_model import OnnxModel
from stackport.onnx.benchmark import BenchmarkReport
from stackport.onnx.quantization import QuantizationReport
from stackport.release.registration import ModelIdentity, version_metadata
from stackport.tasks import training_plugin
from stackport.training.model import FineTunedModel

logger = get_logger(__name__)


# Registration looks the model artifact up in the Model Control Plane: a cached result would
# not notice a version deleted since.
@step(enable_cache=False)
def register_model(
    model: FineTunedModel,
    model_evaluation: EvaluationReport,
    baseline_evaluation: EvaluationReport,
    onnx_model: OnnxModel,
    onnx_model_optimized: OnnxModel,
    onnx_model_int8: OnnxModel,
    onnx_model_static_int8: OnnxModel,
    quantization_report: QuantizationReport,
    benchmark_report: BenchmarkReport,
    identity: ModelIdentity,
) -> Annotated[RegisteredVersion, Artifact.MODEL_VERSION]:
    """Register a version holding the run's artifacts and figures, unless one holds the model.

    A version is created only here, so a run that stops earlier creates none; an unchanged
    re-run (its model from the cache) finds the version of its model instead of adding one.

    Args:
        model: The fine-tuned model.
        model_evaluation: Its test metrics.
        baseline_evaluation: The task baseline's test metrics (TF-IDF for classification).
        onnx_model: The fp32 ONNX export.
        onnx_model_optimized: The `fp32-optimized` variant.
        onnx_model_int8: The `dynamic-int8` variant.
        onnx_model_static_int8: The `static-int8` variant.
        quantization_report: Which ONNX variants are deployable, and why.
        benchmark_report: Latency, throughput, task metric and size of every runtime.
        identity: The Model Control Plane model.

    Returns:
        The version the model is registered as.
    """
    inputs = get_step_context().inputs
    registered = register_version(
        identity,
        inputs["model"][0],
        [artifact for artifacts in inputs.values() for artifact in artifacts],
        version_metadata(
            model,
            model_evaluation,
            baseline_evaluation,
            [onnx_model, onnx_model_optimized, onnx_model_int8, onnx_model_static_int8],
            quantization_report,
            benchmark_report,
        ),
    )
    metric = training_plugin(model.task).selection_metric
    logger.info(
        "%s %s version %s: test %s %.4f (baseline %s: %.4f).",
        "Registered" if registered.created else "Already registered as",
        registered.name,
        registered.version,
        metric,
        model_evaluation.metrics[metric],
        baseline_evaluation.model_name,
        baseline_evaluation.metrics[metric],
    )
    return registered
