"""Train step: fine-tune the base model."""

import tempfile
from pathlib import Path
from typing import Annotated

import mlflow
from zenml import ArtifactConfig, step
from zenml.enums import ArtifactType

from stackport.core.names import Artifact
from stackport.core.settings import ModelSettings, TrainingSettings
from stackport.data.tokenization import TokenizedDataset
from stackport.training.model import FineTunedModel, resolve_base_model
from stackport.training.trainer import fine_tune


@step(experiment_tracker=True)
def train_model(
    tokenized_dataset: TokenizedDataset,
    model: ModelSettings,
    training: TrainingSettings,
) -> Annotated[FineTunedModel, ArtifactConfig(name=Artifact.MODEL, artifact_type=ArtifactType.MODEL)]:
    """Fine-tune the base model, early-stopping on the task's validation selection metric.

    Parameters, per-epoch metrics and the model files go to the stack's experiment tracker
    when it has one.

    Args:
        tokenized_dataset: Tokenized train and validation splits.
        model: The base model.
        training: Hyper-parameters.

    Returns:
        The best checkpoint's model with its tokenizer.
    """
    tracking = mlflow.active_run() is not None
    with tempfile.TemporaryDirectory(prefix="stackport-train-") as workdir:
        fine_tuned = fine_tune(
            tokenized_dataset,
            resolve_base_model(model.base_model),
            training,
            output_dir=Path(workdir) / "checkpoints",
            report_to=["mlflow"] if tracking else [],
        )
        if tracking:
            model_dir = Path(workdir) / "model"
            fine_tuned.save(model_dir)
            mlflow.log_artifacts(str(model_dir), artifact_path="model")
    return fine_tuned
