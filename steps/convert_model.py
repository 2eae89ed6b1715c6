"""Convert step: export the fine-tuned model to ONNX and check it against PyTorch."""

from typing import Annotated

import pandas as pd
from zenml import ArtifactConfig, log_metadata, step
from zenml.enums import ArtifactType
from zenml.logger import get_logger

from materializers.onnx_model import step_output_directory
from stackport.core.names import Artifact
from stackport.core.settings import ExportSettings
from stackport.data.tokenization import TokenizedDataset
from stackport.inference.onnx_model import OnnxModel
from stackport.onnx.export import check_parity, export_to_onnx, parity_texts
from stackport.training.model import FineTunedModel

logger = get_logger(__name__)

OUTPUT = Artifact.ONNX_MODEL


@step
def convert_model(
    model: FineTunedModel,
    tokenized_dataset: TokenizedDataset,
    validation_set: pd.DataFrame,
    export: ExportSettings,
) -> Annotated[OnnxModel, ArtifactConfig(name=OUTPUT, artifact_type=ArtifactType.MODEL)]:
    """Export the model to ONNX (fp32) with Optimum for its task; compare logits with PyTorch's.

    Args:
        model: The fine-tuned model (any task: sequence or token classification).
        tokenized_dataset: Gives the `max_length` and `max_windows` the model was trained with.
        validation_set: Validation rows; `export.parity_samples` of their texts are compared.
        export: Opset and parity tolerance.

    Returns:
        The fp32 ONNX model.

    Raises:
        OnnxParityError: The largest logit difference exceeds `export.parity_tolerance`.
    """
    onnx_model = export_to_onnx(
        model,
        step_output_directory(OUTPUT),
        tokenized_dataset.max_length,
        export.opset,
        tokenized_dataset.max_windows,
    )
    texts = parity_texts(validation_set, export.parity_samples)
    difference = check_parity(model, onnx_model, texts, export.parity_tolerance)
    logger.info(
        "ONNX opset %d export matches PyTorch: max |logit difference| %.3g on %d texts.",
        onnx_model.opset,
        difference,
        len(texts),
    )
    log_metadata(
        {"parity_max_logit_difference": difference, "parity_texts": len(texts)},
        artifact_name=OUTPUT,
        infer_artifact=True,
    )
    return onnx_model
