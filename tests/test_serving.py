"""The bento of a tiny ONNX model under a real `bentoml serve`: predictions, errors and load."""

import asyncio
import json
import socket
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from tiny_onnx import tiny_onnx_model

from service.config import ServiceSettings
from textmodels.bento_build import BentoArchive, build_bento_archive, service_sources, tag_part
from textmodels.inference import OnnxPredictor
from textmodels.local_serving import Deployment, DeploymentSettings, serve_locally, stop
from textmodels.onnx_model import OnnxModel

LIMITS = {"max_texts": 8, "max_text_chars": 2000, "max_body_bytes": 12_000}
FUZZ_EXAMPLES = 60
LOAD_REQUESTS = 2000
LOAD_CLIENTS = 16
LOAD_TIME_LIMIT_S = 240


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def onnx_model(tiny_bert_path: Path, bbc_slice: pd.DataFrame, tmp_path_factory) -> OnnxModel:
    label_names = sorted(bbc_slice["label"].unique())
    return tiny_onnx_model(tiny_bert_path, label_names, tmp_path_factory.mktemp("onnx"))


@pytest.fixture(scope="module")
def bentoml_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bentoml")


@pytest.fixture(scope="module")
def bento(onnx_model: OnnxModel, bentoml_home: Path, tmp_path_factory) -> BentoArchive:
    service = ServiceSettings.model_validate({"limits": LIMITS})
    config = {"parameters": {"service": service.model_dump()}}
    return build_bento_archive(
        onnx_model,
        "Tiny BBC",
        "7",
        {"macro_f1": 0.25},
        config,
        bentoml_home,
        tmp_path_factory.mktemp("bento"),
    )


@pytest.mark.parametrize(
    ("text", "part"),
    [("Tiny BBC", "tiny-bbc"), ("v1.0_rc/2", "v1.0_rc-2"), ("--", "0"), ("A" * 80, "a" * 54)],
)
def test_tag_parts_are_valid_bentoml_tag_names(text, part):
    assert tag_part(text, max_length=54) == part


def test_equal_content_builds_once_under_the_same_tag(
    bento: BentoArchive, onnx_model, bentoml_home, tmp_path
):
    service = ServiceSettings.model_validate({"limits": LIMITS})
    config = {"parameters": {"service": service.model_dump()}}
    again = build_bento_archive(
        onnx_model, "Tiny BBC", "7", {"macro_f1": 0.25}, config, bentoml_home, tmp_path
    )
    assert again.tag == bento.tag
    name, version = bento.tag.split(":")
    stored = [path.name for path in (bentoml_home / "bentos" / name).iterdir() if path.is_dir()]
    assert stored == [version]


@pytest.fixture(scope="module")
def server(bento: BentoArchive, bentoml_home: Path):
    settings = DeploymentSettings(port=free_port(), startup_timeout_s=120)
    deployment = serve_locally(bento, "Tiny BBC", "7", settings, bentoml_home)
    yield deployment
    stop(deployment)


@pytest.fixture(scope="module")
def client(server: Deployment):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def test_bento_holds_the_service_the_model_and_docker_files(bento: BentoArchive):
    with tarfile.open(bento.path) as archive:
        names = {name.removeprefix("./") for name in archive.getnames()}
        requirements = archive.extractfile("./env/python/requirements.txt").read().decode()
    assert bento.tag.startswith("tiny-bbc:7-")
    assert {"env/docker/Dockerfile", "env/docker/entrypoint.sh", "bento.yaml"} <= names
    assert {f"src/{path}" for path in service_sources()} <= names
    assert {"src/configs/deploy.yaml", "src/configs/served_model.json"} <= names
    assert any(name.endswith("/model.onnx") and name.startswith("models/") for name in names)
    packages = {line.split("==")[0].lower() for line in requirements.split()}
    assert packages == {"onnxruntime", "tokenizers", "numpy", "pydantic", "pyyaml", "bentoml"}


def test_service_imports_without_torch_or_transformers(bento: BentoArchive, bentoml_home: Path):
    """The bento's own sources import with torch and transformers made unimportable."""
    output = run_in_bento(
        bento,
        bentoml_home,
        """
        import sys

        class Blocker:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "transformers"):
                    raise ImportError(f"{name} is blocked")

        sys.meta_path.insert(0, Blocker())
        import service.app

        print(service.app.TextModelService.name)
        """,
    )
    assert output == "text_model"


