"""A base for materializers of pydantic reports: JSON data plus visualizations of their own."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from pydantic import BaseModel

from materializers.visualization_files import VisualizationFilesMaterializer

REPORT_FILENAME = "report.json"


class PydanticJsonMaterializer(VisualizationFilesMaterializer):
    """Stores a pydantic model as `report.json` through the artifact store (never pickle).

    Subclasses name their type in `ASSOCIATED_TYPES` and add metadata and visualizations.
    """

    SKIP_REGISTRATION: ClassVar[bool] = True

    def save(self, data: BaseModel) -> None:
        """Write the model as JSON."""
        with self.artifact_store.open(os.path.join(self.uri, REPORT_FILENAME), "w") as file:
            file.write(data.model_dump_json(indent=2))

    def load(self, data_type: type[Any]) -> BaseModel:
        """Read and validate the JSON."""
        with self.artifact_store.open(os.path.join(self.uri, REPORT_FILENAME), "r") as file:
            return data_type.model_validate_json(file.read())
