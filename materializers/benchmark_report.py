"""ZenML materializer for `BenchmarkReport`: JSON, an HTML table and a latency/throughput PNG."""

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
from stackport.onnx.benchmark import BenchmarkReport

TABLE_FILENAME = "benchmark.html"
PLOT_FILENAME = "benchmark.png"


class BenchmarkReportMaterializer(PydanticJsonMaterializer):
    """Stores the report as `report.json`; shows it as a table and a bar chart."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (BenchmarkReport,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA_ANALYSIS

    def extract_metadata(self, data: BenchmarkReport) -> dict[str, MetadataType]:
        """Every runtime's figures, and the conditions they were measured in."""
        return {
            "texts": data.texts,
            "batch_size": data.batch_size,
            "threads": data.threads,
            "cpu": data.cpu,
            **data.figures(),
        }

    def save_visualizations(self, data: BenchmarkReport) -> dict[str, VisualizationType]:
        """Write the figures as an HTML table and as a PNG bar chart."""
        return {
            self.write_visualization(TABLE_FILENAME, benchmark_html(data)): VisualizationType.HTML,
            self.write_visualization(PLOT_FILENAME, benchmark_png(data)): VisualizationType.IMAGE,
        }


def benchmark_html(report: BenchmarkReport) -> str:
    """A self-contained page with one row of figures per runtime."""
    columns, rows = report.table()
    header = "".join(f"<th>{html.escape(column)}</th>" for column in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Inference benchmark</title>'
        f"<style>{FIGURES_TABLE_STYLE}</style></head><body><h2>Inference benchmark</h2>"
        f"<table><tr>{header}</tr>{body}</table>"
        f"<p>{html.escape(report.conditions())}</p></body></html>"
    )


def benchmark_png(report: BenchmarkReport) -> bytes:
    """Batch-1 latency (p50 bar, p95 whisker) and batched throughput per runtime, via Agg."""
    names = [
        f"{result.runtime}\nF1 {result.macro_f1:.3f}, {result.size_bytes / 1e6:.0f} MB"
        for result in report.results
    ]
    positions = range(len(report.results))
    figure = Figure(figsize=(10, 1.5 + 0.8 * len(names)), layout="constrained")
    FigureCanvasAgg(figure)
    latency_axes, throughput_axes = figure.subplots(1, 2, sharey=True)
    p50 = [result.latency_ms_p50 for result in report.results]
    p95 = [result.latency_ms_p95 for result in report.results]
    latency_axes.barh(
        positions, p50, xerr=[[0] * len(p50), [b - a for a, b in zip(p50, p95, strict=True)]]
    )
    latency_axes.set_yticks(positions, names)
    latency_axes.invert_yaxis()
    latency_axes.set_xlabel("ms per text at batch 1 (p50, whisker to p95)")
    throughput_axes.barh(positions, [result.throughput for result in report.results])
    throughput_axes.set_xlabel(f"texts/s at batch {report.batch_size}")
    figure.suptitle(f"Inference on {report.cpu}, {report.threads} threads")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
