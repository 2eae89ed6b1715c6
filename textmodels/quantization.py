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
from pydantic import BaseModel, Field

from textmodels.evaluation import EvaluationReport
from textmodels.inference import OnnxPredictor, batches
from textmodels.onnx_export import seal_onnx_model
from textmodels.onnx_model import MODEL_FILENAME, TOKENIZER_FILENAME, OnnxModel, QuantizationMode
from textmodels.task_registry import task_spec

EVALUATION_BATCH_SIZE = 32
CALIBRATION_BATCH_SIZE = 16
# Ops whose int8 versions cost transformer accuracy for little speed stay in float in static
# quantization: normalization, GELU (and the Erf, Div, Mul and Add it is exported as), softmax,
# and the residual Adds whose outputs LayerNormalization reads.
ACCURACY_SENSITIVE_OP_TYPES = [
    "LayerNormalization",
    "SkipLayerNormalization",
    "Gelu",
    "BiasGelu",
    "FastGelu",
    "Erf",
    "Softmax",
    "Add",
    "Mul",
    "Div",
]


class QuantizationSettings(BaseModel):
    """How to quantize the fp32 ONNX model to int8, and how much accuracy it may lose."""

    mode: Literal[QuantizationMode.DYNAMIC_INT8, QuantizationMode.STATIC_INT8] = (
        QuantizationMode.DYNAMIC_INT8
    )
    per_channel: bool = Field(False, description="One scale per output channel of each weight.")
    weight_type: Literal["QInt8", "QUInt8"] = "QInt8"
    calibration_samples: int = Field(
        128, ge=1, description="Training texts that calibrate activation ranges (static only)."
    )
    static_excluded_op_types: list[str] = Field(
        default_factory=lambda: list(ACCURACY_SENSITIVE_OP_TYPES),
        description="Op types static quantization leaves in float.",
    )
    max_metric_drop: float = Field(
        0.005,
        ge=-1,
        le=1,
        description=(
            "Largest drop (absolute) of the task's test metric (macro_f1; entity_f1 for ner) "
            "that still deploys the int8 model."
        ),
    )


class QuantizationReport(BaseModel):
    """How the int8 model compares to the fp32 one, and which of the two is deployable.

    Attributes:
        mode: The int8 model's quantization mode.
        per_channel: Whether weights were quantized per channel.
        weight_type: `QInt8` or `QUInt8`.
        metric: The gate's metric on the test split: the task's selection metric.
        fp32_metric: The fp32 ONNX model's metric.
        int8_metric: The int8 ONNX model's metric.
        metric_drop: `fp32_metric - int8_metric`.
        max_metric_drop: The largest drop allowed.
        deployable: `int8` when the drop is within `max_metric_drop`, else `fp32`.
        reason: Why, in one sentence.
        fp32_size_bytes: Size of the fp32 graph.
        int8_size_bytes: Size of the int8 graph.
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
        split_into_words=model.split_into_words,
        max_windows=model.max_windows,
    )


def evaluate_onnx_model(model: OnnxModel, test_set: pd.DataFrame) -> EvaluationReport:
    """The task's test report of an ONNX model, predicting through `textmodels.inference`."""
    predictions = OnnxPredictor(model).predict_batches(
        test_set["text"].tolist(), EVALUATION_BATCH_SIZE
    )
    return task_spec(model.task).report_predictions(
        f"onnx-{model.quantization}", test_set, model.label_names, predictions
    )


def choose_deployable(
    fp32_model: OnnxModel,
    int8_model: OnnxModel,
    fp32_metric: float,
    int8_metric: float,
    settings: QuantizationSettings,
) -> QuantizationReport:
    """Deploy the int8 model unless the task's metric drops more than `settings.max_metric_drop`."""
    metric = task_spec(fp32_model.task).selection_metric
    drop = round(fp32_metric - int8_metric, 10)  # 0.96 - 0.955 is 0.005 for the gate
    comparison = f"int8 {metric} {int8_metric:.4f} vs fp32 {fp32_metric:.4f} (drop {drop:+.4f})"
    if drop > settings.max_metric_drop:
        deployable = "fp32"
        reason = (
            f"{comparison} exceeds max_metric_drop {settings.max_metric_drop:g}: "
            "the fp32 ONNX model stays the deployable one"
        )
    else:
        deployable = "int8"
        reason = f"{comparison} is within max_metric_drop {settings.max_metric_drop:g}"
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
    )


def gate_quantized_model(
    fp32_model: OnnxModel,
    int8_model: OnnxModel,
    test_set: pd.DataFrame,
    settings: QuantizationSettings,
) -> QuantizationReport:
    """Evaluate both models on the test split by the task's metric; choose the deployable one."""
    metric = task_spec(fp32_model.task).selection_metric
    return choose_deployable(
        fp32_model,
        int8_model,
        evaluate_onnx_model(fp32_model, test_set).metrics[metric],
        evaluate_onnx_model(int8_model, test_set).metrics[metric],
        settings,
    )
