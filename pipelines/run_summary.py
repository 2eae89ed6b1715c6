"""What a finished pipeline run produced, as a JSON-able summary."""

from __future__ import annotations

from typing import Any

from zenml.client import Client
from zenml.models import PipelineRunResponse

EVALUATION_STEP = "evaluate_model"
BASELINE_STEP = "evaluate_baseline"
REGISTER_STEP = "register_model"


def summarize_run(run: PipelineRunResponse, error: str | None = None) -> dict[str, Any]:
    """Run id and status, model name and version, test metrics and every artifact's URI.

    Args:
        run: The pipeline run.
        error: The error that stopped the run, if any; the failed step's own exception
            replaces it when the step recorded one.

    Returns:
        The summary; metrics are empty and the model is `None` for a run that stopped early.
    """
    run = Client().get_pipeline_run(run.id)
    steps = run.steps
    for step_name, step_run in steps.items():
        failure = step_run.exception_info
        if step_run.status.value == "failed" and failure is not None:
            kind = (failure.source or "Exception").rsplit(".", 1)[-1]
            error = f"step {step_name} failed: {kind}: {failure.message}"
    summary: dict[str, Any] = {
        "run_id": str(run.id),
        "run_name": run.name,
        "pipeline": run.pipeline.name if run.pipeline else None,
        "status": run.status.value,
        "stack": run.stack.name if run.stack else None,
        "error": error,
        "model": None,
        "metrics": {},
        "baseline_metrics": {},
        "artifacts": {},
    }
    for step_run in steps.values():
        for name, versions in step_run.outputs.items():
            for version in versions:
                summary["artifacts"][name] = version.uri
    if REGISTER_STEP in steps and steps[REGISTER_STEP].model_version is not None:
        model_version = steps[REGISTER_STEP].model_version
        summary["model"] = {
            "name": model_version.model.name,
            "version": model_version.name,
            "number": model_version.number,
            "id": str(model_version.id),
        }
    for key, step_name, output in (
        ("metrics", EVALUATION_STEP, "model_evaluation"),
        ("baseline_metrics", BASELINE_STEP, "baseline_evaluation"),
    ):
        outputs = steps[step_name].outputs if step_name in steps else {}
        if output in outputs:
            summary[key] = outputs[output][0].load().metrics
    return summary
