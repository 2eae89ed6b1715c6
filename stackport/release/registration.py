"""What a model version records in the Model Control Plane, and how deployment reads it back.

`register_model` logs `version_metadata` on the version and links the run's artifacts to it;
the deployment reads the deployable ONNX variants' artifact names and their own test metrics
back with `deployable_variants`. Writing and reading the layout in one module keeps them in step.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from pydantic import BaseModel

from stackport.core.names import Artifact
from stackport.core.settings import DataSettings, ModelSettings, OnnxVariant
from stackport.data.bundled import BUNDLED, bundled_name
from stackport.evaluation.report import EvaluationReport
from stackport.inference.onnx_model import MODEL_FILENAME, OnnxModel
from stackport.onnx.benchmark import BenchmarkReport
from stackport.onnx.quantization import QuantizationReport
from stackport.training.model import FineTunedModel

# The model version's metadata key that records its ONNX variants and which are deployable.
ONNX_KEY = "onnx"
VARIANT_ARTIFACTS = {
    OnnxVariant.FP32: Artifact.ONNX_MODEL,
    OnnxVariant.FP32_OPTIMIZED: Artifact.ONNX_MODEL_OPTIMIZED,
    OnnxVariant.DYNAMIC_INT8: Artifact.ONNX_MODEL_INT8,
    OnnxVariant.STATIC_INT8: Artifact.ONNX_MODEL_STATIC_INT8,
}


DEFAULT_TAGS = ["stackport"]


class ModelIdentity(BaseModel):
    """The Model Control Plane model a training run registers a version of."""

    name: str
    description: str
    tags: list[str]


def model_identity(data: DataSettings, model: ModelSettings) -> ModelIdentity:
    """The model's name, description and tags: as configured, else from the data set.

    A bundled data set names its model (`bundled:rotten-tomatoes` trains
    `rotten-tomatoes-sentiment`); a file or folder gives `<its stem>-<task>`.
    """
    name = bundled_name(data.source)
    dataset = BUNDLED.get(name) if name is not None else None
    if dataset is not None:
        default = ModelIdentity(
            name=dataset.model_name,
            description=dataset.model_description,
            tags=[*DEFAULT_TAGS, name],
        )
    else:
        source = name or data.source
        stem = posixpath.splitext(posixpath.basename(source.rstrip("/")))[0] or "data"
        slug = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-") or "data"
        default = ModelIdentity(
            name=f"{slug}-{data.task}",
            description=f"A {data.task} model fine-tuned by Stackport on {data.source}.",
            tags=[*DEFAULT_TAGS, slug],
        )
    return ModelIdentity(
        name=model.name or default.name,
        description=model.description or default.description,
        tags=model.tags if model.tags is not None else default.tags,
    )


class DeployableVariant(BaseModel):
    """A deployable ONNX variant of a version, as its metadata records it.

    Attributes:
        variant: The variant.
        artifact: The name of its artifact (`VARIANT_ARTIFACTS`).
        metrics: Its own test metrics (not the PyTorch model's).
    """

    variant: OnnxVariant
    artifact: str
    metrics: dict[str, float]


def version_metadata(
    model: FineTunedModel,
    model_evaluation: EvaluationReport,
    baseline_evaluation: EvaluationReport,
    variants: list[OnnxModel],
    quantization_report: QuantizationReport,
    benchmark_report: BenchmarkReport,
) -> dict[str, Any]:
    """The metadata of a new model version: test metrics, labels, the ONNX variants, benchmark."""
    return {
        "test_metrics": model_evaluation.metrics,
        "baseline_test_metrics": baseline_evaluation.metrics,
        "per_class": {
            name: metrics.model_dump() for name, metrics in model_evaluation.per_class.items()
        },
        "labels": model.label_names,
        "task": model.task,
        ONNX_KEY: {
            "deployable": [str(variant) for variant in quantization_report.deployable],
            "summary": quantization_report.summary,
            "opset": variants[0].opset,
            "variants": {
                str(onnx_model.variant): {
                    "artifact": str(VARIANT_ARTIFACTS[onnx_model.variant]),
                    "deployable": gate.deployable,
                    "reason": gate.reason,
                    "test_metrics": gate.test_metrics,
                    "sha256": onnx_model.file_sha256[MODEL_FILENAME],
                }
                for onnx_model in variants
                if (gate := quantization_report.gate(onnx_model.variant))
            },
        },
        "benchmark": benchmark_report.figures(),
    }


def served_forms(metadata: dict[str, Any]) -> dict[str, str]:
    """What a version can serve, as its metadata records it: each deployable variant's sha256.

    Two versions of one fine-tuned model differ in what they serve when the accuracy gate let
    other variants through (another `quantization.max_metric_drop`, say) or a variant's graph
    changed.
    """
    onnx = metadata.get(ONNX_KEY, {})
    return {variant: onnx["variants"][variant]["sha256"] for variant in onnx.get("deployable", [])}


def deployable_variants(metadata: dict[str, Any]) -> list[DeployableVariant]:
    """The deployable ONNX variants a version's metadata names (none if it records none)."""
    onnx = metadata.get(ONNX_KEY, {})
    return [
        DeployableVariant(
            variant=variant,
            artifact=onnx["variants"][variant]["artifact"],
            metrics=onnx["variants"][variant]["test_metrics"],
        )
        for variant in onnx.get("deployable", [])
    ]
