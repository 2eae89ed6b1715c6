"""What a finished pipeline run produced, as a JSON-able summary."""

from __future__ import annotations

from typing import Any

from zenml.client import Client
from zenml.models import PipelineRunResponse

from stackport.core.names import Artifact, Step
from stackport.release.registration import VARIANT_ARTIFACTS


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
        "seconds": duration_seconds(run),
        "error": error,
        "model": None,
        "metrics": {},
        "baseline_metrics": {},
        "onnx": None,
        "benchmark": {},
        "hpo": None,
        "promotion": None,
        "steps": {name: step_timing(step_run) for name, step_run in steps.items()},
        "artifacts": {},
    }
    for step_run in steps.values():
        for name, versions in step_run.outputs.items():
            for version in versions:
                summary["artifacts"][name] = version.uri
    registered = _load_output(steps, Step.REGISTER_MODEL, Artifact.MODEL_VERSION)
    if registered is not None:
        summary["model"] = registered.model_dump()
    model_evaluation = _load_output(steps, Step.EVALUATE_MODEL, Artifact.MODEL_EVALUATION)
    baseline_evaluation = _load_output(steps, Step.EVALUATE_BASELINE, Artifact.BASELINE_EVALUATION)
    summary["metrics"] = model_evaluation.metrics if model_evaluation else {}
    summary["baseline_metrics"] = baseline_evaluation.metrics if baseline_evaluation else {}
    quantization = _load_output(steps, Step.QUANTIZE_MODEL, Artifact.QUANTIZATION_REPORT)
    if quantization is not None:
        summary["onnx"] = {
            "deployable": [str(variant) for variant in quantization.deployable],
            "summary": quantization.summary,
            "variants": {
                str(gate.variant): {
                    "uri": summary["artifacts"][VARIANT_ARTIFACTS[gate.variant]],
                    "deployable": gate.deployable,
                    "validation_metric": gate.validation_metric,
                    "test_metrics": gate.test_metrics,
                }
                for gate in quantization.variants
            },
        }
    benchmark = _load_output(steps, Step.BENCHMARK_MODEL, Artifact.BENCHMARK_REPORT)
    summary["benchmark"] = benchmark.figures() if benchmark else {}
    study = _load_output(steps, Step.SEARCH_HYPERPARAMETERS, Artifact.HPO_STUDY)
    if study is not None:
        summary["hpo"] = {
            "study_name": study.study_name,
            "trials": study.counts(),
            "best_params": study.best_params,
            f"best_validation_{study.metric}": study.best_value,
            "latency_ms_by_num_layers": study.latency_ms_by_num_layers,
        }
    decision = _load_output(steps, Step.PROMOTE_MODEL, Artifact.PROMOTION_DECISION)
    if decision is not None:
        summary["promotion"] = {
            "promoted": decision.promoted,
            "stage": decision.stage,
            "reason": decision.reason,
        }
    return summary


def duration_seconds(run_or_step: Any) -> float | None:
    """How long a run or step took, in seconds; None while it has not ended."""
    if run_or_step.start_time is None or run_or_step.end_time is None:
        return None
    return round((run_or_step.end_time - run_or_step.start_time).total_seconds(), 1)


def step_timing(step_run: Any) -> dict[str, Any]:
    """A step's status, whether it came from the cache, and how long it ran (seconds)."""
    cached = step_run.status.value == "cached"
    return {
        "status": step_run.status.value,
        "cached": cached,
        "seconds": None if cached else duration_seconds(step_run),
    }


def _load_output(steps: dict[str, Any], step_name: str, output: str) -> Any:
    """A step's output artifact, loaded; `None` when the step did not run or produce it."""
    if step_name not in steps or output not in steps[step_name].outputs:
        return None
    return steps[step_name].outputs[output][0].load()
