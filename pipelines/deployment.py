"""The deployment pipeline: a model version's deployable ONNX model → a bento → a server.

`run_deployment` is what `run.py --pipeline deploy` calls. On a stack whose orchestrator runs
on this machine, the pipeline builds the bento and deploys it; on a remote orchestrator it only
builds the bento, which is then deployed here, on the client.
"""

from __future__ import annotations

from pydantic import Field
from zenml import Model, pipeline
from zenml.client import Client
from zenml.enums import ExecutionStatus, ModelStages, StackComponentType
from zenml.models import ModelVersionResponse

from pipelines.run_summary import summarize_run
from service.config import ServiceSettings, StrictSettings
from steps.build_bento import build_bento
from steps.deploy_bento import deploy_and_record, deploy_bento
from textmodels.local_serving import Deployment, DeploymentSettings

# The training pipeline registers both ONNX models and logs which is deployable as the model
# version's `onnx.deployable` metadata (steps/register_model.py).
DEPLOYABLE_ARTIFACTS = {"fp32": "onnx_model", "int8": "onnx_model_int8"}
LOCAL_ORCHESTRATOR_FLAVORS = {"local"}
PIPELINE_NAME = "deployment_pipeline"


class DeploymentFailedError(RuntimeError):
    """The deployment pipeline failed; the message names the failed step and its error."""


class ModelSelection(StrictSettings):
    """Which Model Control Plane version to deploy."""

    name: str = Field(description="The Model Control Plane model.")
    version: str = Field(
        "production", description="A stage (production, staging, latest) or a version name."
    )


def find_model_version(selection: ModelSelection) -> ModelVersionResponse:
    """The selected model version.

    Raises:
        LookupError: The model has no such version (or no version in that stage); the message
            says why (e.g. the latest version was not promoted) and what to run instead.
    """
    try:
        return Client().get_model_version(selection.name, selection.version)
    except KeyError as error:
        raise LookupError(missing_version_message(selection)) from error


def missing_version_message(selection: ModelSelection) -> str:
    """Why the selected version does not exist, and which command serves one that does."""
    try:
        latest = Client().get_model_version(selection.name, ModelStages.LATEST)
    except KeyError:
        return (
            f"Model {selection.name!r} has no version in the Model Control Plane: train one "
            "with `python run.py --pipeline train`."
        )
    if selection.version not in ModelStages.values():
        return (
            f"Model {selection.name!r} has no version {selection.version!r}; its latest is "
            f"{latest.name}: choose one with --model-version."
        )
    promotion = latest.run_metadata.get("promotion", {})
    if promotion.get("promoted") is False:
        why = f"its latest version, {latest.name}, was not promoted: {promotion['reason']}"
    else:
        why = f"its latest version, {latest.name}, is in stage {latest.stage or 'none'}"
    return (
        f"Model {selection.name!r} has no version in stage {selection.version!r}: {why}.\n"
        f"To serve version {latest.name} anyway: python run.py --pipeline deploy "
        "--model-version latest"
    )


class DeployableModel(StrictSettings):
    """A model version's deployable ONNX model, resolved before the pipeline runs."""

    name: str
    version: str
    onnx_artifact_id: str = Field(description="ID of its onnx_model or onnx_model_int8 artifact.")
    metrics: dict[str, float] = Field(default_factory=dict, description="Its test metrics.")


def resolve_deployable(selection: ModelSelection) -> DeployableModel:
    """The selected version's ONNX model that the quantization gate chose (fp32 or int8).

    Raises:
        LookupError: The version does not exist or has no deployable ONNX model recorded.
    """
    version = find_model_version(selection)
    choice = version.run_metadata.get("onnx", {}).get("deployable")
    artifact = (
        version.get_artifact(DEPLOYABLE_ARTIFACTS[choice])
        if choice in DEPLOYABLE_ARTIFACTS
        else None
    )
    if artifact is None:
        raise LookupError(
            f"Version {version.name} of model {version.model.name!r} has no deployable ONNX "
            "model (metadata onnx.deployable naming an onnx_model or onnx_model_int8 "
            "artifact): it was trained before ONNX export was part of the training pipeline."
        )
    return DeployableModel(
        name=version.model.name,
        version=version.name,
        onnx_artifact_id=str(artifact.id),
        metrics=version.run_metadata.get("test_metrics", {}),
    )


