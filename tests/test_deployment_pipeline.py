"""`run_deployment` on the local stack: registered tiny model versions → a bento → a server."""

import os
import shutil
import socket
import tarfile
from pathlib import Path

import httpx
import pandas as pd
import psutil
import pytest
import yaml
from click.testing import CliRunner
from zenml import Model, link_artifact_to_model, log_metadata, save_artifact
from zenml.client import Client
from zenml.utils import source_utils

import run
from materializers.bento import default_bentoml_home
from materializers.onnx_model import OnnxModelMaterializer
from pipelines.deployment import (
    DEPLOY_SECTIONS,
    DeploymentFailedError,
    choose_model,
    resolve_deployable,
    run_deployment,
)
from pipelines.run_parameters import validated_sections
from stackport.core.settings import PromotionSettings
from stackport.release.promotion import PromotionEvidence, decide_promotion
from stackport.release.registration import VARIANT_ARTIFACTS
from stackport.serving.bento import BentoArchive
from stackport.serving.container import (
    CONTAINER_ENGINES,
    BaseImageUnavailableError,
    ContainerEngineUnavailableError,
    build_by_hand,
    engine_problem,
    ensure_base_image,
    find_container_engine,
)
from stackport.serving.deployment import Deployment, usage
from stackport.serving.local import record_path, stop
from tests.helpers import free_port, tiny_variants

REPO_ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.integration
MODEL_NAME = "tiny-deploy"
TEXT = "Shares in the airline rose after its profits doubled."


@pytest.fixture(scope="module", autouse=True)
def source_root():
    """ZenML resolves step sources relative to the repository, not pytest's main module."""
    source_utils.set_custom_source_root(str(REPO_ROOT))


def register_version(number: str, variants: list, deployable: str, macro_f1: float) -> None:
    """A model version holding the ONNX variants, with the metadata the training pipeline logs.

    Only `deployable` is deployable; its test macro-F1 is `macro_f1`.
    """
    model = Model(name=MODEL_NAME, version=number)
    recorded = {}
    for onnx_model in variants:
        name = VARIANT_ARTIFACTS[onnx_model.variant]
        artifact = save_artifact(onnx_model, name, materializer=OnnxModelMaterializer)
        link_artifact_to_model(artifact, model=model)
        recorded[str(onnx_model.variant)] = {
            "artifact": str(name),
            "test_metrics": {"macro_f1": macro_f1 if onnx_model.variant == deployable else 0.0},
        }
    onnx = {"deployable": [deployable], "variants": recorded}
    log_metadata(
        {"onnx": onnx, "test_metrics": {"macro_f1": macro_f1 - 0.1}},
        model_name=MODEL_NAME,
        model_version=number,
    )


@pytest.fixture(scope="module")
def registered(tiny_bert_path: Path, bbc_slice: pd.DataFrame, tmp_path_factory) -> str:
    """Version 1 (fp32 deployable) in production; version 2 (dynamic int8) in no stage."""
    label_names = sorted(bbc_slice["label"].unique())
    variants = tiny_variants(tiny_bert_path, label_names, tmp_path_factory.mktemp("variants"))
    client = Client()
    client.create_model(name=MODEL_NAME)
    for _ in range(2):
        client.create_model_version(MODEL_NAME)  # named 1 and 2
    register_version("1", variants, "fp32", 0.31)
    register_version("2", variants, "dynamic-int8", 0.32)
    client.update_model_version(MODEL_NAME, "1", stage="production")
    return MODEL_NAME


@pytest.fixture(scope="module")
def parameters(registered: str) -> dict:
    """configs/deploy.yaml for the tiny model, on a free port, in ZenML's (isolated) config."""
    return {"model": {"name": registered}, "deployment": {"port": free_port()}}


def deploy(parameters: dict, version: str | None = None, **run_options) -> Deployment:
    """What `run.py --pipeline deploy [--model-version VERSION]` does with a config."""
    if version is not None:
        parameters = {**parameters, "model": {**parameters["model"], "version": version}}
    sections = validated_sections(DEPLOY_SECTIONS, parameters, "deployment_pipeline")
    name, _ = choose_model(sections["model"])
    return run_deployment(
        resolve_deployable(name, sections["model"].version),
        sections["service"],
        sections["deployment"],
        run_options=run_options,
    )


