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

from pipelines.azureml_endpoint import deploy_to_online_endpoint
from pipelines.run_summary import summarize_run
from stackport.core.names import Artifact, Step
from stackport.core.settings import (
    DeploymentSettings,
    ModelSelection,
    OnnxVariant,
    ServiceSettings,
    StrictSettings,
)
from stackport.inference.runtime import AUTO
from stackport.release.registration import VARIANT_ARTIFACTS, deployable_variants
from stackport.serving.azureml import RolloutError
from stackport.serving.deployment import Deployment, EndpointDeployment
from steps.build_bento import build_bento
from steps.deploy_bento import deploy_and_record, deploy_bento

LOCAL_ORCHESTRATOR_FLAVORS = {"local"}
PIPELINE_NAME = "deployment_pipeline"
TRAINING_PIPELINE_NAME = "training_pipeline"
RUNS_SEARCHED = 50
# The sections of a deployment configuration (configs/deploy.yaml).
DEPLOY_SECTIONS = {
    "model": ModelSelection,
    "service": ServiceSettings,
    "deployment": DeploymentSettings,
}


class DeploymentFailedError(RuntimeError):
    """The deployment pipeline failed; the message names the failed step and its error."""


def choose_model(selection: ModelSelection) -> tuple[str, str]:
    """The model to deploy, and how it was chosen (for the user).

    The configured (or `--model-name`) model, else the model of the latest training run that
    registered a version.

    Raises:
        LookupError: No model is configured and no training run registered one.
    """
    if selection.name is not None:
        return selection.name, "as configured"
    runs = Client().list_pipeline_runs(
        pipeline_name=TRAINING_PIPELINE_NAME, sort_by="desc:created", size=RUNS_SEARCHED
    )
    for run in runs.items:
        register = run.steps.get(Step.REGISTER_MODEL)
        if register is not None and Artifact.MODEL_VERSION in register.outputs:
            registered = register.outputs[Artifact.MODEL_VERSION][0].load()
            return registered.name, f"the model of the latest training run, {run.name}"
    raise LookupError(
        "No training run has registered a model version yet: train one with "
        "`python run.py --pipeline train`, or name a model with --model-name."
    )


def find_model_version(name: str, version: str) -> ModelVersionResponse:
    """The version (or the version in a stage) of a model.

    Raises:
        LookupError: The model has no such version (or no version in that stage); the message
            says why (e.g. the latest version was not promoted) and what to run instead.
    """
    try:
        return Client().get_model_version(name, version)
    except KeyError as error:
        raise LookupError(missing_version_message(name, version)) from error


def missing_version_message(name: str, version: str) -> str:
    """Why the selected version does not exist, and which command serves one that does."""
    try:
        latest = Client().get_model_version(name, ModelStages.LATEST)
    except KeyError:
        return (
            f"Model {name!r} has no version in the Model Control Plane: train one "
            "with `python run.py --pipeline train`."
        )
    if version not in ModelStages.values():
        return (
            f"Model {name!r} has no version {version!r}; its latest is "
            f"{latest.name}: choose one with --model-version."
        )
    promotion = latest.run_metadata.get("promotion", {})
    if promotion.get("promoted") is False:
        why = f"its latest version, {latest.name}, was not promoted: {promotion['reason']}"
    else:
        why = f"its latest version, {latest.name}, is in stage {latest.stage or 'none'}"
    return (
        f"Model {name!r} has no version in stage {version!r}: {why}.\n"
        f"To serve version {latest.name} anyway: python run.py --pipeline deploy "
        f"--model-name {name} --model-version latest"
    )


class DeployableModel(StrictSettings):
    """A model version's ONNX variants, resolved before the pipeline runs."""

    name: str
    version: str
    artifact_ids: dict[str, str] = Field(description="The ID of each variant's artifact.")
    deployable: dict[str, dict[str, float]] = Field(
        description="The deployable variants, with each one's own test metrics."
    )


def resolve_deployable(name: str, version: str) -> DeployableModel:
    """The version's ONNX variants, and those the accuracy gate let through.

    Raises:
        LookupError: The version does not exist or records no deployable ONNX variant.
    """
    model_version = find_model_version(name, version)
    deployable = deployable_variants(model_version.run_metadata)
    if not deployable:
        raise LookupError(
            f"Version {model_version.name} of model {name!r} has no deployable ONNX variant "
            "(its metadata's onnx.deployable)."
        )
    return DeployableModel(
        name=model_version.model.name,
        version=model_version.name,
        artifact_ids={
            str(variant): str(model_version.get_artifact(artifact).id)
            for variant, artifact in VARIANT_ARTIFACTS.items()
        },
        deployable={str(served.variant): served.metrics for served in deployable},
    )


