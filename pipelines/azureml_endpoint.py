"""`deployment.target: azureml`: a model version on an AzureML managed online endpoint.

Creating an endpoint is a series of AzureML API calls, so it runs on this machine, with its
Azure credentials (`az login` or a service principal, through `DefaultAzureCredential`), on any
stack, and starts no pipeline run: the model files come from the version's ONNX artifact in the
artifact store, and the result is recorded as the version's `deployment` metadata.
`stackport.serving.azureml` builds the entities and rolls them out; this module gives it the
workspace's `MLClient` and the ZenML side.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from azure.ai.ml import MLClient
from azure.identity import DefaultAzureCredential
from zenml import log_metadata
from zenml.client import Client

from stackport.core.settings import DeploymentSettings, ServiceSettings
from stackport.serving.azureml import (
    delete_endpoint,
    endpoint_name,
    log_environment,
    model_path_in_workspace,
    plan_deployment,
    roll_out,
    write_scoring_code,
)
from stackport.serving.deployment import EndpointDeployment
from stackport.serving.request_log import log_destination
from stackport.serving.scoring import ScoringConfig

# The azure stack's settings (config.env or the environment) that name the workspace.
WORKSPACE_VARIABLES = {
    "subscription_id": "AZURE_SUBSCRIPTION_ID",
    "resource_group_name": "AZURE_RESOURCE_GROUP",
    "workspace_name": "AZURE_WORKSPACE",
}
STORAGE_ACCOUNT_VARIABLE = "AZURE_STORAGE_ACCOUNT"


class MissingWorkspaceSettingsError(ValueError):
    """`target: azureml` needs the workspace's settings, and some are unset."""


def workspace_settings() -> dict[str, str]:
    """The workspace's subscription, resource group and name, from the environment.

    Raises:
        MissingWorkspaceSettingsError: Naming every unset variable.
    """
    missing = [name for name in WORKSPACE_VARIABLES.values() if not os.environ.get(name)]
    if missing:
        raise MissingWorkspaceSettingsError(
            f"deployment.target azureml needs the AzureML workspace's settings, and "
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} unset: set them in "
            "config.env (template: config.env.example) or the environment."
        )
    return {key: os.environ[name] for key, name in WORKSPACE_VARIABLES.items()}


def workspace_client(workspace: dict[str, str]) -> MLClient:
    """The workspace's `MLClient`, authenticated by `DefaultAzureCredential`."""
    return MLClient(DefaultAzureCredential(), **workspace)


def deploy_to_online_endpoint(
    model_name: str,
    model_version: str,
    onnx_artifact_id: str,
    service: ServiceSettings,
    settings: DeploymentSettings,
) -> EndpointDeployment:
    """Roll the version's ONNX model out to its endpoint and record it on the version.

    Every setting is checked before anything is created in the workspace. The model is
    registered from the artifact store in place when a datastore of the workspace is on its
    blob container, else uploaded from a local copy.

    Raises:
        MissingWorkspaceSettingsError: A workspace setting is unset.
        stackport.serving.azureml.MissingLogAccountError: The served-input log is on Azure
            Blob Storage, and its storage account is unset.
        ValueError: The endpoint name is invalid.
        stackport.serving.azureml.RolloutError: The new deployment or its smoke test failed
            (the previous deployment keeps serving).
    """
    workspace = workspace_settings()
    endpoint_name(model_name, settings.azureml)
    storage_account = os.environ.get(STORAGE_ACCOUNT_VARIABLE)
    log_path = log_destination(service.request_log) or ""
    log_variables = log_environment(log_path, storage_account)
    artifact = Client().get_artifact_version(onnx_artifact_id)
    onnx_model = artifact.load()
    client = workspace_client(workspace)
    model_path = model_path_in_workspace(
        artifact.uri, storage_account, client.datastores.list()
    ) or str(onnx_model.directory)
    with tempfile.TemporaryDirectory(prefix="stackport-azureml-") as work:
        code = Path(work) / "code"
        config = ScoringConfig(model_name=model_name, model_version=model_version, service=service)
        write_scoring_code(code, onnx_model.task, config)
        plan = plan_deployment(
            onnx_model,
            model_name,
            model_version,
            model_path,
            code,
            settings.azureml,
            log_path,
            log_variables,
        )
        deployed = roll_out(client, plan, Path(work), model_name, model_version)
    log_metadata(
        {"deployment": deployed.model_dump(mode="json")},
        model_name=model_name,
        model_version=model_version,
    )
    return deployed


def delete_online_endpoint(model_name: str, settings: DeploymentSettings) -> str:
    """Delete the model's endpoint with its deployments; what was done, for the user.

    Raises:
        MissingWorkspaceSettingsError: A workspace setting is unset.
        ValueError: The endpoint name is invalid.
    """
    workspace = workspace_settings()
    name = endpoint_name(model_name, settings.azureml)
    if delete_endpoint(workspace_client(workspace), name):
        return f"Deleted AzureML endpoint {name} and its deployments."
    return f"AzureML endpoint {name} does not exist: nothing to delete."
