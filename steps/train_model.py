"""Train step: fine-tune the base model, resuming from a killed run's last checkpoint."""

import tempfile
from typing import Annotated

import mlflow
from zenml import ArtifactConfig, step
from zenml.enums import ArtifactType
from zenml.logger import get_logger

from pipelines.checkpoints import StoreCheckpoints, checkpoint_location
from pipelines.step_cache import code_cache_policy
from stackport.core.names import Artifact
from stackport.core.settings import ModelSettings, TrainingSettings
from stackport.data.tokenization import TokenizedDataset
from stackport.training.model import FineTunedModel, model_fingerprint, resolve_base_model
from stackport.training.trainer import fine_tune, last_checkpoint

logger = get_logger(__name__)


@step(experiment_tracker=True, cache_policy=code_cache_policy(__name__))
def train_model(
    tokenized_dataset: TokenizedDataset,
    model: ModelSettings,
    training: TrainingSettings,
) -> Annotated[
    FineTunedModel, ArtifactConfig(name=Artifact.MODEL, artifact_type=ArtifactType.MODEL)
]:
    """Fine-tune the base model, early-stopping on the task's validation selection metric.

    Checkpoints (every epoch's end, every `training.checkpoint_steps` steps) are kept in the
    artifact store (`pipelines.checkpoints`): a run killed here resumes from the last one when
    started again with the same inputs. Parameters,
    per-epoch metrics and the model files go to the stack's experiment tracker when it has one.

    Args:
        tokenized_dataset: Tokenized train and validation splits.
        model: The base model.
        training: Hyper-parameters.

    Returns:
        The best checkpoint's model with its tokenizer.
    """
    base_model = resolve_base_model(model.base_model)
    location = checkpoint_location(tokenized_dataset, model_fingerprint(base_model), training)
    location.restore()
    resume_from = last_checkpoint(location.local)
    if resume_from is not None:
        logger.info("Resuming training from %s, left by an earlier run.", resume_from.name)
    tracking = mlflow.active_run() is not None
    fine_tuned = fine_tune(
        tokenized_dataset,
        base_model,
        training,
        output_dir=location.local,
        report_to=["mlflow"] if tracking else [],
        callbacks=[StoreCheckpoints(location)],
        resume_from=resume_from,
    )
    if tracking:
        with tempfile.TemporaryDirectory(prefix="stackport-model-") as model_dir:
            fine_tuned.save(model_dir)
            mlflow.log_artifacts(model_dir, artifact_path="model")
    fine_tuned.checkpoints = location.locations()
    return fine_tuned
