"""ZenML materializer for `FineTunedModel`: safetensors weights and JSON/text tokenizer files."""

from __future__ import annotations

import json
import os
from typing import Any, ClassVar

from zenml.enums import ArtifactType, VisualizationType
from zenml.io import fileio
from zenml.metadata.metadata_types import DType, MetadataType, StorageSize
from zenml.utils import io_utils

from materializers.base import StackportMaterializer
from materializers.html_summary import summary_page
from stackport.training.model import FineTunedModel

MANIFEST_FILENAME = "stackport_model.json"
CARD_FILENAME = "model_card.html"
WEIGHTS_PATTERN = "*.safetensors"


class FineTunedModelMaterializer(StackportMaterializer):
    """Stores `FineTunedModel.save()` output plus `stackport_model.json` holding the task."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (FineTunedModel,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.MODEL

    def save(self, data: FineTunedModel) -> None:
        """Save the model locally, copy every file to the artifact URI, drop its checkpoints.

        The checkpoints its training kept for a resume (`FineTunedModel.checkpoints`)
        are removed once the model is stored: a run killed before this point resumes.
        """
        with self.get_temporary_directory(delete_at_exit=True) as temp_dir:
            data.save(temp_dir)
            with open(os.path.join(temp_dir, MANIFEST_FILENAME), "w") as file:
                json.dump({"task": data.task}, file, indent=2)
            io_utils.copy_dir(temp_dir, self.uri)
        for location in data.checkpoints:
            if fileio.exists(location):
                fileio.rmtree(location)

    def read(self, data_type: type[Any]) -> FineTunedModel:
        """Copy the artifact's files to a local directory and load the model from there.

        The directory outlives this call (ZenML removes it after the step): the loaded
        parameters stay memory-mapped from its safetensors file.
        """
        with self.get_temporary_directory(delete_at_exit=False) as temp_dir:
            io_utils.copy_dir(self.uri, temp_dir)
            with open(os.path.join(temp_dir, MANIFEST_FILENAME)) as file:
                task = json.load(file)["task"]
            return FineTunedModel.load(temp_dir, task)

    def compute_content_hash(self, data: FineTunedModel) -> str:
        """The model's content hash (weights, config, tokenizer and task)."""
        return data.content_hash()

    def extract_metadata(self, data: FineTunedModel) -> dict[str, MetadataType]:
        """Parameter count, labels, model type and architecture, dtype and weights size."""
        config = data.model.config
        weights_files = self.artifact_store.glob(os.path.join(self.uri, WEIGHTS_PATTERN))
        weights_size = sum(self.artifact_store.size(path) or 0 for path in weights_files)
        return {
            "task": data.task,
            "num_parameters": data.model.num_parameters(),
            "num_labels": len(data.label_names),
            "label_names": data.label_names,
            "model_type": config.model_type,
            "architecture": type(data.model).__name__,
            "dtype": DType(str(data.model.dtype)),
            "weights_size": StorageSize(weights_size),
        }

    def save_visualizations(self, data: FineTunedModel) -> dict[str, VisualizationType]:
        """Write an HTML card: task, architecture, size and labels (with thresholds)."""
        uri = self.write_visualization(CARD_FILENAME, model_card_html(data))
        return {uri: VisualizationType.HTML}


def model_card_html(model: FineTunedModel) -> str:
    """A self-contained page describing the fine-tuned model."""
    config = model.model.config
    labels = model.label_names
    if model.label_thresholds is not None:
        labels = [
            f"{name} (threshold {threshold:g})"
            for name, threshold in zip(labels, model.label_thresholds, strict=True)
        ]
    facts = {
        "task": str(model.task),
        "architecture": type(model.model).__name__,
        "model type": config.model_type,
        "parameters": f"{model.model.num_parameters():,}",
        "layers × hidden size": f"{config.num_hidden_layers} × {config.hidden_size}",
        "dtype": str(model.model.dtype),
        "tokenizer": f"{type(model.tokenizer).__name__}, {len(model.tokenizer):,} tokens",
        "labels": ", ".join(labels),
        "files": f"safetensors weights, tokenizer and config JSON, {MANIFEST_FILENAME}",
    }
    return summary_page(f"Fine-tuned model ({model.task})", facts)
