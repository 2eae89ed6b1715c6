"""Promotion gates: when a new model version may replace the one in production."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, Field


class PromotionSettings(BaseModel):
    """Thresholds every gate checks; all gates must pass for a promotion."""

    metric: str | None = Field(
        None, description="Test metric the gates compare; null: the task's selection metric."
    )
    min_metric: float = Field(0.9, description="The new model's metric must reach this.")
    max_gap_to_baseline: float = Field(
        0.01, description="It may trail the TF-IDF baseline by at most this much."
    )
    min_delta: float = Field(0.0, description="It must beat production by at least this much.")
    stage: str = Field("production", description="The stage a promoted version moves to.")


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
        """The failed gates' details, or that all passed."""
        failed = [f"{g.gate}: {g.detail}" for g in self.gates if not g.passed]
        return "; ".join(failed) if failed else "all gates passed"


Gate = Callable[[PromotionEvidence, PromotionSettings], GateResult]


def minimum_metric_gate(evidence: PromotionEvidence, settings: PromotionSettings) -> GateResult:
    """The candidate reaches the configured minimum."""
    value = evidence.candidate[settings.metric]
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
