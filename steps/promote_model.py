"""Promote step: move the new model version to production when every gate passes."""

from typing import Annotated

import pandas as pd
from zenml import get_step_context, log_metadata, step
from zenml.client import Client
from zenml.logger import get_logger

from textmodels.evaluation import EvaluationReport
from textmodels.modeling import FineTunedModel
from textmodels.promotion import (
    PromotionDecision,
    PromotionEvidence,
    PromotionSettings,
    decide_promotion,
)
from textmodels.settings import ModelSettings
from textmodels.task_registry import task_spec
from textmodels.tokenization import tokenize_split

logger = get_logger(__name__)


@step(enable_cache=False)
def promote_model(
    model: FineTunedModel,
    model_evaluation: EvaluationReport,
    baseline_evaluation: EvaluationReport,
    test_set: pd.DataFrame,
    model_settings: ModelSettings,
    promotion: PromotionSettings,
) -> Annotated[PromotionDecision, "promotion_decision"]:
    """Compare with the baseline and the production version on this run's test split.

    The production version's model is loaded and evaluated on the same test rows, tokenized as
    it was trained (its `text_windows`), so the comparison is fair even when its own run split
    or tokenized the data differently. The decision and each
    gate's verdict are recorded in the new version's metadata.

    Args:
        model: The new model (its task names the metric when `promotion.metric` is unset).
        model_evaluation: The new model's test metrics.
        baseline_evaluation: The TF-IDF baseline's test metrics.
        test_set: The test rows, to evaluate production on.
        model_settings: The windows to re-tokenize with for a production model that does
            not record its own (`FineTunedModel.text_windows`).
        promotion: The gates' thresholds.

    Returns:
        The decision.
    """
    settings = promotion.model_copy(
        update={"metric": promotion.metric or task_spec(model.task).selection_metric}
    )
    candidate = get_step_context().model
    production_version, production_metrics, note = None, None, None
    try:
        production = Client().get_model_version(candidate.name, settings.stage)
    except KeyError:
        production = None
    if production is not None:
        production_version = production.name
        try:
            production_model: FineTunedModel = production.get_model_artifact("model").load()
            max_length, max_windows = production_model.text_windows or (
                model_settings.max_length,
                model_settings.max_windows,
            )
            table = tokenize_split(
                test_set,
                production_model.tokenizer,
                production_model.label_names,
                max_length,
                production_model.task,
                max_windows,
            )
            production_metrics = production_model.evaluate(table, "test").metrics
        except Exception as error:  # noqa: BLE001 - recorded as the gate's reason
            note = f"{type(error).__name__}: {error}"

    decision = decide_promotion(
        PromotionEvidence(
            candidate=model_evaluation.metrics,
            baseline=baseline_evaluation.metrics,
            production=production_metrics,
            production_version=production_version,
            production_note=note,
        ),
        settings,
    )
    if decision.promoted:
        candidate.set_stage(settings.stage, force=True)
        logger.info("Promoted %s %s to %s.", candidate.name, candidate.version, settings.stage)
    else:
        logger.warning("Not promoted: %s", decision.reason)
    log_metadata(
        {"promotion": {**decision.model_dump(mode="json"), "reason": decision.reason}},
        infer_model=True,
    )
    return decision
