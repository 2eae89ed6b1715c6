"""Stacks as code: loading, idempotent registration and a real run on the local stack."""

import logging
import os
import textwrap
from pathlib import Path
from unittest import mock

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from zenml import pipeline, step
from zenml.client import Client
from zenml.enums import StackComponentType
from zenml.integrations.registry import integration_registry
from zenml.utils import source_utils

from stacks.registration import (
    FlavorChangeError,
    MissingEnvironmentVariablesError,
    activate_stack,
    load_stack_definition,
    main,
    register_stack,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


@step(experiment_tracker=True)
def log_accuracy() -> float:
    mlflow.log_metric("accuracy", 0.75)
    return 0.75


@pipeline(enable_cache=False)
def tracked_pipeline() -> None:
    log_accuracy()


def _snapshot(stack_name: str) -> dict[str, tuple]:
    """Id and `updated` timestamp of a stack and each of its components, by name."""
    stack = Client().get_stack(stack_name, allow_name_prefix_match=False)
    entities = [stack, *(c for found in stack.components.values() for c in found)]
    return {entity.name: (entity.id, entity.updated) for entity in entities}


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def restore_active_stack():
    """Reactivate the stack that was active before the test."""
    previous = Client().active_stack_model.id
    yield
    Client().activate_stack(previous)


def test_zenml_integrations_installed():
    for name in ("azure", "mlflow", "bentoml", "evidently"):
        assert integration_registry.is_installed(name), name


def test_local_definition():
    definition = load_stack_definition("local")

    assert definition.name == "local"
    assert {kind: (c.name, c.flavor) for kind, c in definition.components.items()} == {
        StackComponentType.ORCHESTRATOR: ("local-orchestrator", "local"),
        StackComponentType.ARTIFACT_STORE: ("local-artifact-store", "local"),
        StackComponentType.EXPERIMENT_TRACKER: ("local-mlflow", "mlflow"),
        StackComponentType.DATA_VALIDATOR: ("evidently", "evidently"),
    }
    assert all(not c.configuration for c in definition.components.values())


def test_registering_twice_changes_nothing(caplog):
    definition = load_stack_definition("local")
    register_stack(definition)
    first = _snapshot("local")

    with caplog.at_level(logging.INFO, logger="stacks.registration"):
        assert register_stack(definition) == "local"

    assert _snapshot("local") == first
    assert len(first) == 5
    messages = [r.getMessage() for r in caplog.records if r.name == "stacks.registration"]
    assert len(messages) == 5 and all(m.startswith("Unchanged") for m in messages)


def _register(path: Path, stack: str, store_configuration: str = "{}", extra: str = "") -> dict:
    """Register a two- or three-component stack from a YAML file and snapshot it."""
    text = f"""
        name: {stack}
        components:
          orchestrator: {{name: {stack}-orchestrator, flavor: local}}
          artifact_store:
            {{name: {stack}-artifacts, flavor: local, configuration: {store_configuration}}}
          {extra}
    """
    register_stack(load_stack_definition(_write(path, text)))
    return _snapshot(stack)


@pytest.mark.usefixtures("restore_active_stack")
def test_changed_configuration_updates_component(tmp_path, monkeypatch):
    monkeypatch.setenv("STACKPORT_TEST_STORE", str(tmp_path))
    source = tmp_path / "changing.yaml"
    before = _register(source, "changing", "{path: '${STACKPORT_TEST_STORE}/a'}")
    Client().activate_stack("changing")
    assert Client().active_stack.artifact_store.config.path == f"{tmp_path}/a"

    after = _register(source, "changing", "{path: '${STACKPORT_TEST_STORE}/b'}")

    store = Client().get_stack_component(StackComponentType.ARTIFACT_STORE, "changing-artifacts")
    assert store.configuration == {"path": f"{tmp_path}/b"}
    assert after["changing-artifacts"][0] == before["changing-artifacts"][0]
    assert after["changing-artifacts"][1] > before["changing-artifacts"][1]
    assert after["changing-orchestrator"] == before["changing-orchestrator"]
    # The stack is touched too, so that ZenML's in-process stack cache is invalidated.
    assert after["changing"][0] == before["changing"][0]
    assert after["changing"][1] > before["changing"][1]
    # The cached active stack, hydrated above, sees the new configuration too.
    assert Client().active_stack.artifact_store.config.path == f"{tmp_path}/b"

    # A key removed from the definition is removed from the component too.
    _register(source, "changing")
    store = Client().get_stack_component(StackComponentType.ARTIFACT_STORE, "changing-artifacts")
    assert store.configuration == {}


def test_component_set_changes_update_the_stack(tmp_path):
    source = tmp_path / "growing.yaml"
    two = _register(source, "growing")
    three = _register(
        source, "growing", extra="experiment_tracker: {name: growing-mlflow, flavor: mlflow}"
    )
    back_to_two = _register(source, "growing")

    assert set(three) == {*two, "growing-mlflow"}
    assert three["growing"][0] == two["growing"][0]
    assert three["growing"][1] > two["growing"][1]
    assert set(back_to_two) == set(two)


def test_missing_environment_variables_are_listed_together(tmp_path, monkeypatch):
    monkeypatch.setenv("STACKPORT_TEST_SET", "set")
    monkeypatch.delenv("STACKPORT_TEST_UNSET_A", raising=False)
    monkeypatch.setenv("STACKPORT_TEST_EMPTY_B", "")
    source = _write(
        tmp_path / "incomplete.yaml",
        """
        name: incomplete
        components:
          orchestrator: {name: incomplete-orchestrator, flavor: local}
          artifact_store:
            name: incomplete-artifacts
            flavor: local
            configuration: {path: '${STACKPORT_TEST_SET}/${STACKPORT_TEST_UNSET_A}'}
          experiment_tracker:
            name: incomplete-mlflow
            flavor: mlflow
            configuration:
              tracking_uri: 'https://${STACKPORT_TEST_EMPTY_B}/${STACKPORT_TEST_UNSET_A}'
        """,
    )

    with pytest.raises(MissingEnvironmentVariablesError) as raised:
        activate_stack(source)

    assert raised.value.names == ["STACKPORT_TEST_EMPTY_B", "STACKPORT_TEST_UNSET_A"]
    assert "STACKPORT_TEST_EMPTY_B, STACKPORT_TEST_UNSET_A" in str(raised.value)
    assert Client().list_stacks(name="incomplete").total == 0
    assert Client().list_stack_components(name="startswith:incomplete").total == 0


def test_flavor_change_is_refused_before_anything_is_written(tmp_path):
    before = _register(tmp_path / "a.yaml", "flavored")
    changed = _write(
        tmp_path / "b.yaml",
        """
        name: flavored
        components:
          orchestrator: {name: flavored-orchestrator, flavor: local_docker}
          artifact_store: {name: flavored-artifacts, flavor: local}
          experiment_tracker: {name: flavored-mlflow, flavor: mlflow}
        """,
    )

    with pytest.raises(FlavorChangeError, match="flavored-orchestrator"):
        register_stack(load_stack_definition(changed))

    assert _snapshot("flavored") == before
    assert Client().list_stack_components(name="flavored-mlflow").total == 0


@pytest.mark.usefixtures("restore_active_stack")
def test_command_line_registers_and_activates(capsys):
    main(["local"])

    assert capsys.readouterr().out.endswith("Active stack: local\n")
    assert Client().active_stack_model.name == "local"


@pytest.mark.usefixtures("restore_active_stack")
def test_local_stack_logs_to_mlflow():
    source_utils.set_custom_source_root(str(REPO_ROOT))
    assert activate_stack("local") == "local"
    stack = Client().active_stack
    tracking_uri = stack.experiment_tracker.get_tracking_uri()
    assert tracking_uri == f"sqlite:///{stack.artifact_store.path}/mlflow.db"

    # ZenML's tracker exports MLFLOW_TRACKING_URI and never unsets it: keep it in this test.
    with mock.patch.dict(os.environ):
        run = tracked_pipeline()

    step_run = run.steps["log_accuracy"]
    assert step_run.outputs["output"][0].load() == 0.75
    mlflow_run = MlflowClient(tracking_uri).get_run(step_run.run_metadata["mlflow_run_id"])
    assert mlflow_run.data.metrics == {"accuracy": 0.75}
    assert mlflow_run.info.run_name == run.name
    experiment = MlflowClient(tracking_uri).get_experiment(mlflow_run.info.experiment_id)
    assert experiment.name == "tracked_pipeline"
    assert experiment.artifact_location == f"file:{stack.artifact_store.path}/mlflow_artifacts"
