"""ZenML's MLflow experiment tracker, on an AzureML workspace's own MLflow or any http(s) server.

ZenML's `mlflow` flavor refuses `azureml://` tracking URIs and needs credentials for every
http(s) server. The `azureml_mlflow` flavor keeps its behaviour and adds two things:

- Without `tracking_uri`, the tracking URI is the workspace's (`MLClient(...).workspaces
  .get(name).mlflow_tracking_uri`, resolved when first needed); azureml-mlflow then handles
  `azureml://` and authenticates with `DefaultAzureCredential`.
- With `tracking_uri`, any http(s) MLflow server, with at most one kind of credentials.

When `authentication_secret` names a ZenML secret holding a service principal (`client_id`,
`client_secret`, `tenant_id`), it is exported as `AZURE_CLIENT_ID`/`AZURE_CLIENT_SECRET`/
`AZURE_TENANT_ID` for `DefaultAzureCredential`, unless the environment sets them already.
Register the flavor with `python -m stacks.registration azure` (it is listed in
`stacks/azure.yaml`).
"""

from __future__ import annotations

import os
from typing import Any, cast

from azure.ai.ml import MLClient
from azure.identity import DefaultAzureCredential
from pydantic import model_validator
from zenml.integrations.mlflow.experiment_trackers import MLFlowExperimentTracker
from zenml.integrations.mlflow.flavors import (
    MLFlowExperimentTrackerConfig,
    MLFlowExperimentTrackerFlavor,
)
from zenml.secret.schemas import AzureSecretSchema
from zenml.stack import StackValidator
from zenml.stack.authentication_mixin import AuthenticationConfigMixin, AuthenticationMixin

AZUREML_MLFLOW_FLAVOR = "azureml_mlflow"
# Secret key → the environment variable `DefaultAzureCredential` reads it from.
SERVICE_PRINCIPAL_VARIABLES = {
    "client_id": "AZURE_CLIENT_ID",
    "client_secret": "AZURE_CLIENT_SECRET",
    "tenant_id": "AZURE_TENANT_ID",
}
_WORKSPACE_FIELDS = ("subscription_id", "resource_group", "workspace")


class AzureMLMLflowTrackerConfig(MLFlowExperimentTrackerConfig, AuthenticationConfigMixin):
    """ZenML's MLflow tracker configuration plus the AzureML workspace whose MLflow it uses.

    `tracking_uri`, when set, wins: an http(s) MLflow server. Otherwise `subscription_id`,
    `resource_group` and `workspace` name the workspace.
    """

    subscription_id: str | None = None
    resource_group: str | None = None
    workspace: str | None = None

    @model_validator(mode="after")
    def _ensure_exactly_one_authentication_method_if_necessary(
        self,
    ) -> AzureMLMLflowTrackerConfig:
        """Replaces ZenML's check of the same name: a server may need no credentials at all."""
        methods = self._configured_authentication_methods()
        if len(methods) > 1:
            raise ValueError(
                f"MLflow tracking with `{self.tracking_uri}` takes one kind of credentials, "
                f"not {', '.join(methods)}."
            )
        return self

    @model_validator(mode="after")
    def _ensure_server_or_workspace(self) -> AzureMLMLflowTrackerConfig:
        if self.tracking_uri:
            if not self.tracking_uri.startswith(("http://", "https://")):
                raise ValueError(
                    f"tracking_uri {self.tracking_uri!r} is not an http(s) MLflow server; "
                    "leave it unset to use the AzureML workspace's MLflow."
                )
            return self
        missing = [name for name in _WORKSPACE_FIELDS if not getattr(self, name)]
        if missing:
            raise ValueError(
                "Without tracking_uri, the tracker uses an AzureML workspace's MLflow: set "
                + ", ".join(missing)
                + "."
            )
        return self

    @property
    def is_local(self) -> bool:
        """Never local: both the workspace's MLflow and an http(s) server are remote."""
        return False


class AzureMLMLflowTracker(MLFlowExperimentTracker, AuthenticationMixin):
    """ZenML's MLflow tracker, resolving an AzureML workspace's tracking URI when needed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._workspace_tracking_uri: str | None = None

    @property
    def config(self) -> AzureMLMLflowTrackerConfig:
        """The component's configuration."""
        return cast(AzureMLMLflowTrackerConfig, self._config)

    @property
    def validator(self) -> StackValidator | None:
        """None: ZenML's check for a local artifact store applies to local MLflow only."""
        return None

    @property
    def local_path(self) -> str | None:
        """None: the tracking data lives on the server, never on this machine."""
        return None

    def get_tracking_uri(self, as_plain_text: bool = True) -> str:
        """The configured http(s) server, else the AzureML workspace's tracking URI.

        Args:
            as_plain_text: Passed to ZenML's tracker for a configured `tracking_uri`.

        Returns:
            The tracking URI.
        """
        if self.config.tracking_uri:
            return super().get_tracking_uri(as_plain_text=as_plain_text)
        if self._workspace_tracking_uri is None:
            self._export_service_principal()
            self._workspace_tracking_uri = workspace_tracking_uri(
                self.config.subscription_id, self.config.resource_group, self.config.workspace
            )
        return self._workspace_tracking_uri

    def configure_mlflow(self) -> None:
        """Export the service principal, if any, then configure MLflow as ZenML does."""
        self._export_service_principal()
        super().configure_mlflow()

    def _export_service_principal(self) -> None:
        secret = self.get_typed_authentication_secret(AzureSecretSchema)
        if secret is None:
            return
        values = {key: getattr(secret, key) for key in SERVICE_PRINCIPAL_VARIABLES}
        if all(values.values()):
            for key, variable in SERVICE_PRINCIPAL_VARIABLES.items():
                if not os.environ.get(variable):
                    os.environ[variable] = values[key]


def workspace_tracking_uri(subscription_id: str, resource_group: str, workspace: str) -> str:
    """The `azureml://` MLflow tracking URI of an AzureML workspace.

    Args:
        subscription_id: The workspace's subscription.
        resource_group: The workspace's resource group.
        workspace: The workspace's name.

    Returns:
        The URI, as AzureML reports it.
    """
    client = MLClient(
        credential=DefaultAzureCredential(),
        subscription_id=subscription_id,
        resource_group_name=resource_group,
        workspace_name=workspace,
    )
    return client.workspaces.get(workspace).mlflow_tracking_uri


class AzureMLMLflowTrackerFlavor(MLFlowExperimentTrackerFlavor):
    """The `azureml_mlflow` experiment tracker flavor."""

    @property
    def name(self) -> str:
        """The flavor's name."""
        return AZUREML_MLFLOW_FLAVOR

    @property
    def display_name(self) -> str:
        """The flavor's name in the dashboard."""
        return "AzureML MLflow"

    @property
    def config_class(self) -> type[AzureMLMLflowTrackerConfig]:
        """The configuration class."""
        return AzureMLMLflowTrackerConfig

    @property
    def implementation_class(self) -> type[AzureMLMLflowTracker]:
        """The tracker class."""
        return AzureMLMLflowTracker
