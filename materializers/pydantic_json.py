"""A base for materializers of pydantic reports: JSON data plus visualizations of their own."""

from __future__ import annotations

import hashlib
import os
from typing import Any, ClassVar

from pydantic import BaseModel
from zenml.enums import ArtifactType

from materializers.base import StackportMaterializer

REPORT_FILENAME = "report.json"


class PydanticJsonMaterializer(StackportMaterializer):
    """Stores a pydantic model as `report.json` through the artifact store (never pickle).

    Subclasses name their type in `ASSOCIATED_TYPES` and add metadata and visualizations.
    """

    SKIP_REGISTRATION: ClassVar[bool] = True

    def save(self, data: BaseModel) -> None:
        """Write the model as JSON."""
        with self.artifact_store.open(os.path.join(self.uri, REPORT_FILENAME), "w") as file:
            file.write(data.model_dump_json(indent=2))

    def read(self, data_type: type[Any]) -> BaseModel:
        """Read and validate the JSON."""
        with self.artifact_store.open(os.path.join(self.uri, REPORT_FILENAME), "r") as file:
            return data_type.model_validate_json(file.read())

    def compute_content_hash(self, data: BaseModel) -> str:
        """sha256 of the type's name and the JSON."""
        return hashlib.sha256(
            f"{type(data).__name__}\0{data.model_dump_json()}".encode()
        ).hexdigest()


class PydanticModelMaterializer(PydanticJsonMaterializer):
    """Every other pydantic model (reports of a reader, settings, decisions) as checked JSON."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (BaseModel,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA
