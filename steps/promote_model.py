"""Promote step: move the new model version to production when every gate passes."""

from typing import Annotated

import pandas as pd
from zenml import log_metadata, step
from zenml.client import Client
from zenml.logger import get_logger

from pipelines.model_registry import RegisteredVersion
from stackport.core.names import Artifact
from stackport.core.settings import PromotionSettings
from stackport.evaluation.report import EvaluationReport
from stackport.release.promotion import (
    PromotionDecision,
    PromotionEvidence,
    already_in_stage,
    decide_promotion,
    evaluate_production,
)
from stackport.tasks import training_plugin
from stackport.training.model import FineTunedModel

logger = get_logger(__name__)


@step(enable_cache=False)
def promote_model(
    model: FineTunedModel,
    model_evaluation: EvaluationReport,
    baseline_evaluation: EvaluationReport,
    test_set: pd.DataFrame,
    registered: RegisteredVersion,
    promotion: PromotionSettings,
) -> Annotated[PromotionDecision, Artifact.PROMOTION_DECISION]:
    """Compare with the baseline and the production version on this run's test split.

    The decision and each gate's verdict are recorded in the version's metadata. A version
    that is in the stage already (an unchanged re-run) stays there and is not judged again.

    Args:
        model: The new model (its task names the metric when `promotion.metric` is unset).
        model_evaluation: The new model's test metrics.
        baseline_evaluation: The TF-IDF baseline's test metrics.
        test_set: The test rows, to evaluate production on (`evaluate_production`).
        registered: The version the model is registered as.
        promotion: The gates' thresholds.

    Returns:
        The decision.
    """
    settings = promotion.model_copy(
        update={"metric": promotion.metric or training_plugin(model.task).selection_metric}
    )
    client = Client()
    evidence = PromotionEvidence(
        candidate=model_evaluation.metrics, baseline=baseline_evaluation.metrics
    )
    try:
        production = client.get_model_version(registered.name, settings.stage)
    except KeyError:
        production = None
    if production is not None and str(production.id) == registered.id:
        decision = already_in_stage(evidence, settings, production.name)
        logger.info("%s %s is in %s already.", registered.name, registered.version, settings.stage)
        return decision
    if production is not None:
        production_model = production.get_model_artifact(Artifact.MODEL).load()
        metrics, note = evaluate_production(production_model, test_set)
        evidence = evidence.model_copy(
            update={
                "production": metrics,
                "production_version": production.name,
                "production_note": note,
            }
        )
    decision = decide_promotion(evidence, settings)
    if decision.promoted:
        client.update_model_version(
            registered.name, registered.version, stage=settings.stage, force=True
        )
        logger.info("Promoted %s %s to %s.", registered.name, registered.version, settings.stage)
    else:
        logger.warning("Not promoted: %s", decision.reason)
    log_metadata(
        {"promotion": {**decision.model_dump(mode="json"), "reason": decision.reason}},
        model_name=registered.name,
        model_version=registered.version,
    )
    return decision
