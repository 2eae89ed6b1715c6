"""ZenML materializer for `StudyReport`: JSON, Optuna plots as HTML, metric against latency.

The metric-against-latency PNG is written when the depth was searched (its latencies measured).
"""

from __future__ import annotations

import html
import io
from typing import Any, ClassVar

import optuna
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from zenml.enums import ArtifactType, VisualizationType
from zenml.metadata.metadata_types import MetadataType

from materializers.pydantic_json import PydanticJsonMaterializer
from stackport.training.hpo import StudyReport, layers_text

PLOTS_FILENAME = "study.html"
LATENCY_PLOT_FILENAME = "metric_vs_latency.png"


class StudyReportMaterializer(PydanticJsonMaterializer):
    """Stores the study report as JSON; shows history, importances, curves and latencies."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (StudyReport,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA_ANALYSIS

    def extract_metadata(self, data: StudyReport) -> dict[str, MetadataType]:
        """Trial counts per state and the best trial."""
        metadata: dict[str, MetadataType] = {
            "study_name": data.study_name,
            "trials": len(data.trials),
            **{f"trials_{state.lower()}": count for state, count in data.counts().items()},
        }
        if data.best_value is not None:
            metadata[f"best_{data.metric}"] = data.best_value
            metadata["best_params"] = data.best_params
        if data.latency_ms_by_num_layers:
            metadata["latency_ms_by_num_layers"] = {
                str(depth): latency for depth, latency in data.latency_ms_by_num_layers.items()
            }
        return metadata

    def save_visualizations(self, data: StudyReport) -> dict[str, VisualizationType]:
        """One self-contained HTML page with the study's plots (plotly.js embedded once).

        With measured latencies, also the PNG of each trial's metric against its latency.
        """
        uri = self.write_visualization(PLOTS_FILENAME, study_html(data))
        visualizations = {uri: VisualizationType.HTML}
        if data.latency_ms_by_num_layers:
            png = self.write_visualization(LATENCY_PLOT_FILENAME, metric_latency_png(data))
            visualizations[png] = VisualizationType.IMAGE
        return visualizations


def study_html(report: StudyReport) -> str:
    """Optimization history, parameter importances and intermediate values as HTML."""
    study = report.to_study()
    completed = report.counts().get("COMPLETE", 0)
    plots = [("Optimization history", optuna.visualization.plot_optimization_history)]
    plots.append(("Intermediate values (per epoch)", optuna.visualization.plot_intermediate_values))
    if completed >= 2 and len(report.distributions) >= 1:
        plots.append(("Parameter importances", optuna.visualization.plot_param_importances))
    sections = [
        f"<h2>Study {html.escape(report.study_name)}: {len(report.trials)} trials "
        f"({html.escape(', '.join(f'{n} {s.lower()}' for s, n in report.counts().items()))})</h2>"
    ]
    if report.best_value is not None:
        sections.append(
            f"<p>Best validation {html.escape(report.metric)}: {report.best_value:.4f} with "
            f"{html.escape(str(report.best_params))}</p>"
        )
    else:
        sections.append("<p>No trial completed: the configured training settings are used.</p>")
    if report.latency_ms_by_num_layers:
        latencies = ", ".join(
            f"{layers_text(depth)} {latency:.1f} ms"
            for depth, latency in sorted(report.latency_ms_by_num_layers.items())
        )
        sections.append(f"<p>Batch-1 latency (fp32 ONNX, median) by depth: {latencies}</p>")
    include_js: bool | str = True
    for title, plot in plots:
        if not report.trials:
            break
        figure = plot(study)
        figure.update_layout(title=title)
        sections.append(figure.to_html(full_html=False, include_plotlyjs=include_js))
        include_js = False
    return "<html><head><meta charset='utf-8'></head><body>" + "".join(sections) + "</body></html>"


def metric_latency_png(report: StudyReport) -> bytes:
    """Each completed trial's validation metric against its depth's latency, via Agg.

    A trial is labelled with its number and depth; the best trial is drawn as a star.
    """
    points = [
        (trial, latency)
        for trial in report.trials
        if trial.state == "COMPLETE"
        and trial.value is not None
        and (latency := report.latency_ms(trial)) is not None
    ]
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.scatter([latency for _, latency in points], [trial.value for trial, _ in points])
    for trial, latency in points:
        label = f"#{trial.number}: {layers_text(trial.params['num_layers'])}"
        axes.annotate(label, (latency, trial.value), textcoords="offset points", xytext=(5, 5))
    best = [(trial, latency) for trial, latency in points if trial.value == report.best_value]
    if best:
        axes.scatter(
            [latency for _, latency in best],
            [trial.value for trial, _ in best],
            marker="*",
            s=250,
            color="tab:orange",
            label=f"best {report.metric}",
        )
        axes.legend(loc="lower right")
    axes.margins(x=0.2, y=0.15)  # room for the labels
    axes.set_xlabel("ms per text at batch 1 (fp32 ONNX, median) of the trial's depth")
    axes.set_ylabel(f"validation {report.metric}")
    axes.set_title(f"Study {report.study_name}: metric against latency")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
