"""The `azure` stack as code: its settings, registration, validation and MLflow tracker flavor.

These tests register the stack in the test session's ZenML store with made-up settings; nothing
reaches Azure (the tracker's `MLClient` is mocked where a test resolves a workspace's URI).
tests/test_azure_simulation.py runs the training pipeline on the stack.
"""

import importlib.metadata
import logging
import os
import tomllib
from pathlib import Path
from unittest import mock

import click
import mlflow
import pytest
import yaml
from click.testing import CliRunner
from zenml.client import Client
from zenml.enums import StackComponentType
from zenml.stack import Stack
from zenml.utils import source_utils

import run
from pipelines.training import training_pipeline
from stacks.azureml_mlflow import AzureMLMLflowTrackerConfig
from stacks.registration import (
    InvalidComponentsError,
    MissingEnvironmentVariablesError,
    load_env_file,
    load_stack_definition,
    register_stack,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
REQUIRED_SETTINGS = {
    "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
    "AZURE_RESOURCE_GROUP": "stackport-rg",
    "AZURE_WORKSPACE": "stackport-ws",
    "AZURE_STORAGE_ACCOUNT": "stackportstore",
    "AZURE_STORAGE_CONTAINER": "stackport",
    "AZURE_CONTAINER_REGISTRY": "stackportacr",
}
OPTIONAL_SETTINGS = [
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_TENANT_ID",
    "STACKPORT_MLFLOW_TRACKING_URI",
]
SERVICE_PRINCIPAL = {
    "AZURE_CLIENT_ID": "11111111-1111-1111-1111-111111111111",
    "AZURE_CLIENT_SECRET": "not-a-real-client-secret",
    "AZURE_TENANT_ID": "22222222-2222-2222-2222-222222222222",
}
WORKSPACE_TRACKING_URI = (
    "azureml://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/00000000-0000-0000-0000-"
    "000000000000/resourceGroups/stackport-rg/providers/Microsoft.MachineLearningServices/"
    "workspaces/stackport-ws"
)


@pytest.fixture(scope="module", autouse=True)
def source_root():
    """Flavor sources resolve relative to the repository, as under `python run.py`."""
    source_utils.set_custom_source_root(str(REPO_ROOT))


@pytest.fixture
def no_settings(monkeypatch):
    """An environment without any of the azure stack's settings."""
    for name in [*REQUIRED_SETTINGS, *OPTIONAL_SETTINGS]:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def settings(no_settings, monkeypatch):
    """The required settings, made up; tests add optional ones."""
    for name, value in REQUIRED_SETTINGS.items():
        monkeypatch.setenv(name, value)
    return REQUIRED_SETTINGS


def _registered() -> dict:
    """Everything registration can write, with update times: stacks, components, secrets."""
    client = Client()
    entities = [
        *client.list_stacks(size=1000).items,
        *client.list_stack_components(size=1000).items,
        *client.list_secrets(size=1000).items,
    ]
    return {(type(entity).__name__, entity.name): entity.updated for entity in entities}


def test_definition_takes_the_settings_and_leaves_unset_options_out(settings):
    definition = load_stack_definition("azure")
    components = {kind: component for kind, component in definition.components.items()}

    assert {kind: c.flavor for kind, c in components.items()} == {
        StackComponentType.ORCHESTRATOR: "azureml",
        StackComponentType.ARTIFACT_STORE: "azure",
        StackComponentType.CONTAINER_REGISTRY: "azure",
        StackComponentType.IMAGE_BUILDER: "local",
        StackComponentType.EXPERIMENT_TRACKER: "azureml_mlflow",
        StackComponentType.DATA_VALIDATOR: "evidently",
    }
    workspace = {
        "subscription_id": settings["AZURE_SUBSCRIPTION_ID"],
        "resource_group": settings["AZURE_RESOURCE_GROUP"],
        "workspace": settings["AZURE_WORKSPACE"],
    }
    assert components[StackComponentType.ORCHESTRATOR].configuration == workspace
    assert components[StackComponentType.ARTIFACT_STORE].configuration == {
        "path": "az://stackport/stackport",
        "authentication_secret": "stackport-azure",
    }
    assert components[StackComponentType.CONTAINER_REGISTRY].configuration == {
        "uri": "stackportacr.azurecr.io"
    }
    tracker = components[StackComponentType.EXPERIMENT_TRACKER].configuration
    assert tracker == {**workspace, "authentication_secret": "stackport-azure"}
    assert definition.secrets == {"stackport-azure": {"account_name": "stackportstore"}}


def test_missing_settings_are_listed_in_one_error_before_anything_is_registered(no_settings):
    before = _registered()

    with pytest.raises(MissingEnvironmentVariablesError) as raised:
        register_stack(load_stack_definition("azure"))

    assert raised.value.names == sorted(REQUIRED_SETTINGS)
    assert ", ".join(sorted(REQUIRED_SETTINGS)) in str(raised.value)
    assert _registered() == before


def test_run_py_without_settings_prints_the_error_and_exits_non_zero(no_settings, tmp_path):
    active = Client().active_stack_model.id
    arguments = ["--pipeline", "train", "--stack", "azure", "--env-file", str(tmp_path / "none")]

    result = CliRunner().invoke(run.main, arguments, catch_exceptions=False)

    assert result.exit_code == 1
    assert result.output.startswith("Error: ")
    assert ", ".join(sorted(REQUIRED_SETTINGS)) in result.output
    assert "config.env.example" in result.output
    assert "Traceback" not in result.output
    assert Client().active_stack_model.id == active


def test_run_py_reports_a_run_that_never_started_without_an_older_runs_summary(
    tmp_path, monkeypatch
):
    # On the azure stack an image build or the AzureML job submission can fail before ZenML
    # creates a run. The submission crosses the network boundary to Azure, which this machine
    # cannot reach, so it is the one part replaced here: the pipeline call raises as it would.
    def submission_refused(**options):
        def submit(**parameters):
            raise RuntimeError("AzureML refused the job: quota exceeded")

        return submit

    monkeypatch.setattr(training_pipeline, "with_options", submission_refused)
    summary_file = tmp_path / "summary.json"

    result = CliRunner().invoke(run.main, ["--summary", str(summary_file)], catch_exceptions=False)

    assert result.exit_code == 1
    assert "Error: No run was created. RuntimeError: AzureML refused the job" in result.output
    assert "Traceback" not in result.output
    assert not summary_file.exists()


def test_run_py_refuses_an_invalid_config_before_any_run(tmp_path):
    config = {"parameters": {"training": {"epochs": "many"}, "data": {"sourse": "x.csv"}}}
    config_file = tmp_path / "train.yaml"
    config_file.write_text(yaml.safe_dump(config))
    summary_file = tmp_path / "summary.json"
    arguments = ["--config", str(config_file), "--summary", str(summary_file)]

    result = CliRunner().invoke(run.main, arguments, catch_exceptions=False)

    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {config_file}: Invalid configuration: ")
    assert "data.sourse: unknown key" in result.output
    assert "training.epochs: Input should be a valid integer" in result.output
    assert "Traceback" not in result.output
    assert not summary_file.exists()


def test_run_py_refuses_an_image_for_the_endpoint_which_runs_no_pipeline(settings, tmp_path):
    active = Client().active_stack_model.id
    arguments = [
        "--pipeline",
        "deploy",
        "--stack",
        "azure",
        "--image",
        "stackportacr.azurecr.io/s:1",
    ]

    try:
        result = CliRunner().invoke(
            run.main, [*arguments, "--env-file", str(tmp_path / "none")], catch_exceptions=False
        )
    finally:
        Client().activate_stack(active)

    assert result.exit_code == 2
    assert "Error: --image: deployment.target azureml runs no pipeline" in result.output
    assert "--config that sets deployment.target: local (or container)" in result.output
    assert "Traceback" not in result.output


def test_a_partial_service_principal_is_refused(settings, monkeypatch):
    monkeypatch.setenv("AZURE_CLIENT_ID", SERVICE_PRINCIPAL["AZURE_CLIENT_ID"])

    with pytest.raises(MissingEnvironmentVariablesError) as raised:
        load_stack_definition("azure")

    assert raised.value.names == ["AZURE_CLIENT_SECRET", "AZURE_TENANT_ID"]
    assert "AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_TENANT_ID: all or none" in str(raised.value)


def test_a_tracking_uri_that_is_no_http_server_is_refused_before_writing(settings, monkeypatch):
    monkeypatch.setenv("STACKPORT_MLFLOW_TRACKING_URI", "file:///tmp/mlruns")
    before = _registered()

    with pytest.raises(InvalidComponentsError) as raised:
        register_stack(load_stack_definition("azure"))

    assert "experiment_tracker 'azureml-mlflow'" in str(raised.value)
    assert "'file:///tmp/mlruns' is not an http(s) MLflow server" in str(raised.value)
    assert _registered() == before


def test_registration_is_idempotent_keeps_secrets_out_and_the_stack_validates(
    settings, monkeypatch, caplog
):
    monkeypatch.setenv("AZURE_STORAGE_KEY", "not-a-real-storage-key")
    for name, value in SERVICE_PRINCIPAL.items():
        monkeypatch.setenv(name, value)
    register_stack(load_stack_definition("azure"))
    first = _registered()

    with caplog.at_level(logging.INFO, logger="stacks.registration"):
        register_stack(load_stack_definition("azure"))

    messages = [r.getMessage() for r in caplog.records if r.name == "stacks.registration"]
    assert len(messages) == 9 and all(m.startswith("Unchanged") for m in messages), messages
    assert _registered() == first
    client = Client()
    flavor = client.get_flavor_by_name_and_type(
        "azureml_mlflow", StackComponentType.EXPERIMENT_TRACKER
    )
    assert flavor.is_custom
    assert flavor.source == "stacks.azureml_mlflow.AzureMLMLflowTrackerFlavor"
    secret = client.get_secret("stackport-azure").secret_values
    assert secret == {
        "account_name": "stackportstore",
        "account_key": "not-a-real-storage-key",
        "client_id": SERVICE_PRINCIPAL["AZURE_CLIENT_ID"],
        "client_secret": SERVICE_PRINCIPAL["AZURE_CLIENT_SECRET"],
        "tenant_id": SERVICE_PRINCIPAL["AZURE_TENANT_ID"],
    }
    stack = client.get_stack("azure")
    configurations = str([c.configuration for found in stack.components.values() for c in found])
    for value in ("not-a-real-storage-key", SERVICE_PRINCIPAL["AZURE_CLIENT_SECRET"]):
        assert value not in configurations
    Stack.from_model(stack).validate()


def test_a_changed_setting_updates_only_what_uses_it(settings, monkeypatch):
    register_stack(load_stack_definition("azure"))
    before = _registered()

    monkeypatch.setenv("AZURE_WORKSPACE", "another-workspace")
    register_stack(load_stack_definition("azure"))

    after = _registered()
    changed = {name for name in after if after[name] != before.get(name)}
    assert changed == {
        ("StackResponse", "azure"),
        ("ComponentResponse", "azureml-orchestrator"),
        ("ComponentResponse", "azureml-mlflow"),
    }


def test_tracker_resolves_the_workspace_mlflow_and_exports_the_service_principal(
    settings, monkeypatch
):
    for name, value in SERVICE_PRINCIPAL.items():
        monkeypatch.setenv(name, value)
    stack = Stack.from_model(Client().get_stack(register_stack(load_stack_definition("azure"))))
    for name in SERVICE_PRINCIPAL:
        monkeypatch.delenv(name)  # as in an AzureML job: the secret is the only source
    tracker = stack.experiment_tracker

    with (
        mock.patch("stacks.azureml_mlflow.MLClient") as ml_client,
        mock.patch.dict(os.environ),
    ):
        ml_client.return_value.workspaces.get.return_value.mlflow_tracking_uri = (
            WORKSPACE_TRACKING_URI
        )
        assert tracker.get_tracking_uri() == WORKSPACE_TRACKING_URI
        tracker.configure_mlflow()
        exported = {name: os.environ.get(name) for name in SERVICE_PRINCIPAL}
        tracking_uri = os.environ["MLFLOW_TRACKING_URI"]
    mlflow.set_tracking_uri("")  # as ZenML's tracker does after a step

    assert ml_client.call_args.kwargs["subscription_id"] == settings["AZURE_SUBSCRIPTION_ID"]
    assert ml_client.call_args.kwargs["resource_group_name"] == settings["AZURE_RESOURCE_GROUP"]
    ml_client.return_value.workspaces.get.assert_called_once_with(settings["AZURE_WORKSPACE"])
    assert tracking_uri == WORKSPACE_TRACKING_URI
    assert exported == SERVICE_PRINCIPAL
    assert tracker.config.is_local is False and tracker.local_path is None
    # azureml-mlflow handles the workspace's azureml:// URIs.
    stores = importlib.metadata.entry_points(group="mlflow.tracking_store")
    assert "azureml" in {entry.name for entry in stores}


@pytest.mark.parametrize(
    "configuration, accepted",
    [
        ({"tracking_uri": "http://127.0.0.1:5000"}, True),
        ({"tracking_uri": "https://mlflow.example.com", "tracking_token": "t"}, True),
        ({"subscription_id": "s", "resource_group": "r", "workspace": "w"}, True),
        ({"tracking_uri": "azureml://westeurope.api.azureml.ms/mlflow/v1.0/x"}, False),
        ({"tracking_uri": "sqlite:///mlflow.db"}, False),
        ({"subscription_id": "s", "workspace": "w"}, False),
    ],
)
def test_tracker_configuration(configuration, accepted):
    if accepted:
        assert AzureMLMLflowTrackerConfig(**configuration).is_local is False
    else:
        with pytest.raises(ValueError):
            AzureMLMLflowTrackerConfig(**configuration)


def test_stack_run_options_come_from_configs_and_pyproject():
    dependencies = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]

    built = run.stack_run_options("azure", image=None)
    prebuilt = run.stack_run_options("azure", image="stackportacr.azurecr.io/stackport:1")

    assert built["settings"]["docker"]["requirements"] == dependencies["dependencies"]
    assert "parent_image" not in built["settings"]["docker"]
    assert built["settings"]["orchestrator.azureml"]["mode"] == "serverless"
    assert built["environment"]["HF_HUB_OFFLINE"] == "1"
    assert prebuilt["settings"]["docker"]["parent_image"] == "stackportacr.azurecr.io/stackport:1"
    assert prebuilt["settings"]["docker"]["skip_build"] is True
    assert run.stack_run_options("local", image=None) == {}
    with pytest.raises(click.UsageError):
        run.stack_run_options("local", image="stackport:1")


def test_env_file_sets_what_the_environment_does_not(tmp_path, monkeypatch):
    monkeypatch.setenv("STACKPORT_TEST_FROM_ENVIRONMENT", "environment")
    monkeypatch.delenv("STACKPORT_TEST_FROM_FILE", raising=False)
    monkeypatch.delenv("STACKPORT_TEST_QUOTED", raising=False)
    monkeypatch.delenv("STACKPORT_TEST_EMPTY", raising=False)
    env_file = tmp_path / "config.env"
    env_file.write_text(
        "# comment\n\nSTACKPORT_TEST_FROM_ENVIRONMENT=file\nexport STACKPORT_TEST_FROM_FILE=file\n"
        "STACKPORT_TEST_QUOTED='a=b;c'\nSTACKPORT_TEST_EMPTY=\n"
    )

    with mock.patch.dict(os.environ):
        load_env_file(env_file)
        values = {
            name: os.environ[name] for name in os.environ if name.startswith("STACKPORT_TEST")
        }

    assert values == {
        "STACKPORT_TEST_FROM_ENVIRONMENT": "environment",
        "STACKPORT_TEST_FROM_FILE": "file",
        "STACKPORT_TEST_QUOTED": "a=b;c",
    }
    env_file.write_text("NOT A SETTING\n")
    with pytest.raises(ValueError, match="config.env:1: expected KEY=VALUE"):
        load_env_file(env_file)


def test_no_step_or_pipeline_code_is_specific_to_azure():
    # The AzureML online endpoint is a deployment target (deployment.target: azureml), chosen
    # by the configuration on any stack: its module, and the dispatch to it, are allowed.
    target = {"azureml_endpoint.py", "deployment.py"}
    sources = [*REPO_ROOT.glob("steps/*.py"), *REPO_ROOT.glob("pipelines/*.py")]

    assert sources
    specific = [path.name for path in sources if "azure" in path.read_text().lower()]
    assert set(specific) - target == set()
