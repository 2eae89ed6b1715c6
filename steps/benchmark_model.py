"""Benchmark step: latency, throughput, task metric and size of PyTorch and each ONNX variant."""

from typing import Annotated

import mlflow
import pandas as pd
from zenml import step
from zenml.logger import get_logger

from pipelines.step_cache import code_cache_policy
from stackport.core.names import Artifact
from stackport.core.settings import BenchmarkSettings
from stackport.inference.onnx_model import OnnxModel
from stackport.onnx.benchmark import BenchmarkReport, model_runtimes, run_benchmark
from stackport.training.model import FineTunedModel

logger = get_logger(__name__)


@step(experiment_tracker=True, cache_policy=code_cache_policy(__name__))
def benchmark_model(
    model: FineTunedModel,
    onnx_model: OnnxModel,
    onnx_model_optimized: OnnxModel,
    onnx_model_int8: OnnxModel,
    onnx_model_static_int8: OnnxModel,
    test_set: pd.DataFrame,
    benchmark: BenchmarkSettings,
) -> Annotated[BenchmarkReport, Artifact.BENCHMARK_REPORT]:
    """Time and score PyTorch and every ONNX variant on test texts; log them to the tracker.

    Args:
        model: The fine-tuned PyTorch model.
        onnx_model: Its fp32 ONNX export.
        onnx_model_optimized: The `fp32-optimized` variant.
        onnx_model_int8: The `dynamic-int8` variant.
        onnx_model_static_int8: The `static-int8` variant.
        test_set: Test rows; a seeded sample of `benchmark.max_texts` of them is used.
        benchmark: How many texts and repeats.

    Returns:
        The benchmark report.
    """
    report = run_benchmark(
        model_runtimes(
            model,
            [onnx_model, onnx_model_optimized, onnx_model_int8, onnx_model_static_int8],
            benchmark,
        ),
        test_set,
        onnx_model.task,
        onnx_model.label_names,
        onnx_model.max_length,
        benchmark,
    )
    logger.info("Inference benchmark:\n%s", report.markdown())
    if mlflow.active_run() is not None:
        mlflow.log_metrics(
            {
                f"{runtime}_{name}": value
                for runtime, figures in report.figures().items()
                for name, value in figures.items()
            }
        )
    return report
