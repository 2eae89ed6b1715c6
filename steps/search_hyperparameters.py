"""HPO step: an Optuna study over the configured search space."""

import tempfile
from pathlib import Path
from typing import Annotated

from zenml import log_metadata, step
from zenml.logger import get_logger

from textmodels.hpo import HpoSettings, StudyReport, run_study
from textmodels.modeling import resolve_base_model
from textmodels.settings import ModelSettings
from textmodels.tokenization import TokenizedDataset
from textmodels.training import TrainingSettings

logger = get_logger(__name__)


# The study lives in its own storage and is resumed on purpose: a cached result would skip it.
@step(experiment_tracker=True, enable_cache=False)
def search_hyperparameters(
    tokenized_dataset: TokenizedDataset,
    model: ModelSettings,
    training: TrainingSettings,
    hpo: HpoSettings,
) -> Annotated[StudyReport, "hpo_study"]:
    """Run or resume the study; each trial is an MLflow child run of this step's run.

    Args:
        tokenized_dataset: Tokenized train and validation splits.
        model: The base model.
        training: The settings each trial starts from.
        hpo: Budget, pruner, storage and search space.

    Returns:
        Every trial of the study and the best one.
    """
    with tempfile.TemporaryDirectory(prefix="stackport-hpo-") as workdir:
        report = run_study(
            tokenized_dataset,
            resolve_base_model(model.base_model),
            training,
            hpo,
            Path(workdir),
        )
    logger.info("Study %s: %s; best %s.", report.study_name, report.counts(), report.best_params)
    log_metadata({"trials": report.counts(), "best_value": report.best_value or 0.0})
    return report
