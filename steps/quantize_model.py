"""Quantize step: the int8 variants, and the accuracy gate that says which variants deploy."""

from typing import Annotated

import pandas as pd
from zenml import ArtifactConfig, log_metadata, step
from zenml.enums import ArtifactType
from zenml.logger import get_logger

from materializers.onnx_model import step_output_directory
from pipelines.step_cache import code_cache_policy
from stackport.core.names import Artifact
from stackport.core.settings import OnnxVariant, QuantizationSettings
from stackport.inference.onnx_model import OnnxModel
from stackport.onnx.quantization import QuantizationReport, gate_variants, quantize_onnx_model
from stackport.release.registration import VARIANT_ARTIFACTS

logger = get_logger(__name__)

INT8_VARIANTS = (OnnxVariant.DYNAMIC_INT8, OnnxVariant.STATIC_INT8)


@step(cache_policy=code_cache_policy(__name__))
def quantize_model(
    onnx_model: OnnxModel,
    onnx_model_optimized: OnnxModel,
    train_set: pd.DataFrame,
    validation_set: pd.DataFrame,
    test_set: pd.DataFrame,
    quantization: QuantizationSettings,
) -> tuple[
    Annotated[
        OnnxModel, ArtifactConfig(name=Artifact.ONNX_MODEL_INT8, artifact_type=ArtifactType.MODEL)
    ],
    Annotated[
        OnnxModel,
        ArtifactConfig(name=Artifact.ONNX_MODEL_STATIC_INT8, artifact_type=ArtifactType.MODEL),
    ],
    Annotated[QuantizationReport, Artifact.QUANTIZATION_REPORT],
]:
    """Quantize to dynamic and static int8; gate every variant against fp32 on validation.

    Args:
        onnx_model: The fp32 ONNX model (quantized; the reference of the gate).
        onnx_model_optimized: Its `fp32-optimized` variant (gated and reported with the rest).
        train_set: Training rows; their texts (NER: word lists) calibrate static quantization.
        validation_set: Validation rows: the gate compares every variant with fp32 on them, by
            the task's metric (macro_f1; entity_f1 for ner).
        test_set: Test rows: every variant's test metrics are reported, never used to decide.
        quantization: Weight options and `max_metric_drop`.

    Returns:
        The dynamic and static int8 variants, and the report saying which variants deploy.
    """
    calibration = train_set["text"].tolist()
    int8 = {
        variant: quantize_onnx_model(
            onnx_model,
            step_output_directory(VARIANT_ARTIFACTS[variant]),
            quantization,
            variant,
            calibration,
        )
        for variant in INT8_VARIANTS
    }
    report = gate_variants(
        onnx_model, [onnx_model_optimized, *int8.values()], validation_set, test_set, quantization
    )
    logger.info("ONNX variants: %s.", report.summary)
    for variant in INT8_VARIANTS:
        gate = report.gate(variant)
        log_metadata(
            {"deployable": gate.deployable, "gate": gate.reason},
            artifact_name=VARIANT_ARTIFACTS[variant],
            infer_artifact=True,
        )
    return int8[OnnxVariant.DYNAMIC_INT8], int8[OnnxVariant.STATIC_INT8], report
