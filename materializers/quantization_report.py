"""ZenML materializer for `QuantizationReport`: JSON and an HTML page of the accuracy gate."""

from __future__ import annotations

import html
from typing import Any, ClassVar

from zenml.enums import ArtifactType, VisualizationType
from zenml.metadata.metadata_types import MetadataType

from materializers.html_summary import FIGURES_TABLE_STYLE
from materializers.pydantic_json import PydanticJsonMaterializer
from stackport.onnx.quantization import QuantizationReport

PAGE_FILENAME = "quantization.html"
GATE_STYLE = FIGURES_TABLE_STYLE + ".deployable{color:#1a7f37}.refused{color:#b35900}"


class QuantizationReportMaterializer(PydanticJsonMaterializer):
    """Stores the report as `report.json`; shows the gate's verdict on every variant."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (QuantizationReport,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA_ANALYSIS

    def extract_metadata(self, data: QuantizationReport) -> dict[str, MetadataType]:
        """The deployable variants, and each variant's validation and test metric and drop."""
        metadata: dict[str, MetadataType] = {
            "deployable": [str(variant) for variant in data.deployable],
            "metric": data.metric,
            "max_metric_drop": data.max_metric_drop,
        }
        for gate in data.variants:
            metadata[f"{gate.variant}_validation_{data.metric}"] = gate.validation_metric
            metadata[f"{gate.variant}_test_{data.metric}"] = gate.test_metrics[data.metric]
            metadata[f"{gate.variant}_metric_drop"] = gate.metric_drop
        return metadata

    def save_visualizations(self, data: QuantizationReport) -> dict[str, VisualizationType]:
        """Write the gate's verdicts as an HTML page."""
        return {
            self.write_visualization(PAGE_FILENAME, quantization_html(data)): VisualizationType.HTML
        }


def quantization_html(report: QuantizationReport) -> str:
    """A self-contained page: every variant's metrics, size and verdict, with the reason."""
    metric = html.escape(report.metric)
    rows = "".join(
        f"<tr><td>{html.escape(str(gate.variant))}</td><td>{gate.validation_metric:.4f}</td>"
        f"<td>{gate.metric_drop:+.4f}</td><td>{gate.test_metrics[report.metric]:.4f}</td>"
        f"<td>{gate.size_bytes / 1e6:.1f}</td>"
        f'<td class="{"deployable" if gate.deployable else "refused"}">'
        f"{'deployable' if gate.deployable else 'not deployable'}</td>"
        f"<td>{html.escape(gate.reason)}</td></tr>"
        for gate in report.variants
    )
    weights = f"{report.weight_type}, {'per channel' if report.per_channel else 'per tensor'}"
    deployable = html.escape(", ".join(report.deployable))
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Quantization gate</title>'
        f"<style>{GATE_STYLE}</style></head><body><h2>ONNX variants: deployable "
        f"{deployable}</h2>"
        f"<table><tr><th>variant</th><th>validation {metric} (decides)</th><th>drop</th>"
        f"<th>test {metric} (reported)</th><th>size (MB)</th><th>verdict</th><th>why</th></tr>"
        f"{rows}</table><p>Allowed drop {report.max_metric_drop:g}; int8 weights "
        f"{html.escape(weights)}. The service serves the fastest deployable variant on the "
        "machine it starts on.</p></body></html>"
    )
