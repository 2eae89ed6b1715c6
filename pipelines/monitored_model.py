"""Which model version the monitor watches, and where its training reference is.

The reference is the version's train split: the `train_set` output of the `split_data` step
in the training run that produced the version's ONNX models. It is predicted with the fp32
export, which every served variant was gated against (`quantization.max_metric_drop`).
"""

from __future__ import annotations

from pydantic import Field
from zenml.client import Client

from pipelines.deployment import choose_model, resolve_deployable
from stackport.core.names import Artifact, Step
from stackport.core.settings import ModelSelection, MonitorSettings, OnnxVariant, StrictSettings


class MonitoredModel(StrictSettings):
    """A model version, its fp32 ONNX model and its train split, by artifact ID."""

    name: str
    version: str
    onnx_artifact_id: str = Field(description="ID of its fp32 ONNX model artifact.")
    train_set_artifact_id: str = Field(description="ID of the train split it was trained on.")


def find_monitored_model(monitor: MonitorSettings) -> MonitoredModel:
    """The version `monitor` names (by default the production version of the latest model).

    Raises:
        LookupError: No such model or version, no deployable ONNX model, or the training run
            that produced it has no train split.
    """
    name, _ = choose_model(ModelSelection(name=monitor.model_name, version=monitor.model_version))
    deployable = resolve_deployable(name, monitor.model_version)
    onnx_artifact_id = deployable.artifact_ids[OnnxVariant.FP32]
    client = Client()
    onnx = client.get_artifact_version(onnx_artifact_id)
    run_id = onnx.producer_pipeline_run_id
    steps = client.get_pipeline_run(run_id).steps if run_id is not None else {}
    split = steps.get(Step.SPLIT_DATA)
    if split is None or Artifact.TRAIN_SET not in split.outputs:
        raise LookupError(
            f"Version {deployable.version} of model {name!r}: the training run that produced "
            f"its ONNX model ({run_id}) has no {Artifact.TRAIN_SET} to compare served inputs with."
        )
    return MonitoredModel(
        name=name,
        version=deployable.version,
        onnx_artifact_id=onnx_artifact_id,
        train_set_artifact_id=str(split.outputs[Artifact.TRAIN_SET][0].id),
    )