@pytest.fixture(scope="module")
def deployments(parameters: dict):
    """The production deployment, then version 2's replacing it; the last is stopped at the end."""
    first = deploy(parameters)
    second = deploy(parameters, version="2")
    yield first, second
    stop(second)


def test_production_version_is_built_deployed_and_recorded(deployments, parameters):
    first, _ = deployments
    version = Client().get_model_version(MODEL_NAME, "1")
    assert first.model_version == "1"
    assert first.url == f"http://127.0.0.1:{parameters['deployment']['port']}"
    assert version.run_metadata["deployment"]["pid"] == first.pid
    assert version.run_metadata["deployment"]["url"] == first.url
    bento = version.get_artifact("bento")
    assert bento.materializer.import_path.endswith("BentoArchiveMaterializer")
    assert bento.run_metadata["bento_tag"] == first.bento_tag
    with tarfile.open(bento.load().path) as archive:
        assert "./env/docker/Dockerfile" in archive.getnames()
    assert f"curl -s -X POST {first.url}/predict" in usage(first)


def test_another_version_replaces_the_earlier_deployment(deployments, parameters):
    first, second = deployments
    assert not psutil.pid_exists(first.pid)
    assert second.url == first.url
    with httpx.Client(base_url=second.url, timeout=30) as client:
        metadata = client.get("/metadata").json()
        response = client.post("/predict", json={"texts": [TEXT]})
    assert (metadata["version"], metadata["variant"]) == ("2", "dynamic-int8")
    assert metadata["variants"] == {"dynamic-int8": {"macro_f1": 0.32}}  # only the deployable
    # The served ONNX model's own test metrics, not the PyTorch model's.
    assert metadata["metrics"] == {"macro_f1": 0.32}
    assert metadata["metrics_of"] == (
        "the dynamic-int8 ONNX variant being served, on the test split of its training run"
    )
    assert response.status_code == 200
    assert response.json()[0]["label"] in metadata["labels"]
    record = record_path(default_bentoml_home(), MODEL_NAME)
    assert Deployment.model_validate_json(record.read_text()) == second


def test_unknown_version_is_refused_naming_it(parameters):
    with pytest.raises(LookupError, match="Model 'tiny-deploy' has no version '9'"):
        deploy(parameters, version="9")


BY_HAND = build_by_hand(BentoArchive("tiny-deploy:1-0", Path("tiny-deploy-1-0.bento.tar")), "img:1")


