"""Select step: the training settings of the trial the selection rule chooses."""

from typing import Annotated

from zenml import log_metadata, step
from zenml.logger import get_logger

from pipelines.step_cache import code_cache_policy
from stackport.core.names import Artifact
from stackport.core.settings import HpoSettings, TrainingSettings
from stackport.training.hpo import StudyReport, apply_choice, choose_trial

logger = get_logger(__name__)


@step(cache_policy=code_cache_policy(__name__))
def select_hyperparameters(
    hpo_study: StudyReport, training: TrainingSettings, hpo: HpoSettings
) -> Annotated[TrainingSettings, Artifact.SELECTED_TRAINING]:
    """Apply the parameters of the trial `hpo.selection` chooses to the configured settings.

    What was chosen and why is logged and recorded in the step's metadata (`selection`).

    Args:
        hpo_study: The study's trials (and the latency of each searched depth).
        training: The configured settings; kept as they are when no trial completed.
        hpo: The selection rule (`best`, `fastest_within`) and its epsilon.

    Returns:
        The settings the final model trains with.
    """
    choice = choose_trial(hpo_study, hpo.selection, hpo.selection_epsilon)
    if choice is None:
        reason = "no completed trial: training with the configured settings"
        log_metadata({"selection": reason})
    else:
        reason = f"{hpo.selection}: {choice.reason}"
        log_metadata(
            {
                "selection": reason,
                "selected_trial": choice.trial,
                "selected_params": choice.params,
                "selected_value": choice.value,
            }
        )
    logger.info("Selection: %s.", reason)
    return apply_choice(choice, training)
