"""Select step: the training settings of the study's best trial."""

from typing import Annotated

from zenml import step
from zenml.logger import get_logger

from stackport.core.names import Artifact
from stackport.core.settings import TrainingSettings
from stackport.training.hpo import StudyReport, apply_best_params

logger = get_logger(__name__)


@step
def select_hyperparameters(
    hpo_study: StudyReport, training: TrainingSettings
) -> Annotated[TrainingSettings, Artifact.SELECTED_TRAINING]:
    """Apply the best trial's parameters to the configured training settings.

    Args:
        hpo_study: The study's trials.
        training: The configured settings; kept as they are when no trial completed.

    Returns:
        The settings the final model trains with.
    """
    selected = apply_best_params(hpo_study, training)
    if hpo_study.best_params is None:
        logger.info("No completed trial: training with the configured settings.")
    else:
        logger.info("Training with the best trial's settings: %s", hpo_study.best_params)
    return selected
