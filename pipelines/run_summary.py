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
HPO_STEP = "search_hyperparameters"
PROMOTE_STEP = "promote_model"


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
        "hpo": None,
        "promotion": None,
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
    model_evaluation = _load_output(steps, EVALUATION_STEP, "model_evaluation")
    baseline_evaluation = _load_output(steps, BASELINE_STEP, "baseline_evaluation")
    summary["metrics"] = model_evaluation.metrics if model_evaluation else {}
    summary["baseline_metrics"] = baseline_evaluation.metrics if baseline_evaluation else {}
    quantization = _load_output(steps, QUANTIZE_STEP, "quantization_report")
    if quantization is not None:
        summary["onnx"] = {
            "fp32": steps[CONVERT_STEP].outputs["onnx_model"][0].uri,
            "int8": steps[QUANTIZE_STEP].outputs["onnx_model_int8"][0].uri,
            "deployable": quantization.deployable,
            "reason": quantization.reason,
        }
    benchmark = _load_output(steps, BENCHMARK_STEP, "benchmark_report")
    summary["benchmark"] = benchmark.figures() if benchmark else {}
    study = _load_output(steps, HPO_STEP, "hpo_study")
    if study is not None:
        summary["hpo"] = {
            "study_name": study.study_name,
            "trials": study.counts(),
            "best_params": study.best_params,
            f"best_validation_{study.metric}": study.best_value,
        }
    decision = _load_output(steps, PROMOTE_STEP, "promotion_decision")
    if decision is not None:
        summary["promotion"] = {
            "promoted": decision.promoted,
            "stage": decision.stage,
            "reason": decision.reason,
        }
    return summary


def _load_output(steps: dict[str, Any], step_name: str, output: str) -> Any:
    """A step's output artifact, loaded; `None` when the step did not run or produce it."""
    if step_name not in steps or output not in steps[step_name].outputs:
        return None
    return steps[step_name].outputs[output][0].load()
