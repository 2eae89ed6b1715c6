"""ZenML materializer for `QuantizationReport`: JSON and an HTML page of the accuracy gate."""

from __future__ import annotations

import html
from typing import Any, ClassVar

from zenml.enums import ArtifactType, VisualizationType
from zenml.metadata.metadata_types import MetadataType, StorageSize

from materializers.html_summary import FIGURES_TABLE_STYLE
from materializers.pydantic_json import PydanticJsonMaterializer
from stackport.onnx.quantization import QuantizationReport

PAGE_FILENAME = "quantization.html"
GATE_STYLE = FIGURES_TABLE_STYLE + ".int8{color:#1a7f37}.fp32{color:#b35900}"


class QuantizationReportMaterializer(PydanticJsonMaterializer):
    """Stores the report as `report.json`; shows the gate's decision and both models."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (QuantizationReport,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA_ANALYSIS

    def extract_metadata(self, data: QuantizationReport) -> dict[str, MetadataType]:
        """The deployable model, the metric of both models, the drop and the sizes."""
        return {
            "deployable": data.deployable,
            "mode": str(data.mode),
            "metric": data.metric,
            f"fp32_validation_{data.metric}": data.fp32_metric,
            f"int8_validation_{data.metric}": data.int8_metric,
            f"fp32_test_{data.metric}": data.fp32_test_metrics[data.metric],
            f"int8_test_{data.metric}": data.int8_test_metrics[data.metric],
            "metric_drop": data.metric_drop,
            "max_metric_drop": data.max_metric_drop,
            "fp32_size": StorageSize(data.fp32_size_bytes),
            "int8_size": StorageSize(data.int8_size_bytes),
        }

    def save_visualizations(self, data: QuantizationReport) -> dict[str, VisualizationType]:
        """Write the gate's decision as an HTML page."""
        return {
            self.write_visualization(PAGE_FILENAME, quantization_html(data)): VisualizationType.HTML
        }


def quantization_html(report: QuantizationReport) -> str:
    """A self-contained page: the deployable model, why, and both models' metrics and size."""
    metric = html.escape(report.metric)
    rows = "".join(
        f"<tr><td>{name}</td><td>{value:.4f}</td><td>{test[report.metric]:.4f}</td>"
        f"<td>{size / 1e6:.1f}</td></tr>"
        for name, value, test, size in (
            ("onnx fp32", report.fp32_metric, report.fp32_test_metrics, report.fp32_size_bytes),
            (
                f"onnx {html.escape(str(report.mode))}",
                report.int8_metric,
                report.int8_test_metrics,
                report.int8_size_bytes,
            ),
        )
    )
    weights = f"{report.weight_type}, {'per channel' if report.per_channel else 'per tensor'}"
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Quantization gate</title>'
        f"<style>{GATE_STYLE}</style></head><body><h2>Quantization gate: deploy "
        f'<span class="{report.deployable}">{report.deployable}</span></h2>'
        f"<p>{html.escape(report.reason)}.</p>"
        f"<table><tr><th>model</th><th>validation {metric} (decides)</th>"
        f"<th>test {metric} (reported)</th><th>size (MB)</th></tr>{rows}</table>"
        f"<p>Drop {report.metric_drop:+.4f}, allowed {report.max_metric_drop:g}; int8 weights "
        f"{html.escape(weights)}.</p></body></html>"
    )
