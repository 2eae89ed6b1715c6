"""Which ONNX variant a deployment serves, decided before anything is built."""

import pytest

from pipelines.deployment import (
    DeployableModel,
    DeploymentFailedError,
    check_pinned_runtime,
    endpoint_variant,
)


def deployable(*variants: str) -> DeployableModel:
    return DeployableModel(
        name="reviews",
        version="3",
        artifact_ids={variant: f"id-{variant}" for variant in variants},
        deployable={variant: {"macro_f1": 0.8} for variant in variants},
    )


def test_an_endpoint_serves_the_first_deployable_variant_of_its_preference_under_auto():
    assert endpoint_variant(deployable("fp32", "static-int8"), "auto") == "static-int8"
    assert endpoint_variant(deployable("fp32", "fp32-optimized"), "auto") == "fp32-optimized"


def test_an_endpoint_serves_the_pinned_variant():
    model = deployable("fp32", "dynamic-int8", "static-int8")
    check_pinned_runtime(model, "fp32")
    assert endpoint_variant(model, "fp32") == "fp32"


def test_a_pin_the_accuracy_gate_refused_is_named_with_the_variants_it_let_through():
    with pytest.raises(DeploymentFailedError) as refused:
        check_pinned_runtime(deployable("fp32", "dynamic-int8"), "static-int8")
    assert str(refused.value) == (
        "service.runtime pins static-int8, which version 3 of model 'reviews' cannot serve: "
        "the accuracy gate let through fp32, dynamic-int8. Pin one of them, or set "
        "service.runtime: auto."
    )


def test_auto_passes_the_pin_check():
    check_pinned_runtime(deployable("fp32"), "auto")
