"""Quantize step: int8 ONNX model, and the accuracy gate that picks the deployable model."""

from typing import Annotated

import pandas as pd
from zenml import ArtifactConfig, log_metadata, step
from zenml.enums import ArtifactType
from zenml.logger import get_logger

from materializers.onnx_model import step_output_directory
from stackport.core.names import Artifact
from stackport.core.settings import QuantizationSettings
from stackport.inference.onnx_model import OnnxModel
from stackport.onnx.quantization import (
    QuantizationReport,
    gate_quantized_model,
    quantize_onnx_model,
)

logger = get_logger(__name__)

OUTPUT = Artifact.ONNX_MODEL_INT8


@step
def quantize_model(
    onnx_model: OnnxModel,
    train_set: pd.DataFrame,
    validation_set: pd.DataFrame,
    test_set: pd.DataFrame,
    quantization: QuantizationSettings,
) -> tuple[
    Annotated[OnnxModel, ArtifactConfig(name=OUTPUT, artifact_type=ArtifactType.MODEL)],
    Annotated[QuantizationReport, Artifact.QUANTIZATION_REPORT],
]:
    """Quantize to int8 and keep the fp32 model deployable if the task's metric drops too much.

    Args:
        onnx_model: The fp32 ONNX model.
        train_set: Training rows; their texts (NER: word lists) calibrate static quantization.
        validation_set: Validation rows: the gate compares both models on them, by the task's
            metric (macro_f1; entity_f1 for ner), predicting through the inference layer.
        test_set: Test rows: both models' test metrics are reported, never used to decide.
        quantization: Mode, weight options and `max_metric_drop`.

    Returns:
        The int8 model, and the report saying which model is deployable and why.
    """
    int8_model = quantize_onnx_model(
        onnx_model, step_output_directory(OUTPUT), quantization, train_set["text"].tolist()
    )
    report = gate_quantized_model(onnx_model, int8_model, validation_set, test_set, quantization)
    log = logger.info if report.deployable == "int8" else logger.warning
    log("Deployable ONNX model: %s; %s.", report.deployable, report.reason)
    log_metadata(
        {"deployable": report.deployable == "int8", "gate": report.reason},
        artifact_name=OUTPUT,
        infer_artifact=True,
    )
    return int8_model, report
