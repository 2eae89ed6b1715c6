"""Promotion gates, decided on plain numbers."""

from stackport.release.promotion import PromotionEvidence, PromotionSettings, decide_promotion

SETTINGS = PromotionSettings(
    metric="macro_f1", min_metric=0.9, max_gap_to_baseline=0.01, min_delta=0.005
)


def evidence(candidate, baseline=0.95, production=None, version=None, note=None):
    return PromotionEvidence(
        candidate={"macro_f1": candidate},
        baseline={"macro_f1": baseline},
        production=None if production is None else {"macro_f1": production},
        production_version=version,
        production_note=note,
    )


def test_first_good_model_is_promoted():
    decision = decide_promotion(evidence(0.95), SETTINGS)
    assert decision.promoted
    assert decision.reason == "all gates passed"
    assert decision.gates[-1].detail == "no production version yet"


def test_each_gate_can_block_and_says_why():
    below_minimum = decide_promotion(evidence(0.85, baseline=0.85), SETTINGS)
    trails_baseline = decide_promotion(evidence(0.96, baseline=0.99), SETTINGS)
    no_better = decide_promotion(evidence(0.95, production=0.948, version="3"), SETTINGS)
    unreadable = decide_promotion(evidence(0.95, version="3", note="labels differ"), SETTINGS)

    assert not below_minimum.promoted
    assert below_minimum.reason == "minimum_metric: macro_f1 0.8500 vs minimum 0.9000"
    assert not trails_baseline.promoted
    assert "TF-IDF baseline 0.9900 (gap +0.0300, allowed 0.0100)" in trails_baseline.reason
    assert not no_better.promoted
    assert "production version 3 0.9480 (delta +0.0020, required +0.0050)" in no_better.reason
    assert not unreadable.promoted
    assert "could not be evaluated: labels differ" in unreadable.reason


def test_a_clearly_better_model_replaces_production():
    decision = decide_promotion(evidence(0.96, production=0.94, version="2"), SETTINGS)
    assert decision.promoted
    assert [gate.passed for gate in decision.gates] == [True, True, True]
