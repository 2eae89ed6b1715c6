"""Convert step: export the fine-tuned model to ONNX, optimize it, check both against PyTorch."""

from typing import Annotated

import pandas as pd
from zenml import ArtifactConfig, log_metadata, step
from zenml.enums import ArtifactType
from zenml.logger import get_logger

from materializers.onnx_model import step_output_directory
from pipelines.step_cache import code_cache_policy
from stackport.core.names import Artifact
from stackport.core.settings import ExportSettings
from stackport.data.tokenization import TokenizedDataset
from stackport.inference.onnx_model import OnnxModel
from stackport.onnx.export import check_parity, export_to_onnx, optimize_onnx_model, parity_texts
from stackport.training.model import FineTunedModel

logger = get_logger(__name__)


@step(cache_policy=code_cache_policy(__name__))
def convert_model(
    model: FineTunedModel,
    tokenized_dataset: TokenizedDataset,
    validation_set: pd.DataFrame,
    export: ExportSettings,
) -> tuple[
    Annotated[
        OnnxModel, ArtifactConfig(name=Artifact.ONNX_MODEL, artifact_type=ArtifactType.MODEL)
    ],
    Annotated[
        OnnxModel,
        ArtifactConfig(name=Artifact.ONNX_MODEL_OPTIMIZED, artifact_type=ArtifactType.MODEL),
    ],
]:
    """Export to ONNX (fp32) with Optimum, and the `fp32-optimized` variant with ORTOptimizer.

    Both graphs' logits are compared with PyTorch's on validation texts.

    Args:
        model: The fine-tuned model (any task: sequence or token classification).
        tokenized_dataset: Gives the `max_length` and `max_windows` the model was trained with.
        validation_set: Validation rows; `export.parity_samples` of their texts are compared.
        export: Opset, optimization level and parity tolerance.

    Returns:
        The fp32 ONNX model and its optimized variant.

    Raises:
        OnnxParityError: A graph's largest logit difference exceeds `export.parity_tolerance`.
    """
    fp32 = export_to_onnx(
        model,
        step_output_directory(Artifact.ONNX_MODEL),
        tokenized_dataset.max_length,
        export.opset,
        tokenized_dataset.max_windows,
    )
    optimized = optimize_onnx_model(
        fp32,
        model.model.config,
        step_output_directory(Artifact.ONNX_MODEL_OPTIMIZED),
        export.optimization_level,
    )
    texts = parity_texts(validation_set, export.parity_samples)
    for onnx_model, artifact in (
        (fp32, Artifact.ONNX_MODEL),
        (optimized, Artifact.ONNX_MODEL_OPTIMIZED),
    ):
        difference = check_parity(model, onnx_model, texts, export.parity_tolerance)
        logger.info(
            "ONNX %s (opset %d) matches PyTorch: max |logit difference| %.3g on %d texts.",
            onnx_model.variant,
            onnx_model.opset,
            difference,
            len(texts),
        )
        log_metadata(
            {"parity_max_logit_difference": difference, "parity_texts": len(texts)},
            artifact_name=artifact,
            infer_artifact=True,
        )
    return fp32, optimized
