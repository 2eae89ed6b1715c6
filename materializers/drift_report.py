"""ZenML materializers of the monitor's artifacts: the drift summary and the report page."""

from __future__ import annotations

import hashlib
import html
import os
from typing import Any, ClassVar

from zenml.enums import ArtifactType, VisualizationType
from zenml.metadata.metadata_types import MetadataType

from materializers.base import StackportMaterializer
from materializers.html_summary import FIGURES_TABLE_STYLE
from materializers.pydantic_json import PydanticJsonMaterializer
from stackport.monitoring.drift import DriftReportPage, DriftSummary

SUMMARY_PAGE = "drift_summary.html"
REPORT_PAGE = "report.html"


class DriftSummaryMaterializer(PydanticJsonMaterializer):
    """Stores a `DriftSummary` as `report.json`; shows each feature's test as a table."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (DriftSummary,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA_ANALYSIS

    def extract_metadata(self, data: DriftSummary) -> dict[str, MetadataType]:
        """The verdict, the records compared and the drifted features."""
        metadata: dict[str, MetadataType] = {
            "verdict": data.verdict,
            "records": data.records,
            "reference_records": data.reference_records,
            "drifted_features": data.drifted_features,
        }
        if data.drift_detected is not None:
            metadata |= {"drift_detected": data.drift_detected, "drifted_share": data.drifted_share}
        return metadata

    def save_visualizations(self, data: DriftSummary) -> dict[str, VisualizationType]:
        """Write the verdict and the table of tests as an HTML page."""
        return {self.write_visualization(SUMMARY_PAGE, summary_html(data)): VisualizationType.HTML}


def summary_html(summary: DriftSummary) -> str:
    """A self-contained page: the verdict, the window, and each feature's test."""
    rows = "".join(
        f"<tr><td>{html.escape(feature.feature)}</td><td>{html.escape(feature.kind)}</td>"
        f"<td>{html.escape(feature.statistic)}</td><td>{feature.score:.4g}</td>"
        f"<td>{feature.threshold:.4g}</td><td>{'yes' if feature.drifted else 'no'}</td></tr>"
        for feature in summary.features
    )
    window = summary.window
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Data drift</title>'
        f"<style>{FIGURES_TABLE_STYLE}</style></head><body>"
        f"<h2>{html.escape(summary.model_name)} version {html.escape(summary.model_version)}: "
        f"{html.escape(summary.verdict)}</h2><p>{html.escape(summary.message)}.</p>"
        f"<p>{summary.records} served records ({html.escape(str(window.first))} to "
        f"{html.escape(str(window.last))}) against {summary.reference_records} training "
        f"texts.</p><table><tr><th>feature</th><th>kind</th><th>test</th><th>value</th>"
        f"<th>threshold</th><th>drifted</th></tr>{rows}</table></body></html>"
    )


class DriftReportPageMaterializer(StackportMaterializer):
    """Stores the report page as `report.html`, which is also its visualization."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (DriftReportPage,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA_ANALYSIS

    def save(self, data: DriftReportPage) -> None:
        """Write the page."""
        with self.artifact_store.open(os.path.join(self.uri, REPORT_PAGE), "w") as file:
            file.write(data.html)

    def read(self, data_type: type[Any]) -> DriftReportPage:
        """Read the page."""
        with self.artifact_store.open(os.path.join(self.uri, REPORT_PAGE), "r") as file:
            return DriftReportPage(file.read())

    def save_visualizations(self, data: DriftReportPage) -> dict[str, VisualizationType]:
        """The page itself is the visualization."""
        return {os.path.join(self.uri, REPORT_PAGE): VisualizationType.HTML}

    def compute_content_hash(self, data: DriftReportPage) -> str:
        """sha256 of the page."""
        return hashlib.sha256(data.html.encode()).hexdigest()
