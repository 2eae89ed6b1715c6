"""ZenML materializer for `StudyReport`: JSON and the study's Optuna plots as one HTML page."""

from __future__ import annotations

import html
from typing import Any, ClassVar

import optuna
from zenml.enums import ArtifactType, VisualizationType
from zenml.metadata.metadata_types import MetadataType

from materializers.pydantic_json import PydanticJsonMaterializer
from stackport.training.hpo import StudyReport

PLOTS_FILENAME = "study.html"


class StudyReportMaterializer(PydanticJsonMaterializer):
    """Stores the study report as JSON and shows history, importances and learning curves."""

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
        return metadata

    def save_visualizations(self, data: StudyReport) -> dict[str, VisualizationType]:
        """One self-contained HTML page with the study's plots (plotly.js embedded once)."""
        uri = self.write_visualization(PLOTS_FILENAME, study_html(data))
        return {uri: VisualizationType.HTML}


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
    include_js: bool | str = True
    for title, plot in plots:
        if not report.trials:
            break
        figure = plot(study)
        figure.update_layout(title=title)
        sections.append(figure.to_html(full_html=False, include_plotlyjs=include_js))
        include_js = False
    return "<html><head><meta charset='utf-8'></head><body>" + "".join(sections) + "</body></html>"
