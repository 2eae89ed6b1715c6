"""ZenML materializer for `ValidationReport`: the report as JSON, and an HTML visualization."""

from __future__ import annotations

from typing import Any, ClassVar

from zenml.enums import ArtifactType, VisualizationType
from zenml.metadata.metadata_types import MetadataType

from materializers.pydantic_json import PydanticJsonMaterializer
from stackport.data.validation import ValidationReport

HTML_FILENAME = "report.html"


class ValidationReportMaterializer(PydanticJsonMaterializer):
    """Stores a `ValidationReport` as `report.json` and shows it as `report.html`."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (ValidationReport,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA_ANALYSIS

    def save_visualizations(self, data: ValidationReport) -> dict[str, VisualizationType]:
        """Write the report as a self-contained HTML page."""
        return {self.write_visualization(HTML_FILENAME, data.to_html()): VisualizationType.HTML}

    def extract_metadata(self, data: ValidationReport) -> dict[str, MetadataType]:
        """Whether validation passed, the row count and the number of failed checks."""
        return {
            "success": data.success,
            "row_count": data.row_count,
            "failed_checks": len(data.failures()),
        }
