"""Promotion gates: when a new model version may replace the one in production."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from pydantic import BaseModel, Field

from stackport.core.settings import PromotionSettings
from stackport.data.tokenization import tokenize_split
from stackport.tasks import training_plugin
from stackport.training.model import FineTunedModel


class PromotionEvidence(BaseModel):
    """Test metrics of the candidate, the baseline and production, all on the same split."""

    candidate: dict[str, float]
    baseline: dict[str, float]
    production: dict[str, float] | None = None
    production_version: str | None = None
    production_note: str | None = Field(
        None, description="Why production could not be evaluated, when it exists but could not."
    )


class GateResult(BaseModel):
    """One gate's verdict and why."""

    gate: str
    passed: bool
    detail: str


class PromotionDecision(BaseModel):
    """Whether the candidate was promoted, with each gate's verdict."""

    promoted: bool
    stage: str
    metric: str
    evidence: PromotionEvidence
    gates: list[GateResult]

    @property
    def reason(self) -> str:
        """The failed gates' details, or that all passed (or why none was run)."""
        failed = [f"{g.gate}: {g.detail}" for g in self.gates if not g.passed]
        if failed:
            return "; ".join(failed)
        if [gate.gate for gate in self.gates] == ["already_in_stage"]:
            return self.gates[0].detail
        return "all gates passed"


Gate = Callable[[PromotionEvidence, PromotionSettings], GateResult]


def minimum_metric_gate(evidence: PromotionEvidence, settings: PromotionSettings) -> GateResult:
    """The candidate reaches the configured minimum, when one is set."""
    value = evidence.candidate[settings.metric]
    if settings.min_metric is None:
        return GateResult(
            gate="minimum_metric", passed=True, detail=f"{settings.metric} {value:.4f}, no minimum"
        )
    return GateResult(
        gate="minimum_metric",
        passed=value >= settings.min_metric,
        detail=f"{settings.metric} {value:.4f} vs minimum {settings.min_metric:.4f}",
    )


def baseline_gap_gate(evidence: PromotionEvidence, settings: PromotionSettings) -> GateResult:
    """The candidate trails the TF-IDF baseline by no more than the allowed gap."""
    value = evidence.candidate[settings.metric]
    baseline = evidence.baseline[settings.metric]
    return GateResult(
        gate="baseline_gap",
        passed=baseline - value <= settings.max_gap_to_baseline,
        detail=(
            f"{settings.metric} {value:.4f} vs TF-IDF baseline {baseline:.4f} "
            f"(gap {baseline - value:+.4f}, allowed {settings.max_gap_to_baseline:.4f})"
        ),
    )


def beats_production_gate(evidence: PromotionEvidence, settings: PromotionSettings) -> GateResult:
    """The candidate beats production by `min_delta`, or there is no production version."""
    if evidence.production_version is None:
        return GateResult(gate="beats_production", passed=True, detail="no production version yet")
    if evidence.production is None:
        return GateResult(
            gate="beats_production",
            passed=False,
            detail=f"production version {evidence.production_version} could not be evaluated: "
            f"{evidence.production_note}",
        )
    value = evidence.candidate[settings.metric]
    production = evidence.production[settings.metric]
    delta = value - production
    return GateResult(
        gate="beats_production",
        passed=delta >= settings.min_delta,
        detail=(
            f"{settings.metric} {value:.4f} vs production version {evidence.production_version} "
            f"{production:.4f} (delta {delta:+.4f}, required {settings.min_delta:+.4f})"
        ),
    )


GATES: tuple[Gate, ...] = (minimum_metric_gate, baseline_gap_gate, beats_production_gate)


def already_in_stage(
    evidence: PromotionEvidence, settings: PromotionSettings, version: str
) -> PromotionDecision:
    """The decision about a version that is in the stage already: it stays, unjudged."""
    return PromotionDecision(
        promoted=True,
        stage=settings.stage,
        metric=settings.metric,
        evidence=evidence.model_copy(update={"production_version": version}),
        gates=[
            GateResult(
                gate="already_in_stage",
                passed=True,
                detail=f"version {version} is in {settings.stage} already",
            )
        ],
    )


def evaluate_production(
    production: FineTunedModel, test_set: pd.DataFrame
) -> tuple[dict[str, float] | None, str | None]:
    """The production model's test metrics on this run's test rows, or why there are none.

    The rows are tokenized as the production model's texts were in its training
    (`FineTunedModel.text_windows`), so the comparison is fair even when its own run split or
    tokenized the data differently. A production model that does not know every label of the
    test rows cannot be evaluated on them.

    Returns:
        The metrics and None, or None and the reason.
    """
    plugin = training_plugin(production.task)
    unknown = sorted(set(plugin.label_names([test_set["label"]])) - set(production.label_names))
    if unknown:
        return None, f"it does not predict the labels {', '.join(unknown)} of this test split"
    max_length, max_windows = production.text_windows
    table = tokenize_split(
        test_set, production.tokenizer, production.label_names, max_length, plugin, max_windows
    )
    return production.evaluate(table, "test").metrics, None


def decide_promotion(
    evidence: PromotionEvidence, settings: PromotionSettings, gates: tuple[Gate, ...] = GATES
) -> PromotionDecision:
    """Run every gate; promote only if all pass."""
    results = [gate(evidence, settings) for gate in gates]
    return PromotionDecision(
        promoted=all(result.passed for result in results),
        stage=settings.stage,
        metric=settings.metric,
        evidence=evidence,
        gates=results,
    )
