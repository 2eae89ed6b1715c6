"""ZenML materializer for `OnnxModel`: the .onnx graph, tokenizer.json and a JSON manifest."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any, ClassVar

from zenml import get_step_context
from zenml.enums import ArtifactType, VisualizationType
from zenml.io import fileio
from zenml.metadata.metadata_types import MetadataType, StorageSize

from materializers.base import ArtifactIntegrityError, StackportMaterializer
from materializers.html_summary import summary_page
from stackport.inference.onnx_model import (
    MANIFEST_FILENAME,
    MODEL_FILENAME,
    OnnxModel,
    OnnxModelIntegrityError,
)

SUMMARY_FILENAME = "summary.html"


class OnnxModelMaterializer(StackportMaterializer):
    """Stores the model's files and `onnx_model.json`; loading verifies every file's sha256."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (OnnxModel,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.MODEL

    def save(self, data: OnnxModel) -> None:
        """Copy the manifest, the graph (and its external data) and the tokenizer to the URI."""
        for name in [MANIFEST_FILENAME, *data.file_sha256]:
            fileio.copy(str(data.directory / name), os.path.join(self.uri, name), overwrite=True)

    def read(self, data_type: type[Any]) -> OnnxModel:
        """Copy the files to a local directory and load the model from there.

        The directory outlives this call (ZenML removes it after the step): inference sessions
        open the graph file from it.

        Raises:
            ArtifactIntegrityError: A file differs from the sha256 recorded when it was saved.
        """
        with self.artifact_store.open(os.path.join(self.uri, MANIFEST_FILENAME), "r") as file:
            names = [MANIFEST_FILENAME, *json.load(file)["file_sha256"]]
        with self.get_temporary_directory(delete_at_exit=False) as temp_dir:
            for name in names:
                fileio.copy(os.path.join(self.uri, name), os.path.join(temp_dir, name))
            try:
                return OnnxModel.load(temp_dir)
            except OnnxModelIntegrityError as error:
                raise ArtifactIntegrityError(f"ONNX model artifact {self.uri}: {error}") from error

    def compute_content_hash(self, data: OnnxModel) -> str:
        """The model's content hash: its manifest, which holds every file's sha256."""
        return data.content_hash()

    def extract_metadata(self, data: OnnxModel) -> dict[str, MetadataType]:
        """Task, labels (and thresholds), opset, inputs/outputs, variant, size and sha256."""
        thresholds = {} if data.thresholds is None else {"thresholds": data.thresholds}
        return {
            "task": data.task,
            "label_names": data.label_names,
            **thresholds,
            "max_length": data.max_length,
            "opset": data.opset,
            "inputs": data.inputs,
            "outputs": data.outputs,
            "variant": str(data.variant),
            "size": StorageSize(data.size_bytes),
            "sha256": data.file_sha256[MODEL_FILENAME],
            "external_data": len(data.graph_files) > 1,
        }

    def save_visualizations(self, data: OnnxModel) -> dict[str, VisualizationType]:
        """Write an HTML summary of the model and its files."""
        uri = self.write_visualization(SUMMARY_FILENAME, summary_html(data))
        return {uri: VisualizationType.HTML}


def summary_html(model: OnnxModel) -> str:
    """A self-contained page: what the model predicts, its graph and its files."""
    facts = {
        "task": model.task,
        "variant": str(model.variant),
        "opset": str(model.opset),
        "inputs": ", ".join(model.inputs),
        "outputs": ", ".join(model.outputs),
        "max_length": f"{model.max_length} tokens",
        "labels": ", ".join(model.label_names),
        "graph size": f"{model.size_bytes / 1e6:.1f} MB",
    }
    if model.thresholds is not None:
        facts["thresholds"] = ", ".join(
            f"{name} {threshold:g}"
            for name, threshold in zip(model.label_names, model.thresholds, strict=True)
        )
    files = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{(model.directory / name).stat().st_size:,}</td>"
        f"<td><code>{digest}</code></td></tr>"
        for name, digest in model.file_sha256.items()
    )
    return summary_page(
        f"ONNX model ({model.variant})",
        facts,
        f"<table><tr><th>file</th><th>bytes</th><th>sha256</th></tr>{files}</table>",
    )


def step_output_directory(output_name: str) -> Path:
    """An empty local directory for an `OnnxModel` output of the running step.

    ZenML removes it once the step has finished, after the output was stored.
    """
    materializer = get_step_context().get_output_materializer(output_name)
    with materializer.get_temporary_directory(delete_at_exit=False) as directory:
        return Path(directory)