def test_container_target_without_an_engine_names_each_and_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no engine is installed
    with pytest.raises(ContainerEngineUnavailableError) as raised:
        find_container_engine(None, BY_HAND)
    message = str(raised.value)
    assert "; ".join(f"{engine}: not installed" for engine in CONTAINER_ENGINES) in message
    assert message.endswith(
        "run: bentoml import tiny-deploy-1-0.bento.tar && bentoml containerize tiny-deploy:1-0 "
        "--image-tag img:1"
    )


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker client installed")
def test_a_docker_client_without_an_engine_is_not_usable(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    problem = engine_problem("docker")
    assert problem is not None and problem.startswith("`docker info` failed: ")
    with pytest.raises(ContainerEngineUnavailableError, match="docker: `docker info` failed"):
        find_container_engine("docker", BY_HAND)


WORKING_ENGINES = [engine for engine in CONTAINER_ENGINES if engine_problem(engine) is None]


@pytest.mark.skipif(not WORKING_ENGINES, reason="no container engine works here")
def test_a_base_image_that_cannot_be_pulled_stops_the_build_naming_it():
    """Nothing listens on the registry's port, so the real engine's pull fails everywhere."""
    engine = find_container_engine(None, BY_HAND)
    assert engine == WORKING_ENGINES[0]
    image = f"127.0.0.1:{free_port()}/stackport/missing:1"
    with pytest.raises(BaseImageUnavailableError) as raised:
        ensure_base_image(engine, image, BY_HAND)
    message = str(raised.value)
    assert f"{engine} cannot pull the bento's base image {image} (`{engine} pull {image}`: " in (
        message
    )
    assert "bentoml containerize tiny-deploy:1-0 --image-tag img:1" in message


@pytest.mark.skipif(shutil.which("nerdctl") is not None, reason="nerdctl is installed")
def test_container_target_stops_in_the_deploy_step_with_the_message(deployments, parameters):
    container = {**parameters["deployment"], "target": "container", "container_engine": "nerdctl"}
    with pytest.raises(DeploymentFailedError) as raised:
        deploy({**parameters, "deployment": container}, version="1")
    message = str(raised.value)
    assert "deploy_bento failed: " in message
    assert "none is usable here (nerdctl: not installed)" in message
    build = Client().get_pipeline("deployment_pipeline").last_run.steps["build_bento"]
    tag = build.outputs["bento"][0].run_metadata["bento_tag"]
    assert f"bentoml containerize {tag} --image-tag {tag}" in message


def test_stop_leaves_a_reused_pid_alone():
    """A record whose start time differs from the PID's process names another program."""
    this_process = Deployment(
        model_name=MODEL_NAME,
        model_version="1",
        bento_tag="tiny-deploy:1-0",
        target="local",
        pid=os.getpid(),
        process_started=0.0,
    )
    assert stop(this_process) is False


def test_a_port_taken_by_another_program_is_refused_and_the_server_kept(deployments, parameters):
    _, serving = deployments
    taken = {**parameters, "deployment": {**parameters["deployment"], "port": free_port()}}
    with socket.socket() as other_program:
        other_program.bind(("127.0.0.1", taken["deployment"]["port"]))
        other_program.listen()
        with pytest.raises(DeploymentFailedError, match="deploy_bento failed: .* is in use by"):
            deploy(taken)
    with httpx.Client(base_url=serving.url, timeout=30) as client:
        assert client.get("/readyz").status_code == 200


def test_after_a_remote_build_the_client_deploys(deployments, parameters, monkeypatch):
    """A remote orchestrator only builds the bento; run_deployment serves it on this machine."""
    monkeypatch.setattr("pipelines.deployment.orchestrator_is_local", lambda: False)
    stack_options = {"environment": {"STACKPORT_STACK_OPTION": "deploy"}}  # as run.py passes
    deployment = deploy(parameters, version="1", **stack_options)
    try:
        run = Client().get_pipeline("deployment_pipeline").last_run
        assert set(run.steps) == {"build_bento"}
        assert run.config.environment == stack_options["environment"]
        with httpx.Client(base_url=deployment.url, timeout=30) as client:
            assert client.get("/metadata").json()["version"] == "1"
        metadata = Client().get_model_version(MODEL_NAME, "1").run_metadata
        assert metadata["deployment"]["pid"] == deployment.pid
    finally:
        stop(deployment)


@pytest.fixture(scope="module")
def unpromoted(registered: str) -> str:
    """A model whose only version the promotion gates turned down, as promote_model logs it."""
    name = "tiny-unpromoted"
    Client().create_model(name=name)
    Client().create_model_version(name)
    decision = decide_promotion(
        PromotionEvidence(candidate={"macro_f1": 0.31}, baseline={"macro_f1": 0.5}),
        PromotionSettings(metric="macro_f1"),
    )
    log_metadata(
        {"promotion": {**decision.model_dump(mode="json"), "reason": decision.reason}},
        model_name=name,
        model_version="1",
    )
    return name


def test_no_production_version_says_why_and_what_to_run(unpromoted, parameters, tmp_path):
    config = {"parameters": {**parameters, "model": {"name": unpromoted}}}
    config_file = tmp_path / "deploy.yaml"
    config_file.write_text(yaml.safe_dump(config))
    arguments = ["--pipeline", "deploy", "--stack", "default", "--config", str(config_file)]

    result = CliRunner().invoke(run.main, arguments, catch_exceptions=False)

    assert result.exit_code == 1
    assert (
        "Model 'tiny-unpromoted' has no version in stage 'production': its latest version, 1, "
        "was not promoted: baseline_gap: macro_f1 0.3100 vs TF-IDF baseline 0.5000"
    ) in result.output
    assert (
        "To serve version 1 anyway: python run.py --pipeline deploy --model-name "
        "tiny-unpromoted --model-version latest"
    ) in result.output
    assert "Model: tiny-unpromoted (as configured), version production" in result.output
    assert "Traceback" not in result.output
    with pytest.raises(LookupError, match="no version in the Model Control Plane: train one"):
        deploy({**parameters, "model": {"name": "tiny-never-trained"}})
