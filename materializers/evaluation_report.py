"""ZenML materializer for `EvaluationReport`: JSON, a confusion-matrix PNG and an HTML table."""

from __future__ import annotations

import html
import io
from typing import Any, ClassVar

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from zenml.enums import ArtifactType, VisualizationType
from zenml.metadata.metadata_types import MetadataType

from materializers.html_summary import FIGURES_TABLE_STYLE
from materializers.pydantic_json import PydanticJsonMaterializer
from stackport.evaluation.report import EvaluationReport

CONFUSION_MATRIX_FILENAME = "confusion_matrix.png"
METRICS_FILENAME = "metrics.html"


class EvaluationReportMaterializer(PydanticJsonMaterializer):
    """Stores the report as `report.json` and visualizes its confusion matrix and metrics."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (EvaluationReport,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA_ANALYSIS

    def extract_metadata(self, data: EvaluationReport) -> dict[str, MetadataType]:
        """The headline metrics, and what was evaluated on which split."""
        return {
            "model_name": data.model_name,
            "split": data.split,
            **{name: float(value) for name, value in data.metrics.items()},
        }

    def save_visualizations(self, data: EvaluationReport) -> dict[str, VisualizationType]:
        """Write the confusion matrix (if the report has one) as a PNG, the metrics as HTML."""
        visualizations = {}
        if data.confusion_matrix:
            image = confusion_matrix_png(data)
            visualizations[self.write_visualization(CONFUSION_MATRIX_FILENAME, image)] = (
                VisualizationType.IMAGE
            )
        table_uri = self.write_visualization(METRICS_FILENAME, metrics_html(data))
        visualizations[table_uri] = VisualizationType.HTML
        return visualizations


def report_title(report: EvaluationReport) -> str:
    """Model name, split and macro-F1 (when the report has it)."""
    title = f"{report.model_name} on {report.split}"
    if "macro_f1" in report.metrics:
        title += f", macro-F1 {report.metrics['macro_f1']:.3f}"
    return title


def confusion_matrix_png(report: EvaluationReport) -> bytes:
    """The confusion matrix with a count in every cell, rendered by Agg without pyplot."""
    counts = report.confusion_matrix
    size = 2.5 + 0.6 * len(report.label_names)
    figure = Figure(figsize=(size + 1, size), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(counts, cmap="Blues")
    figure.colorbar(image, ax=axes)
    ticks = range(len(report.label_names))
    axes.set_xticks(ticks, report.label_names, rotation=45, ha="right")
    axes.set_yticks(ticks, report.label_names)
    axes.set_xlabel("Predicted label")
    axes.set_ylabel("True label")
    axes.set_title(report_title(report))
    threshold = max((max(row, default=0) for row in counts), default=0) / 2
    for true_index, row in enumerate(counts):
        for predicted_index, count in enumerate(row):
            color = "white" if count > threshold else "black"
            axes.text(
                predicted_index, true_index, str(count), ha="center", va="center", color=color
            )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def metrics_html(report: EvaluationReport) -> str:
    """A self-contained page with the headline metrics and per-class precision/recall/F1."""
    headline = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{value:.4f}</td></tr>"
        for name, value in report.metrics.items()
    )
    per_class = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{metrics.precision:.4f}</td>"
        f"<td>{metrics.recall:.4f}</td><td>{metrics.f1:.4f}</td><td>{metrics.support}</td></tr>"
        for name, metrics in report.per_class.items()
    )
    title = html.escape(report_title(report))
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{FIGURES_TABLE_STYLE}</style></head><body><h2>{title}</h2>"
        f"<table><tr><th>metric</th><th>value</th></tr>{headline}</table>"
        "<table><tr><th>label</th><th>precision</th><th>recall</th><th>F1</th>"
        f"<th>support</th></tr>{per_class}</table></body></html>"
    )
