"""A model version on an AzureML managed online endpoint: its entities, and the safe rollout.

`plan_deployment` builds what AzureML is sent: the model asset (the deployable ONNX model's
folder, named and versioned after the Model Control Plane version), the environment (a CPU base
image and a conda file with only the scoring packages, pinned), the scoring code folder (the
torch-free modules `stackport.serving.azureml_entry` imports, found by the walk that collects
the bento's sources) and the key-authenticated endpoint with its deployment. `roll_out` puts a
plan live through the `MLClient` it is given: the new deployment at 0 % of the traffic, a smoke
test through `invoke`, then 100 % and the other deployments deleted; when the deployment or its
smoke test fails, the deployments serving before keep their traffic and the error says why.
The endpoint's key is never read.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from azure.ai.ml.entities import (
    AzureBlobDatastore,
    CodeConfiguration,
    DefaultScaleSettings,
    Environment,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
    Model,
    OnlineRequestSettings,
    ProbeSettings,
    TargetUtilizationScaleSettings,
)
from azure.core.exceptions import AzureError, ResourceNotFoundError
from pydantic import TypeAdapter, ValidationError

from stackport.core.settings import AzureMLSettings
from stackport.core.settings import ProbeSettings as ProbeConfig
from stackport.inference.onnx_model import MODEL_FILENAME, OnnxModel
from stackport.serving.bento import (
    copy_sources,
    python_requirements,
    service_sources,
    storage_package,
)
from stackport.serving.deployment import EndpointDeployment
from stackport.serving.scoring import SCORING_CONFIG, ScoringConfig
from stackport.tasks import inference_plugin

SCORING_ENTRY_MODULE = "stackport.serving.azureml_entry"
SCORING_SCRIPT = "stackport/serving/azureml_entry.py"
# What the scoring script imports (pinned to the versions installed here), and the server.
SCORING_PACKAGES = ("onnxruntime", "tokenizers", "numpy", "pydantic", "pyarrow", "fsspec")
# Names the storage account of an `az://` served-input log for adlfs, which then signs in with
# the endpoint's managed identity (DefaultAzureCredential): no key in the deployment.
LOG_ACCOUNT_VARIABLE = "AZURE_STORAGE_ACCOUNT_NAME"
INFERENCE_SERVER = "azureml-inference-server-http==1.5.1"
PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
# Endpoint and deployment names: 3-32 letters, digits and hyphens, starting with a letter.
AZURE_NAME = re.compile(r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$")
AZURE_NAME_MAX = 32
HASH_CHARS = 8
SMOKE_TEXTS = ["A short text that checks the new deployment before it takes traffic."]
LOG_LINES = 50
FULL_TRAFFIC = 100


class RolloutError(RuntimeError):
    """The new deployment failed (to start or its smoke test); the old one keeps its traffic."""


@dataclass
class DeploymentPlan:
    """What AzureML is sent for one model version.

    Attributes:
        endpoint: The key-authenticated endpoint.
        model: The model asset.
        environment: The scoring environment.
        deployment: The deployment (its model and environment named by their asset IDs).
        prediction: The task's prediction model, which the smoke test checks answers against.
    """

    endpoint: ManagedOnlineEndpoint
    model: Model
    environment: Environment
    deployment: ManagedOnlineDeployment
    prediction: type


class MissingLogAccountError(ValueError):
    """An `az://` served-input log for the endpoint, and no storage account to find it in."""


def scoring_requirements(request_log_path: str = "") -> list[str]:
    """The scoring environment's pip packages: the scoring script's imports and the server.

    The server pins its own dependencies (e.g. flask 3.1, opentelemetry 1.33, pydantic 2.12),
    which is why it runs in an environment of its own, never in the project's.

    Args:
        request_log_path: Where the scoring script logs its inputs; an `az://` URI adds adlfs.
    """
    return [*python_requirements(request_log_path, SCORING_PACKAGES), INFERENCE_SERVER]


def conda_file(request_log_path: str = "") -> dict[str, Any]:
    """The environment's conda specification: this Python and the pinned pip packages."""
    return {
        "name": "stackport-scoring",
        "channels": ["conda-forge"],
        "dependencies": [
            f"python={PYTHON_VERSION}",
            "pip",
            {"pip": scoring_requirements(request_log_path)},
        ],
    }


def azure_name(text: str, max_length: int = AZURE_NAME_MAX) -> str:
    """`text` as an endpoint or deployment name: a letter, then `a-z0-9` and hyphens."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if not cleaned[:1].isalpha():
        cleaned = f"m-{cleaned}".rstrip("-")
    return cleaned[:max_length].rstrip("-")


def asset_name(text: str) -> str:
    """`text` as a model or environment asset name (letters, digits, `-`, `_`, `.`)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._") or "model"


def endpoint_name(model_name: str, settings: AzureMLSettings) -> str:
    """The configured endpoint name, or one made from the model's name.

    Raises:
        ValueError: The configured name is no valid endpoint name.
    """
    name = settings.endpoint_name or azure_name(model_name)
    if not AZURE_NAME.match(name):
        raise ValueError(
            f"deployment.azureml.endpoint_name {name!r} is no AzureML endpoint name: 3 to 32 "
            "lowercase letters, digits and hyphens, starting with a letter and not ending in "
            "a hyphen."
        )
    return name


def write_scoring_code(directory: Path, task: str, config: ScoringConfig) -> list[Path]:
    """Fill `directory` with the scoring code folder: the entry, what it imports, its config.

    Returns:
        The folder's files, relative to it.
    """
    sources = service_sources(task, SCORING_ENTRY_MODULE)
    copy_sources(directory, sources)
    (directory / SCORING_CONFIG).parent.mkdir(parents=True, exist_ok=True)
    (directory / SCORING_CONFIG).write_text(config.model_dump_json(indent=2))
    return [*sources, SCORING_CONFIG]


def log_environment(request_log_path: str, storage_account: str | None) -> dict[str, str]:
    """The deployment's environment variables for its served-input log at `request_log_path`.

    An `az://` log is written with the endpoint's managed identity, in `storage_account`.

    Raises:
        MissingLogAccountError: An `az://` log, and `storage_account` unset.
    """
    if storage_package(request_log_path) is None:  # not on Azure Blob Storage
        return {}
    if not storage_account:
        raise MissingLogAccountError(
            f"service.request_log.path {request_log_path} is on Azure Blob Storage, and "
            "AZURE_STORAGE_ACCOUNT (its storage account) is unset: set it in config.env or the "
            "environment."
        )
    return {LOG_ACCOUNT_VARIABLE: storage_account}


def model_path_in_workspace(
    artifact_uri: str, storage_account: str | None, datastores: Iterable[Any]
) -> str | None:
    """The artifact's `azureml://datastores/...` path when a workspace datastore holds it.

    An artifact store on Azure Blob Storage keeps the ONNX model at `az://<container>/<path>`;
    when a blob datastore of the workspace is on that container (and account), AzureML can
    register the model from there, without uploading it again.

    Args:
        artifact_uri: The ONNX model artifact's URI.
        storage_account: The artifact store's storage account (`AZURE_STORAGE_ACCOUNT`), if
            known.
        datastores: The workspace's datastores.
    """
    parsed = urlparse(artifact_uri)
    if parsed.scheme not in ("az", "abfs", "abfss"):
        return None
    container = parsed.netloc.split("@")[0]
    for datastore in datastores:
        if not isinstance(datastore, AzureBlobDatastore):
            continue
        if datastore.container_name == container and storage_account in (
            None,
            datastore.account_name,
        ):
            return f"azureml://datastores/{datastore.name}/paths/{parsed.path.strip('/')}"
    return None


def probe(settings: ProbeConfig) -> ProbeSettings:
    """An AzureML probe from its settings."""
    return ProbeSettings(
        initial_delay=settings.initial_delay_s,
        period=settings.period_s,
        timeout=settings.timeout_s,
        failure_threshold=settings.failure_threshold,
        success_threshold=settings.success_threshold,
    )


def scale_settings(
    settings: AzureMLSettings,
) -> DefaultScaleSettings | TargetUtilizationScaleSettings:
    """`instance_count` instances, or between the bounds by CPU use."""
    if settings.scale_type == "default":
        return DefaultScaleSettings()
    return TargetUtilizationScaleSettings(
        min_instances=settings.min_instances,
        max_instances=settings.max_instances,
        target_utilization_percentage=settings.target_utilization_percentage,
        polling_interval=settings.polling_interval_s,
    )


def fingerprint(*parts: Any) -> str:
    """A short sha256 of JSON-able parts."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_CHARS]


def code_hash(directory: Path) -> str:
    """sha256 of the relative paths and contents of the code folder's files."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(directory)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def plan_deployment(
    onnx_model: OnnxModel,
    model_name: str,
    model_version: str,
    model_path: str,
    code_directory: Path,
    settings: AzureMLSettings,
    request_log_path: str = "",
    environment_variables: dict[str, str] | None = None,
) -> DeploymentPlan:
    """The entities that put the model version on its endpoint.

    The deployment's name is the version and a hash of everything it runs (model files,
    environment, code, settings): deploying the same again changes nothing; anything else
    makes a new deployment, rolled out beside the serving one.

    Args:
        onnx_model: The deployable ONNX model.
        model_name: Its Model Control Plane model.
        model_version: Its version's name.
        model_path: Where AzureML registers it from: an `azureml://` datastore path, or the
            local folder (uploaded by the SDK).
        code_directory: The scoring code folder (`write_scoring_code`).
        settings: Endpoint, instances, timeouts, probes, scaling and base image.
        request_log_path: Where the scoring script logs served inputs (`az://` adds adlfs to
            the environment), if anywhere.
        environment_variables: The deployment's (`log_environment`); no secrets.
    """
    endpoint = endpoint_name(model_name, settings)
    tags = {"model": model_name, "model_version": model_version}
    model = Model(
        name=asset_name(model_name),
        version=model_version,
        path=model_path,
        type="custom_model",
        description=f"{model_name} version {model_version} ({onnx_model.variant} ONNX).",
        tags={**tags, "task": onnx_model.task},
    )
    environment_spec = conda_file(request_log_path)
    environment = Environment(
        name=f"{asset_name(model_name)}-scoring",
        version=fingerprint(settings.base_image, environment_spec),
        image=settings.base_image,
        conda_file=environment_spec,
        description="CPU scoring: onnxruntime, tokenizers, numpy, pydantic, the served-input "
        "log's pyarrow and fsspec, and AzureML's inference server (no torch, no transformers).",
    )
    content = fingerprint(
        onnx_model.file_sha256[MODEL_FILENAME],
        environment.version,
        code_hash(code_directory),
        settings.model_dump(mode="json"),
    )
    version_part = azure_name(f"v{model_version}", AZURE_NAME_MAX - HASH_CHARS - 1)
    deployment = ManagedOnlineDeployment(
        name=f"{version_part}-{content}",
        endpoint_name=endpoint,
        model=f"azureml:{model.name}:{model.version}",
        environment=f"azureml:{environment.name}:{environment.version}",
        code_configuration=CodeConfiguration(
            code=str(code_directory), scoring_script=SCORING_SCRIPT
        ),
        environment_variables=environment_variables or {},
        instance_type=settings.instance_type,
        instance_count=settings.instance_count,
        request_settings=OnlineRequestSettings(
            request_timeout_ms=settings.request_timeout_ms,
            max_concurrent_requests_per_instance=settings.max_concurrent_requests_per_instance,
        ),
        liveness_probe=probe(settings.liveness_probe),
        readiness_probe=probe(settings.readiness_probe),
        scale_settings=scale_settings(settings),
        tags=tags,
    )
    return DeploymentPlan(
        endpoint=ManagedOnlineEndpoint(
            name=endpoint,
            auth_mode="key",
            description=f"Stackport: {model_name}.",
            tags={"model": model_name},
        ),
        model=model,
        environment=environment,
        deployment=deployment,
        prediction=inference_plugin(onnx_model.task).prediction,
    )


def get_or_create(operations: Any, asset: Model | Environment) -> Any:
    """The asset's registered version, registering it first when the workspace has none."""
    try:
        return operations.get(name=asset.name, version=asset.version)
    except ResourceNotFoundError:
        return operations.create_or_update(asset)


def set_traffic(client: Any, endpoint: str, traffic: dict[str, int]) -> None:
    """Give each deployment of the endpoint its share of the traffic (percent)."""
    current = client.online_endpoints.get(endpoint)
    current.traffic = traffic
    client.online_endpoints.begin_create_or_update(current).result()


def smoke_test(client: Any, plan: DeploymentPlan, work_directory: Path) -> str | None:
    """Invoke the new deployment with `SMOKE_TEXTS`; what is wrong with its answer, or None."""
    request_file = work_directory / "smoke-request.json"
    request_file.write_text(json.dumps({"texts": SMOKE_TEXTS}))
    try:
        answer = client.online_endpoints.invoke(
            endpoint_name=plan.endpoint.name,
            deployment_name=plan.deployment.name,
            request_file=str(request_file),
        )
    except AzureError as error:
        return f"invoke failed: {error}"
    try:
        predictions = TypeAdapter(list[plan.prediction]).validate_json(answer)
    except ValidationError as error:
        return f"the answer is no list of predictions ({error.errors()[0]['msg']}): {answer[:300]}"
    if len(predictions) != len(SMOKE_TEXTS):
        return f"{len(predictions)} predictions for {len(SMOKE_TEXTS)} texts"
    return None


