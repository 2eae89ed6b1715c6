"""ZenML materializer for `ValidationReport`: the report as JSON, and an HTML visualization."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from zenml.enums import ArtifactType, VisualizationType
from zenml.materializers.base_materializer import BaseMaterializer
from zenml.metadata.metadata_types import MetadataType

from textmodels.validation import ValidationReport

REPORT_FILENAME = "report.json"
HTML_FILENAME = "report.html"


class ValidationReportMaterializer(BaseMaterializer):
    """Stores a `ValidationReport` as `report.json` and shows it as `report.html`."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (ValidationReport,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA_ANALYSIS

    def save(self, data: ValidationReport) -> None:
        """Write the report as pydantic JSON."""
        with self.artifact_store.open(os.path.join(self.uri, REPORT_FILENAME), "w") as file:
            file.write(data.model_dump_json(indent=2))

    def load(self, data_type: type[Any]) -> ValidationReport:
        """Read the report back from its JSON."""
        with self.artifact_store.open(os.path.join(self.uri, REPORT_FILENAME), "r") as file:
            return ValidationReport.model_validate_json(file.read())

    def save_visualizations(self, data: ValidationReport) -> dict[str, VisualizationType]:
        """Write the report as a self-contained HTML page."""
        html_uri = os.path.join(self.uri, HTML_FILENAME)
        with self.artifact_store.open(html_uri, "w") as file:
            file.write(data.to_html())
        return {html_uri: VisualizationType.HTML}

    def extract_metadata(self, data: ValidationReport) -> dict[str, MetadataType]:
        """Whether validation passed, the row count and the number of failed checks."""
        return {
            "success": data.success,
            "row_count": data.row_count,
            "failed_checks": len(data.failures()),
        }