def run_in_bento(bento: BentoArchive, bentoml_home: Path, script: str) -> str:
    """Run a Python script in the stored bento's source directory; its output."""
    name, version = bento.tag.split(":")
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=bentoml_home / "bentos" / name / version / "src",
        env={"BENTOML_HOME": str(bentoml_home), "PATH": ""},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_service_is_ready_only_once_the_session_is_loaded(bento, bentoml_home):
    """`__is_ready__` (behind /readyz) is false while the model loads, `__is_alive__` true."""
    output = run_in_bento(
        bento,
        bentoml_home,
        """
        import threading

        import service.app as app

        opened = threading.Event()
        Predictor = app.OnnxPredictor

        class HeldPredictor(Predictor):
            def __init__(self, *args, **kwargs):
                opened.wait(30)
                super().__init__(*args, **kwargs)

        app.OnnxPredictor = HeldPredictor
        service = app.TextModelService.inner()
        print(service.__is_ready__(), service.__is_alive__())
        opened.set()
        service._loaded.wait(30)
        print(service.__is_ready__(), service.metadata().quantization)
        """,
    )
    assert output.splitlines() == ["False True", "True fp32"]


def test_predictions_equal_the_inference_module(client, onnx_model, bbc_slice):
    texts = ["Shares rose.", *bbc_slice["text"].iloc[::20].str[:1400].tolist()]
    response = client.post("/predict", json={"texts": texts})

    assert response.status_code == 200, response.text
    expected = OnnxPredictor(onnx_model).predict(texts)
    served = response.json()
    assert [item["label"] for item in served] == [p.label for p in expected]
    assert [item["score"] for item in served] == pytest.approx(
        [p.score for p in expected], abs=1e-5
    )


def test_probes_and_metadata(client, server, onnx_model):
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 200
    metadata = client.get("/metadata").json()
    assert metadata == {
        "name": "Tiny BBC",
        "version": "7",
        "task": "classification",
        "labels": onnx_model.label_names,
        "metrics": {"macro_f1": 0.25},
        "quantization": "fp32",
        "max_length": 64,
        "bentoml_model": metadata["bentoml_model"],
    }
    assert metadata["bentoml_model"].startswith("tiny-bbc-onnx:7-")


JSON = {"Content-Type": "application/json"}
# case: (request body, headers, status, words the response must hold)
BAD_REQUESTS = {
    "malformed JSON": (b'{"texts": ["a"', JSON, 400, "Invalid JSON"),
    "not an object": (b'["a"]', JSON, 400, "Input should be an object"),
    "no texts": (b"{}", JSON, 400, "Field required"),
    "texts not a list": (b'{"texts": "a"}', JSON, 400, "valid array"),
    "a text not a string": (b'{"texts": ["a", 3]}', JSON, 400, "valid string"),
    "empty list": (b'{"texts": []}', JSON, 400, "at least 1 item"),
    "too many texts": (json.dumps({"texts": ["a"] * 9}).encode(), JSON, 400, "at most 8 items"),
    "too long a text": (
        json.dumps({"texts": ["a" * 2001]}).encode(),
        JSON,
        400,
        "at most 2000 characters",
    ),
    "invalid UTF-8": (b'{"texts": ["caf\xe9"]}', JSON, 400, "not valid UTF-8"),
    "body too large": (
        json.dumps({"texts": ["a" * 2000] * 8}).encode(),
        JSON,
        413,
        "exceeds the limit of 12000 bytes",
    ),
    "not JSON": (b"texts=a", {"Content-Type": "text/plain"}, 415, "application/json"),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_requests_get_4xx_naming_the_problem(client, case):
    body, headers, status, words = BAD_REQUESTS[case]
    response = client.post("/predict", content=body, headers=headers)
    assert response.status_code == status, response.text
    assert words in response.text


def test_openapi_fuzzing_finds_no_server_errors(server: Deployment):
    """Schemathesis cases (valid and invalid) from the service's OpenAPI document: no 5xx."""
    operation = schemathesis.openapi.from_url(f"{server.url}/docs.json")["/predict"]["POST"]
    strategy = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @given(case=strategy)
    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case) -> None:
        response = case.call(base_url=server.url, timeout=30)
        assert response.status_code < 500, f"{response.status_code}: {response.text}"

    fuzz()


def test_2000_requests_from_16_clients_all_succeed(server: Deployment, bbc_slice):
    texts = bbc_slice["text"].str[:1000].tolist()

    async def load() -> list[int]:
        statuses: list[int] = []
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:

            async def worker(index: int) -> None:
                for number in range(index, LOAD_REQUESTS, LOAD_CLIENTS):
                    body = {"texts": [texts[number % len(texts)]]}
                    statuses.append((await client.post("/predict", json=body)).status_code)

            await asyncio.gather(*(worker(index) for index in range(LOAD_CLIENTS)))
        return statuses

    start = time.monotonic()
    statuses = asyncio.run(asyncio.wait_for(load(), LOAD_TIME_LIMIT_S))
    elapsed = time.monotonic() - start
    assert len(statuses) == LOAD_REQUESTS
    assert set(statuses) == {200}, {status: statuses.count(status) for status in set(statuses)}
    print(f"{LOAD_REQUESTS} requests from {LOAD_CLIENTS} clients in {elapsed:.1f} s")