def deployment_logs(client: Any, plan: DeploymentPlan) -> str:
    """The end of the new deployment's log, or why it cannot be read."""
    try:
        return client.online_deployments.get_logs(
            name=plan.deployment.name, endpoint_name=plan.endpoint.name, lines=LOG_LINES
        )
    except AzureError as error:
        return f"(its logs cannot be read: {error})"


def fail_rollout(client: Any, plan: DeploymentPlan, serving: list[str], cause: str) -> None:
    """Delete the failed new deployment and raise, naming the cause and who keeps serving.

    Raises:
        RolloutError: Always.
    """
    logs = deployment_logs(client, plan)
    name, endpoint = plan.deployment.name, plan.endpoint.name
    try:
        client.online_deployments.begin_delete(name=name, endpoint_name=endpoint).result()
        deleted = f"{name} was deleted"
    except AzureError as error:
        deleted = f"{name} could not be deleted ({error}): delete it by hand"
    kept = f"{', '.join(serving)} keeps serving" if serving else "nothing served before"
    raise RolloutError(
        f"Deployment {name} on endpoint {endpoint} failed: {cause}. {kept}; {deleted}.\n"
        f"The end of its log:\n{logs}"
    )


def roll_out(
    client: Any, plan: DeploymentPlan, work_directory: Path, model_name: str, model_version: str
) -> EndpointDeployment:
    """Put the plan live: endpoint, assets, the new deployment at 0 %, smoke test, 100 %.

    The deployments the endpoint had are deleted once the new one takes all the traffic.
    A plan whose deployment already takes all the traffic changes nothing.

    Args:
        client: An `azure.ai.ml.MLClient` of the workspace.
        plan: What to deploy (`plan_deployment`).
        work_directory: A folder for the smoke test's request file.
        model_name: The Model Control Plane model (recorded).
        model_version: Its version (recorded).

    Returns:
        The endpoint, its scoring URI, the deployment and the traffic; no key.

    Raises:
        RolloutError: The new deployment failed to start or its smoke test failed; the
            deployments serving before keep their traffic.
    """
    name = plan.endpoint.name
    try:
        endpoint = client.online_endpoints.get(name)
    except ResourceNotFoundError:
        endpoint = client.online_endpoints.begin_create_or_update(plan.endpoint).result()
    model = get_or_create(client.models, plan.model)
    environment = get_or_create(client.environments, plan.environment)
    traffic = dict(endpoint.traffic or {})
    new = plan.deployment.name
    existing = [deployment.name for deployment in client.online_deployments.list(name)]
    replaced: list[str] = []
    if traffic.get(new) != FULL_TRAFFIC:
        serving = [deployment for deployment, share in traffic.items() if share > 0]
        try:
            client.online_deployments.begin_create_or_update(plan.deployment).result()
        except AzureError as error:
            fail_rollout(client, plan, serving, f"it did not start ({error})")
        set_traffic(client, name, {**traffic, new: 0})
        problem = smoke_test(client, plan, work_directory)
        if problem is not None:
            fail_rollout(client, plan, serving, f"its smoke test failed: {problem}")
        set_traffic(client, name, {**{old: 0 for old in traffic}, new: FULL_TRAFFIC})
        replaced = [old for old in existing if old != new]
        for old in replaced:
            client.online_deployments.begin_delete(name=old, endpoint_name=name).result()
    endpoint = client.online_endpoints.get(name)
    return EndpointDeployment(
        model_name=model_name,
        model_version=model_version,
        endpoint=name,
        scoring_uri=endpoint.scoring_uri,
        deployment=new,
        traffic=dict(endpoint.traffic or {}),
        model_asset=f"azureml:{model.name}:{model.version}",
        environment=f"azureml:{environment.name}:{environment.version}",
        replaced=replaced,
    )


def delete_endpoint(client: Any, name: str) -> bool:
    """Delete the endpoint and its deployments; False when there is no such endpoint."""
    try:
        client.online_endpoints.begin_delete(name=name).result()
    except ResourceNotFoundError:
        return False
    return True
