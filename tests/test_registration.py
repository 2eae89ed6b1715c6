"""What a model version serves, as its metadata records it: the key registration looks up."""

from stackport.release.registration import served_forms


def onnx_metadata(deployable: list[str]) -> dict:
    variants = {"fp32": "a1", "fp32-optimized": "b2", "dynamic-int8": "c3", "static-int8": "d4"}
    return {
        "onnx": {
            "deployable": deployable,
            "variants": {
                name: {"sha256": sha, "deployable": name in deployable}
                for name, sha in variants.items()
            },
        }
    }


def test_a_version_serves_its_deployable_variants_each_by_its_graphs_sha256():
    assert served_forms(onnx_metadata(["fp32", "dynamic-int8"])) == {
        "fp32": "a1",
        "dynamic-int8": "c3",
    }


def test_another_verdict_of_the_gate_is_another_thing_served():
    assert served_forms(onnx_metadata(["fp32"])) != served_forms(
        onnx_metadata(["fp32", "static-int8"])
    )


def test_a_version_without_onnx_metadata_serves_nothing():
    assert served_forms({"test_metrics": {"macro_f1": 0.8}}) == {}