@pipeline
def deployment_pipeline(
    model: DeployableModel,
    service: ServiceSettings,
    deployment: DeploymentSettings,
    serve: bool = True,
) -> None:
    """Build a bento of the model version's deployable ONNX model and deploy it.

    Args:
        model: The model version and its deployable ONNX artifact (`resolve_deployable`).
        service: Workers, ONNX Runtime threads, adaptive batching and request limits.
        deployment: Target (local server or container image), host, port, BentoML store.
        serve: Deploy in the pipeline; false on remote orchestrators, whose steps do not run
            on the machine that should serve.
    """
    bento = build_bento(
        Client().get_artifact_version(model.onnx_artifact_id),  # loaded when the step runs
        model_name=model.name,
        model_version=model.version,
        metrics=model.metrics,
        service=service,
        deployment=deployment,
    )
    if serve:
        deploy_bento(
            bento, model_name=model.name, model_version=model.version, deployment=deployment
        )


def orchestrator_is_local() -> bool:
    """Whether the active stack's orchestrator runs the steps on this machine."""
    orchestrator = Client().active_stack_model.components[StackComponentType.ORCHESTRATOR][0]
    return orchestrator.flavor_name in LOCAL_ORCHESTRATOR_FLAVORS


def run_deployment(
    parameters: dict,
    model_version: str | None = None,
    enable_cache: bool = True,
    run_options: dict | None = None,
) -> Deployment:
    """Run `deployment_pipeline` on the active stack and return the deployment.

    Args:
        parameters: The `parameters` of configs/deploy.yaml (`model`, `service`, `deployment`).
        model_version: Overrides `model.version` (a stage or a version name).
        enable_cache: Reuse the bento of an earlier run with the same model and settings.
        run_options: More `with_options` keywords: the stack's settings and environment
            (`run.stack_run_options`).

    Returns:
        The deployment: URL and PID of the local server, or the image tag.

    Raises:
        LookupError: The model version does not exist or has no deployable ONNX model.
        DeploymentFailedError: A step failed (e.g. the port is taken, no container engine),
            or the run did not complete.
    """
    selection = ModelSelection.model_validate(parameters["model"])
    if model_version is not None:
        selection = selection.model_copy(update={"version": model_version})
    deployable = resolve_deployable(selection)
    settings = DeploymentSettings.model_validate(parameters.get("deployment", {}))
    serve_in_pipeline = orchestrator_is_local()
    try:
        deployment_pipeline.with_options(
            enable_cache=enable_cache,
            model=Model(name=deployable.name, version=deployable.version),
            **(run_options or {}),
        )(
            model=deployable,
            service=ServiceSettings.model_validate(parameters.get("service", {})),
            deployment=settings,
            serve=serve_in_pipeline,
        )
    except RuntimeError as error:
        run = Client().get_pipeline(PIPELINE_NAME).last_run
        raise DeploymentFailedError(summarize_run(run, error=str(error))["error"]) from error
    run = Client().get_pipeline(PIPELINE_NAME).last_run
    if run.status != ExecutionStatus.COMPLETED:
        raise DeploymentFailedError(
            f"Run {run.name} is {run.status}: the orchestrator did not wait for it to finish "
            "(run it synchronously to deploy in the same command)."
        )
    if serve_in_pipeline:
        return run.steps["deploy_bento"].outputs["bento_deployment"][0].load()
    bento = run.steps["build_bento"].outputs["bento"][0].load()
    try:
        return deploy_and_record(bento, deployable.name, deployable.version, settings)
    except RuntimeError as error:
        raise DeploymentFailedError(f"Deploying bento {bento.tag} failed: {error}") from error


def usage(deployment: Deployment) -> str:
    """What to tell the user: where the service is and how to call it, or the image built."""
    if deployment.url is None:
        runner = "podman" if deployment.engine == "buildah" else deployment.engine
        return (
            f"Built image {deployment.image} of bento {deployment.bento_tag} with "
            f"{deployment.engine}.\n  {runner} run --rm -p 3000:3000 {deployment.image}"
        )
    return (
        f"Serving {deployment.model_name} version {deployment.model_version} "
        f"(bento {deployment.bento_tag}) at {deployment.url} (PID {deployment.pid}).\n"
        f"  curl -s -X POST {deployment.url}/predict -H 'Content-Type: application/json' \\\n"
        """    -d '{"texts": ["Shares in the airline rose 5% after its profits doubled."]}'\n"""
        f"  Metadata: {deployment.url}/metadata   Log: {deployment.log_file}"
    )
