"""What a finished pipeline run produced, as a JSON-able summary."""

from __future__ import annotations

from typing import Any

from zenml.client import Client
from zenml.models import PipelineRunResponse

EVALUATION_STEP = "evaluate_model"
BASELINE_STEP = "evaluate_baseline"
REGISTER_STEP = "register_model"
CONVERT_STEP = "convert_model"
QUANTIZE_STEP = "quantize_model"
BENCHMARK_STEP = "benchmark_model"


def summarize_run(run: PipelineRunResponse, error: str | None = None) -> dict[str, Any]:
    """Run id and status, model, test metrics, ONNX models, benchmark and every artifact's URI.

    Args:
        run: The pipeline run.
        error: The error that stopped the run, if any; the failed step's own exception
            replaces it when the step recorded one.

    Returns:
        The summary; metrics and benchmark are empty and the model and ONNX entries are `None`
        for a run that stopped early.
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
        "onnx": None,
        "benchmark": {},
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
    if QUANTIZE_STEP in steps and "quantization_report" in steps[QUANTIZE_STEP].outputs:
        quantize_outputs = steps[QUANTIZE_STEP].outputs
        report = quantize_outputs["quantization_report"][0].load()
        summary["onnx"] = {
            "fp32": steps[CONVERT_STEP].outputs["onnx_model"][0].uri,
            "int8": quantize_outputs["onnx_model_int8"][0].uri,
            "deployable": report.deployable,
            "reason": report.reason,
        }
    if BENCHMARK_STEP in steps and "benchmark_report" in steps[BENCHMARK_STEP].outputs:
        summary["benchmark"] = steps[BENCHMARK_STEP].outputs["benchmark_report"][0].load().figures()
    return summary