@pipeline
def deployment_pipeline(
    model: DeployableModel,
    service: ServiceSettings,
    deployment: DeploymentSettings,
    serve: bool = True,
) -> None:
    """Build a bento of the model version's deployable ONNX variants and deploy it.

    Args:
        model: The model version and its ONNX variants (`resolve_deployable`).
        service: Workers, ONNX Runtime threads, adaptive batching and request limits.
        deployment: Target (local server or container image), host, port, BentoML store.
        serve: Deploy in the pipeline; false on remote orchestrators, whose steps do not run
            on the machine that should serve.
    """
    artifacts = {  # loaded when the step runs
        variant: Client().get_artifact_version(artifact_id)
        for variant, artifact_id in model.artifact_ids.items()
    }
    bento = build_bento(
        artifacts[OnnxVariant.FP32],
        artifacts[OnnxVariant.FP32_OPTIMIZED],
        artifacts[OnnxVariant.DYNAMIC_INT8],
        artifacts[OnnxVariant.STATIC_INT8],
        model_name=model.name,
        model_version=model.version,
        deployable=model.deployable,
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


# An AzureML endpoint serves one variant: unless `service.runtime` pins one, the first of these
# that is deployable (an int8 variant is the smaller, and on the endpoints' Intel CPUs with
# VNNI the faster one).
ENDPOINT_PREFERENCE = (
    OnnxVariant.DYNAMIC_INT8,
    OnnxVariant.STATIC_INT8,
    OnnxVariant.FP32_OPTIMIZED,
    OnnxVariant.FP32,
)


def check_pinned_runtime(deployable: DeployableModel, runtime: str) -> None:
    """Refuse, before anything is built, a `service.runtime` pin the version cannot serve.

    Raises:
        DeploymentFailedError: The pinned variant is not one the accuracy gate let through.
    """
    if runtime != AUTO and runtime not in deployable.deployable:
        raise DeploymentFailedError(
            f"service.runtime pins {runtime}, which version {deployable.version} of model "
            f"{deployable.name!r} cannot serve: the accuracy gate let through "
            f"{', '.join(deployable.deployable)}. Pin one of them, or set service.runtime: auto."
        )


def endpoint_variant(deployable: DeployableModel, runtime: str) -> str:
    """The variant an AzureML endpoint serves: the pinned one, else by `ENDPOINT_PREFERENCE`."""
    if runtime != AUTO:
        return runtime
    return next(str(v) for v in ENDPOINT_PREFERENCE if str(v) in deployable.deployable)


def run_deployment(
    deployable: DeployableModel,
    service: ServiceSettings,
    settings: DeploymentSettings,
    enable_cache: bool = True,
    run_options: dict | None = None,
) -> Deployment | EndpointDeployment:
    """Run `deployment_pipeline` on the active stack and return the deployment.

    `target: azureml` runs no pipeline: the endpoint is made from this machine
    (`pipelines.azureml_endpoint`).

    Args:
        deployable: The version to deploy (`resolve_deployable`).
        service: The service's settings, copied into the bento.
        settings: Where and how to deploy.
        enable_cache: Reuse the bento of an earlier run with the same model and settings.
        run_options: More `with_options` keywords: the stack's settings and environment
            (`run.stack_run_options`).

    Returns:
        The deployment: URL and PID of the local server, or the image tag.

    Raises:
        DeploymentFailedError: `service.runtime` pins a variant that is not deployable; a
            step failed (e.g. the port is taken, no container engine), or the run did not
            complete; target azureml: a setting is missing or the new deployment failed.
    """
    check_pinned_runtime(deployable, service.runtime)
    if settings.target == "azureml":
        variant = endpoint_variant(deployable, service.runtime)
        try:
            return deploy_to_online_endpoint(
                deployable.name,
                deployable.version,
                deployable.artifact_ids[variant],
                service,
                settings,
            )
        except (ValueError, RolloutError) as error:
            raise DeploymentFailedError(str(error)) from error
    serve_in_pipeline = orchestrator_is_local()
    try:
        deployment_pipeline.with_options(
            enable_cache=enable_cache,
            model=Model(name=deployable.name, version=deployable.version),
            **(run_options or {}),
        )(model=deployable, service=service, deployment=settings, serve=serve_in_pipeline)
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
        return run.steps[Step.DEPLOY_BENTO].outputs[Artifact.BENTO_DEPLOYMENT][0].load()
    bento = run.steps[Step.BUILD_BENTO].outputs[Artifact.BENTO][0].load()
    try:
        return deploy_and_record(bento, deployable.name, deployable.version, settings)
    except RuntimeError as error:
        raise DeploymentFailedError(f"Deploying bento {bento.tag} failed: {error}") from error
