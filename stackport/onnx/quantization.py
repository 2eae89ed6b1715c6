"""Int8 quantization of an ONNX model with ONNX Runtime, and the accuracy gate that guards it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

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

from stackport.core.settings import OnnxVariant, QuantizationSettings
from stackport.evaluation.report import EvaluationReport
from stackport.inference.onnx_model import MODEL_FILENAME, OnnxModel
from stackport.inference.predictor import OnnxPredictor, batches
from stackport.onnx.export import seal_variant
from stackport.tasks import training_plugin

EVALUATION_BATCH_SIZE = 32
CALIBRATION_BATCH_SIZE = 16


class VariantGate(BaseModel):
    """One ONNX variant against the fp32 model: its accuracy, size and whether it deploys.

    Attributes:
        variant: The variant.
        validation_metric: The task's metric on the validation split (what decides).
        metric_drop: The fp32 model's validation metric minus this variant's.
        deployable: Whether the drop is within `max_metric_drop` (fp32 always is).
        reason: Why, in one sentence.
        size_bytes: Size of the graph and its external data.
        test_metrics: Every test metric of the variant (reported, never used to decide).
    """

    variant: OnnxVariant
    validation_metric: float
    metric_drop: float
    deployable: bool
    reason: str
    size_bytes: int
    test_metrics: dict[str, float]


class QuantizationReport(BaseModel):
    """Every ONNX variant against the fp32 model, and which of them are deployable.

    The gate decides on the validation split; the test split only reports (the figures the
    service's `/metadata` answers for the variant it serves).

    Attributes:
        metric: The gate's metric: the task's selection metric.
        max_metric_drop: The largest drop allowed.
        per_channel: Whether int8 weights were quantized per channel.
        weight_type: `QInt8` or `QUInt8`.
        variants: The gate's verdict on each variant, fp32 first.
    """

    metric: str
    max_metric_drop: float
    per_channel: bool
    weight_type: str
    variants: list[VariantGate]

    @property
    def deployable(self) -> list[OnnxVariant]:
        """The variants that may be served."""
        return [gate.variant for gate in self.variants if gate.deployable]

    def gate(self, variant: OnnxVariant) -> VariantGate:
        """The verdict on one variant."""
        return next(gate for gate in self.variants if gate.variant == variant)

    @property
    def summary(self) -> str:
        """The deployable variants and why the others are not, in one line."""
        refused = [
            f"{gate.variant}: {gate.reason}" for gate in self.variants if not gate.deployable
        ]
        line = f"deployable: {', '.join(self.deployable)}"
        return f"{line}; not deployable: {'; '.join(refused)}" if refused else line


class TextCalibrationReader(CalibrationDataReader):
    """Feeds tokenized batches of texts to ONNX Runtime's calibrator."""

    def __init__(self, predictor: OnnxPredictor, texts: Sequence[str]):
        self._batches = (
            predictor.encode(batch).inputs for batch in batches(texts, CALIBRATION_BATCH_SIZE)
        )

    def get_next(self) -> dict | None:
        """The next batch's graph inputs, or `None` when the texts are used up."""
        return next(self._batches, None)


def quantize_graph_dynamic(
    graph: Path, output: Path, settings: QuantizationSettings, external_data: bool = False
) -> None:
    """Int8 weights of the ONNX graph file `graph`; activations quantized on the fly per batch.

    `external_data` writes the weights beside the graph (for graphs over 2 GB).
    """
    quantize_dynamic(
        graph,
        output,
        per_channel=settings.per_channel,
        weight_type=QuantType[settings.weight_type],
        use_external_data_format=external_data,
    )


def _quantize_dynamic(
    model: OnnxModel, output: Path, settings: QuantizationSettings, _: Sequence[str]
) -> None:
    """Int8 weights; activations quantized on the fly per batch (no calibration)."""
    quantize_graph_dynamic(model.model_path, output, settings, len(model.graph_files) > 1)


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
QUANTIZERS: dict[OnnxVariant, Quantizer] = {
    OnnxVariant.DYNAMIC_INT8: _quantize_dynamic,
    OnnxVariant.STATIC_INT8: _quantize_static,
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
    variant: OnnxVariant = OnnxVariant.DYNAMIC_INT8,
    calibration_texts: Sequence[str] = (),
) -> OnnxModel:
    """Quantize an fp32 ONNX model to int8 with ONNX Runtime.

    Args:
        model: The fp32 model (as exported: ONNX Runtime's quantizer does not read every op
            of the `fp32-optimized` graph).
        directory: A local directory (created if missing) that receives the int8 model's files.
        settings: Per-channel, weight type and static-quantization options.
        variant: `dynamic-int8` or `static-int8`.
        calibration_texts: Training texts (NER: word lists) for static quantization; the first
            `settings.calibration_samples` are used.

    Returns:
        The int8 model, with the fp32 model's tokenizer, labels, thresholds and windows.
    """
    if variant not in QUANTIZERS:
        raise ValueError(f"{variant} is not an int8 variant: {', '.join(QUANTIZERS)} are.")
    if variant is OnnxVariant.STATIC_INT8 and not calibration_texts:
        raise ValueError("Static quantization needs calibration texts.")
    directory.mkdir(parents=True, exist_ok=True)
    with _root_logger_level(logging.WARNING):  # ONNX Runtime logs a line per tensor at INFO
        QUANTIZERS[variant](model, directory / MODEL_FILENAME, settings, calibration_texts)
    return seal_variant(model, directory, variant)


def evaluate_onnx_model(model: OnnxModel, frame: pd.DataFrame, split: str) -> EvaluationReport:
    """The task's report of an ONNX model on a split, predicting through the inference layer."""
    predictions = OnnxPredictor(model).predict_batches(
        frame["text"].tolist(), EVALUATION_BATCH_SIZE
    )
    return training_plugin(model.task).report_predictions(
        f"onnx-{model.variant}", split, frame, model.label_names, predictions
    )


def variant_gate(
    metric: str,
    fp32_metric: float,
    model: OnnxModel,
    validation_metric: float,
    test_metrics: dict[str, float],
    settings: QuantizationSettings,
) -> VariantGate:
    """The verdict on a variant: deployable unless `metric` drops more than allowed.

    fp32 is the reference and always deployable; so is `fp32-optimized`, whose logits the
    export's parity check holds to fp32's.
    """
    drop = round(fp32_metric - validation_metric, 10)  # 0.96 - 0.955 is 0.005 for the gate
    comparison = (
        f"validation {metric} {validation_metric:.4f} vs fp32 {fp32_metric:.4f} (drop {drop:+.4f})"
    )
    if model.variant in (OnnxVariant.FP32, OnnxVariant.FP32_OPTIMIZED):
        deployable, reason = True, f"{comparison}; an fp32 graph"
    elif drop > settings.max_metric_drop:
        deployable = False
        reason = f"{comparison} exceeds max_metric_drop {settings.max_metric_drop:g}"
    else:
        deployable = True
        reason = f"{comparison} is within max_metric_drop {settings.max_metric_drop:g}"
    return VariantGate(
        variant=model.variant,
        validation_metric=validation_metric,
        metric_drop=drop,
        deployable=deployable,
        reason=reason,
        size_bytes=model.size_bytes,
        test_metrics=test_metrics,
    )


def gate_variants(
    fp32_model: OnnxModel,
    variants: Sequence[OnnxModel],
    validation_set: pd.DataFrame,
    test_set: pd.DataFrame,
    settings: QuantizationSettings,
) -> QuantizationReport:
    """Judge every variant against fp32 on validation by the task's metric; report on test."""
    metric = training_plugin(fp32_model.task).selection_metric
    fp32_metric = evaluate_onnx_model(fp32_model, validation_set, "validation").metrics[metric]
    gates = []
    for model in [fp32_model, *variants]:
        validation_metric = (
            fp32_metric
            if model is fp32_model
            else evaluate_onnx_model(model, validation_set, "validation").metrics[metric]
        )
        test_metrics = evaluate_onnx_model(model, test_set, "test").metrics
        gates.append(
            variant_gate(metric, fp32_metric, model, validation_metric, test_metrics, settings)
        )
    return QuantizationReport(
        metric=metric,
        max_metric_drop=settings.max_metric_drop,
        per_channel=settings.per_channel,
        weight_type=settings.weight_type,
        variants=gates,
    )
