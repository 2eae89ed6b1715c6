"""What a model version records in the Model Control Plane, and how deployment reads it back.

`register_model` logs `version_metadata` on the version and links the run's artifacts to it;
the deployment reads the deployable ONNX model's artifact name and its own test metrics back
with `deployable_onnx`. Writing and reading the layout in one module keeps them in step.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from pydantic import BaseModel

from stackport.core.names import Artifact
from stackport.core.settings import DataSettings, ModelSettings
from stackport.data.bundled import BUNDLED, bundled_name
from stackport.evaluation.report import EvaluationReport
from stackport.inference.onnx_model import MODEL_FILENAME, OnnxModel
from stackport.onnx.benchmark import BenchmarkReport
from stackport.onnx.quantization import QuantizationReport
from stackport.training.model import FineTunedModel

# The model version's metadata key that says which ONNX model is deployable.
ONNX_KEY = "onnx"
DEPLOYABLE_ARTIFACTS = {"fp32": Artifact.ONNX_MODEL, "int8": Artifact.ONNX_MODEL_INT8}


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


class DeployableOnnx(BaseModel):
    """The deployable ONNX model of a version, as its metadata records it.

    Attributes:
        artifact: The name of its artifact (`onnx_model` or `onnx_model_int8`).
        metrics: Its own test metrics (not the PyTorch model's).
        metrics_of: Which model and split the metrics are of, in words.
    """

    artifact: str
    metrics: dict[str, float]
    metrics_of: str


def version_metadata(
    model: FineTunedModel,
    model_evaluation: EvaluationReport,
    baseline_evaluation: EvaluationReport,
    onnx_model: OnnxModel,
    onnx_model_int8: OnnxModel,
    quantization_report: QuantizationReport,
    benchmark_report: BenchmarkReport,
) -> dict[str, Any]:
    """The metadata of a new model version: test metrics, labels, the ONNX models, benchmark."""
    deployable = quantization_report.deployable
    deployable_model = onnx_model_int8 if deployable == "int8" else onnx_model
    return {
        "test_metrics": model_evaluation.metrics,
        "baseline_test_metrics": baseline_evaluation.metrics,
        "per_class": {
            name: metrics.model_dump() for name, metrics in model_evaluation.per_class.items()
        },
        "labels": model.label_names,
        "task": model.task,
        ONNX_KEY: {
            "deployable": deployable,
            "reason": quantization_report.reason,
            "deployable_test_metrics": quantization_report.deployable_test_metrics,
            "deployable_quantization": str(deployable_model.quantization),
            "opset": onnx_model.opset,
            "int8_mode": str(onnx_model_int8.quantization),
            "fp32_sha256": onnx_model.file_sha256[MODEL_FILENAME],
            "int8_sha256": onnx_model_int8.file_sha256[MODEL_FILENAME],
        },
        "benchmark": benchmark_report.figures(),
    }


def deployable_onnx(metadata: dict[str, Any]) -> DeployableOnnx | None:
    """The deployable ONNX model a version's metadata names, or None if it names none."""
    onnx = metadata.get(ONNX_KEY)
    if onnx is None:
        return None
    return DeployableOnnx(
        artifact=DEPLOYABLE_ARTIFACTS[onnx["deployable"]],
        metrics=onnx["deployable_test_metrics"],
        metrics_of=f"the {onnx['deployable_quantization']} ONNX model being served, on the "
        "test split of its training run",
    )
