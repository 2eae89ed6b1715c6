"""HPO step: an Optuna study over the configured search space."""

import tempfile
from pathlib import Path
from typing import Annotated

from zenml import log_metadata, step
from zenml.logger import get_logger

from pipelines.step_cache import code_cache_policy
from stackport.core.names import Artifact
from stackport.core.settings import HpoSettings, ModelSettings, TrainingSettings
from stackport.data.tokenization import TokenizedDataset
from stackport.onnx.benchmark import depth_latencies
from stackport.training.hpo import StudyReport, run_study, study_name
from stackport.training.model import model_fingerprint, resolve_base_model

logger = get_logger(__name__)


@step(experiment_tracker=True, cache_policy=code_cache_policy(__name__))
def search_hyperparameters(
    tokenized_dataset: TokenizedDataset,
    model: ModelSettings,
    training: TrainingSettings,
    hpo: HpoSettings,
    study_prefix: str,
) -> Annotated[StudyReport, Artifact.HPO_STUDY]:
    """Run the study until it holds `hpo.n_trials` trials; each trial is an MLflow child run.

    When the depth is searched (`hpo.search_space.num_layers`), each depth's latency is
    measured first, on its fp32 ONNX export, and recorded in the report.

    Args:
        tokenized_dataset: Tokenized train and validation splits.
        model: The base model.
        training: The settings each trial starts from.
        hpo: Budget, pruner, storage and search space.
        study_prefix: The study's name before its fingerprint (`hpo.study_name`, else the
            model's name).

    Returns:
        Every trial of the study and the best one.
    """
    base_model = resolve_base_model(model.base_model)
    name = study_name(study_prefix, tokenized_dataset, model_fingerprint(base_model), training, hpo)
    depths = hpo.search_space.num_layers or []
    with tempfile.TemporaryDirectory(prefix="stackport-hpo-") as workdir:
        latencies = depth_latencies(base_model, tokenized_dataset, depths, Path(workdir))
        report = run_study(
            tokenized_dataset, base_model, training, hpo, name, Path(workdir), latencies
        )
    logger.info("Study %s: %s; best %s.", report.study_name, report.counts(), report.best_params)
    if latencies:
        logger.info("Batch-1 latency (ms) by number of layers: %s", latencies)
    log_metadata(
        {
            "trials": report.counts(),
            "best_value": report.best_value or 0.0,
            "latency_ms_by_num_layers": {str(k): v for k, v in latencies.items()},
        }
    )
    return report
