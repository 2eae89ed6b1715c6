"""Promotion gates, decided on plain numbers."""

from stackport.core.settings import PromotionSettings
from stackport.release.promotion import PromotionEvidence, decide_promotion, evaluate_production
from tests.helpers import tiny_model

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


def test_without_a_minimum_only_the_baseline_and_production_gates_decide():
    decision = decide_promotion(evidence(0.5, baseline=0.45), PromotionSettings(metric="macro_f1"))
    assert decision.promoted
    assert decision.gates[0].detail == "macro_f1 0.5000, no minimum"


def test_a_production_model_that_does_not_know_the_test_labels_is_not_evaluated(
    tiny_bert_path, bbc_slice
):
    production = tiny_model(tiny_bert_path, ["business", "sports"])
    metrics, note = evaluate_production(production, bbc_slice)
    assert metrics is None
    assert note == (
        "it does not predict the labels entertainment, politics, tech of this test split"
    )
    known = bbc_slice[bbc_slice["label"].isin(["business", "sports"])].head(10)
    metrics, note = evaluate_production(production, known)
    assert note is None and set(metrics) == {"accuracy", "macro_f1"}


def test_a_clearly_better_model_replaces_production():
    decision = decide_promotion(evidence(0.96, production=0.94, version="2"), SETTINGS)
    assert decision.promoted
    assert [gate.passed for gate in decision.gates] == [True, True, True]
