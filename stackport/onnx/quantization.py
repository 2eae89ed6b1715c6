"""Int8 quantization of an ONNX model with ONNX Runtime, and the accuracy gate that guards it."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import pandas as pd
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry
from pydantic import BaseModel

from stackport.core.settings import QuantizationMode, QuantizationSettings
from stackport.evaluation.report import EvaluationReport
from stackport.inference.onnx_model import MODEL_FILENAME, TOKENIZER_FILENAME, OnnxModel
from stackport.inference.predictor import OnnxPredictor, batches
from stackport.onnx.export import seal_onnx_model
from stackport.tasks import training_plugin

EVALUATION_BATCH_SIZE = 32
CALIBRATION_BATCH_SIZE = 16


class QuantizationReport(BaseModel):
    """How the int8 model compares to the fp32 one, and which of the two is deployable.

    The gate decides on the validation split; the test split only reports (the figures a user
    sees for the deployable model, e.g. in the service's `/metadata`).

    Attributes:
        mode: The int8 model's quantization mode.
        per_channel: Whether weights were quantized per channel.
        weight_type: `QInt8` or `QUInt8`.
        metric: The gate's metric: the task's selection metric.
        fp32_metric: The fp32 ONNX model's metric on the validation split.
        int8_metric: The int8 ONNX model's metric on the validation split.
        metric_drop: `fp32_metric - int8_metric`.
        max_metric_drop: The largest drop allowed.
        deployable: `int8` when the drop is within `max_metric_drop`, else `fp32`.
        reason: Why, in one sentence.
        fp32_size_bytes: Size of the fp32 graph.
        int8_size_bytes: Size of the int8 graph.
        fp32_test_metrics: Every test metric of the fp32 ONNX model.
        int8_test_metrics: Every test metric of the int8 ONNX model.
    """

    mode: QuantizationMode
    per_channel: bool
    weight_type: str
    metric: str
    fp32_metric: float
    int8_metric: float
    metric_drop: float
    max_metric_drop: float
    deployable: Literal["fp32", "int8"]
    reason: str
    fp32_size_bytes: int
    int8_size_bytes: int
    fp32_test_metrics: dict[str, float]
    int8_test_metrics: dict[str, float]

    @property
    def deployable_test_metrics(self) -> dict[str, float]:
        """The test metrics of the deployable ONNX model."""
        return self.int8_test_metrics if self.deployable == "int8" else self.fp32_test_metrics


class TextCalibrationReader(CalibrationDataReader):
    """Feeds tokenized batches of texts to ONNX Runtime's calibrator."""

    def __init__(self, predictor: OnnxPredictor, texts: Sequence[str]):
        self._batches = (
            predictor.encode(batch).inputs for batch in batches(texts, CALIBRATION_BATCH_SIZE)
        )

    def get_next(self) -> dict | None:
        """The next batch's graph inputs, or `None` when the texts are used up."""
        return next(self._batches, None)


def _quantize_dynamic(
    model: OnnxModel, output: Path, settings: QuantizationSettings, _: Sequence[str]
) -> None:
    """Int8 weights; activations quantized on the fly per batch (no calibration)."""
    quantize_dynamic(
        model.model_path,
        output,
        per_channel=settings.per_channel,
        weight_type=QuantType[settings.weight_type],
        use_external_data_format=len(model.graph_files) > 1,
    )


def _quantize_static(
    model: OnnxModel,
    output: Path,
    settings: QuantizationSettings,
    calibration_texts: Sequence[str],
) -> None:
    """Int8 weights and activations (QDQ), activation ranges calibrated on `calibration_texts`.

    Every op type ONNX Runtime can quantize is, except `settings.static_excluded_op_types`.
    """
    quantizable = set(QLinearOpsRegistry) | set(QDQRegistry)
    quantize_static(
        model.model_path,
        output,
        TextCalibrationReader(
            OnnxPredictor(model), calibration_texts[: settings.calibration_samples]
        ),
        quant_format=QuantFormat.QDQ,
        per_channel=settings.per_channel,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType[settings.weight_type],
        op_types_to_quantize=sorted(quantizable - set(settings.static_excluded_op_types)),
        use_external_data_format=len(model.graph_files) > 1,
    )


Quantizer = Callable[[OnnxModel, Path, QuantizationSettings, Sequence[str]], None]
QUANTIZERS: dict[QuantizationMode, Quantizer] = {
    QuantizationMode.DYNAMIC_INT8: _quantize_dynamic,
    QuantizationMode.STATIC_INT8: _quantize_static,
}


@contextmanager
def _root_logger_level(level: int) -> Iterator[None]:
    """Raise the root logger's level for the block; ONNX Runtime's quantizer logs through it."""
    root = logging.getLogger()
    previous = root.level
    root.setLevel(max(level, previous))
    try:
        yield
    finally:
        root.setLevel(previous)


def quantize_onnx_model(
    model: OnnxModel,
    directory: Path,
    settings: QuantizationSettings,
    calibration_texts: Sequence[str] = (),
) -> OnnxModel:
    """Quantize an fp32 ONNX model to int8 with ONNX Runtime.

    Args:
        model: The fp32 model (as exported, not optimized by ORTOptimizer).
        directory: A local directory (created if missing) that receives the int8 model's files.
        settings: Mode, per-channel, weight type and static-quantization options.
        calibration_texts: Training texts (NER: word lists) for static quantization; the first
            `settings.calibration_samples` are used.

    Returns:
        The int8 model, with the fp32 model's tokenizer, labels, thresholds and word split.
    """
    if settings.mode is QuantizationMode.STATIC_INT8 and not calibration_texts:
        raise ValueError("Static quantization needs calibration texts.")
    directory.mkdir(parents=True, exist_ok=True)
    with _root_logger_level(logging.WARNING):  # ONNX Runtime logs a line per tensor at INFO
        QUANTIZERS[settings.mode](model, directory / MODEL_FILENAME, settings, calibration_texts)
    shutil.copyfile(model.tokenizer_path, directory / TOKENIZER_FILENAME)
    return seal_onnx_model(
        directory,
        model.task,
        model.label_names,
        model.max_length,
        settings.mode,
        thresholds=model.thresholds,
        max_windows=model.max_windows,
    )


def evaluate_onnx_model(model: OnnxModel, frame: pd.DataFrame, split: str) -> EvaluationReport:
    """The task's report of an ONNX model on a split, predicting through the inference layer."""
    predictions = OnnxPredictor(model).predict_batches(
        frame["text"].tolist(), EVALUATION_BATCH_SIZE
    )
    return training_plugin(model.task).report_predictions(
        f"onnx-{model.quantization}", split, frame, model.label_names, predictions
    )


def choose_deployable(
    metric: str, fp32_metric: float, int8_metric: float, settings: QuantizationSettings
) -> tuple[Literal["fp32", "int8"], str, float]:
    """Deploy the int8 model unless `metric` drops more than `settings.max_metric_drop`.

    Returns:
        The deployable model, why (one sentence), and the drop.
    """
    drop = round(fp32_metric - int8_metric, 10)  # 0.96 - 0.955 is 0.005 for the gate
    comparison = (
        f"validation {metric}: int8 {int8_metric:.4f} vs fp32 {fp32_metric:.4f} (drop {drop:+.4f})"
    )
    if drop > settings.max_metric_drop:
        return (
            "fp32",
            f"{comparison} exceeds max_metric_drop {settings.max_metric_drop:g}: "
            "the fp32 ONNX model stays the deployable one",
            drop,
        )
    return "int8", f"{comparison} is within max_metric_drop {settings.max_metric_drop:g}", drop


def gate_quantized_model(
    fp32_model: OnnxModel,
    int8_model: OnnxModel,
    validation_set: pd.DataFrame,
    test_set: pd.DataFrame,
    settings: QuantizationSettings,
) -> QuantizationReport:
    """Choose the deployable model by the task's metric on validation; report both on test."""
    metric = training_plugin(fp32_model.task).selection_metric
    fp32_metric = evaluate_onnx_model(fp32_model, validation_set, "validation").metrics[metric]
    int8_metric = evaluate_onnx_model(int8_model, validation_set, "validation").metrics[metric]
    deployable, reason, drop = choose_deployable(metric, fp32_metric, int8_metric, settings)
    return QuantizationReport(
        mode=int8_model.quantization,
        per_channel=settings.per_channel,
        weight_type=settings.weight_type,
        metric=metric,
        fp32_metric=fp32_metric,
        int8_metric=int8_metric,
        metric_drop=drop,
        max_metric_drop=settings.max_metric_drop,
        deployable=deployable,
        reason=reason,
        fp32_size_bytes=fp32_model.size_bytes,
        int8_size_bytes=int8_model.size_bytes,
        fp32_test_metrics=evaluate_onnx_model(fp32_model, test_set, "test").metrics,
        int8_test_metrics=evaluate_onnx_model(int8_model, test_set, "test").metrics,
    )
