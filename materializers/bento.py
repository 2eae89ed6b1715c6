"""ZenML materializer for `BentoArchive`: the exported `.bento.tar` file and a JSON manifest."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, ClassVar

from zenml.enums import ArtifactType, VisualizationType
from zenml.io import fileio
from zenml.metadata.metadata_types import MetadataType, StorageSize
from zenml.utils.io_utils import get_global_config_directory

from materializers.base import StackportMaterializer
from stackport.serving.bento import BentoArchive

MANIFEST_FILENAME = "bento.json"
USAGE_FILENAME = "usage.md"


class BentoArchiveMaterializer(StackportMaterializer):
    """Stores the `.bento.tar` file as it is (a tar archive with the Docker build files inside)."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (BentoArchive,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.SERVICE

    def save(self, data: BentoArchive) -> None:
        """Copy the `.bento.tar` file and write the manifest (tag and file name)."""
        fileio.copy(str(data.path), os.path.join(self.uri, data.path.name), overwrite=True)
        with self.artifact_store.open(os.path.join(self.uri, MANIFEST_FILENAME), "w") as file:
            json.dump({"tag": data.tag, "file": data.path.name}, file)

    def read(self, data_type: type[Any]) -> BentoArchive:
        """Copy the `.bento.tar` file to a local directory that outlives the step."""
        with self.artifact_store.open(os.path.join(self.uri, MANIFEST_FILENAME), "r") as file:
            manifest = json.load(file)
        with self.get_temporary_directory(delete_at_exit=False) as temp_dir:
            path = Path(temp_dir) / manifest["file"]
            fileio.copy(os.path.join(self.uri, manifest["file"]), str(path))
        return BentoArchive(tag=manifest["tag"], path=path)

    def compute_content_hash(self, data: BentoArchive) -> str:
        """sha256 of the bento's tag, which ends in a hash of its sources, settings and model."""
        return hashlib.sha256(data.tag.encode()).hexdigest()

    def extract_metadata(self, data: BentoArchive) -> dict[str, MetadataType]:
        """The bento's tag and size."""
        return {"bento_tag": data.tag, "size": StorageSize(data.path.stat().st_size)}

    def save_visualizations(self, data: BentoArchive) -> dict[str, VisualizationType]:
        """How to serve and containerize the bento by hand."""
        uri = os.path.join(self.uri, USAGE_FILENAME)
        with self.artifact_store.open(uri, "w") as file:
            file.write(
                f"# Bento `{data.tag}`\n\n```bash\nbentoml import {data.path.name}\n"
                f"bentoml serve {data.tag}\nbentoml containerize {data.tag}\n```\n"
            )
        return {uri: VisualizationType.MARKDOWN}


def default_bentoml_home() -> Path:
    """The BentoML store used when none is configured: `bentoml` in ZenML's config directory."""
    return Path(get_global_config_directory()) / "bentoml"


def default_request_log() -> str:
    """The served-input log used when none is configured: `request-log` in ZenML's config dir."""
    return str(Path(get_global_config_directory()) / "request-log")
