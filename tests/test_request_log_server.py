"""The served-input log under a real `bentoml serve`: concurrent load, rotation, a dead path.

A tiny classification model's bento is served three times: with a log whose files rotate every
second, under 16 concurrent clients; with a log path that cannot be written; and with a log on
Azure Blob Storage (`az://`, as on the azure stack), which Azurite emulates.
"""

import asyncio
import os
import shutil
import time
from pathlib import Path
from unittest import mock

import httpx
import pandas as pd
import pytest

from stackport.core.settings import DeploymentSettings, ServiceSettings
from stackport.monitoring.served_inputs import log_files, read_window
from stackport.serving.bento import build_bento_archive
from stackport.serving.local import serve_locally, stop
from tests.azure_simulation import LocalServer, azurite_command, azurite_connection_string
from tests.helpers import free_port, tiny_onnx_model

pytestmark = pytest.mark.integration

MODEL_NAME = "Tiny logged"
VERSION = "4"
CLIENTS = 16
REQUESTS = 800
WAIT_S = 60


@pytest.fixture(scope="module")
def onnx_model(tiny_bert_path, bbc_slice, tmp_path_factory):
    labels = sorted(bbc_slice["label"].unique())
    return tiny_onnx_model(tiny_bert_path, labels, tmp_path_factory.mktemp("onnx"))


def serve(onnx_model, request_log: dict, tmp_path_factory):
    """A server of the model's bento whose service logs to `request_log` (settings)."""
    service = ServiceSettings.model_validate({"request_log": request_log})
    home = tmp_path_factory.mktemp("bentoml")
    bento = build_bento_archive(
        [onnx_model],
        MODEL_NAME,
        VERSION,
        {str(onnx_model.variant): {"macro_f1": 0.25}},
        {"parameters": {"service": service.model_dump()}},
        home,
        tmp_path_factory.mktemp("bento"),
    )
    settings = DeploymentSettings(port=free_port(), startup_timeout_s=120)
    return serve_locally(bento, MODEL_NAME, VERSION, settings, home), home


def send(url: str, bodies: list[dict]) -> list[int]:
    """POST each body to /predict from `CLIENTS` concurrent clients; the statuses."""

    async def load() -> list[int]:
        statuses: list[int] = []
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:

            async def worker(index: int) -> None:
                for number in range(index, len(bodies), CLIENTS):
                    statuses.append(
                        (await client.post("/predict", json=bodies[number])).status_code
                    )

            await asyncio.gather(*(worker(index) for index in range(CLIENTS)))
        return statuses

    return asyncio.run(asyncio.wait_for(load(), 300))


def test_every_text_served_under_load_is_logged_in_rotated_readable_files(
    onnx_model, bbc_slice: pd.DataFrame, tmp_path_factory
):
    folder = tmp_path_factory.mktemp("request-log")
    deployment, _ = serve(
        onnx_model, {"path": str(folder), "max_file_seconds": 0.25}, tmp_path_factory
    )
    articles = bbc_slice["text"].str[:600].tolist()
    # Requests of one and of two texts; each text once, so that each record can be matched.
    bodies = [
        {"texts": [f"{number}: {articles[number % len(articles)]}"] * (1 + number % 2)}
        for number in range(REQUESTS)
    ]
    sent = [text for body in bodies for text in body["texts"]]
    try:
        statuses = send(deployment.url, bodies)
        deadline = time.monotonic() + WAIT_S
        records, window = read_window(str(folder), MODEL_NAME, VERSION, None, None)
        while len(records) < len(sent) and time.monotonic() < deadline:
            time.sleep(1)
            records, window = read_window(str(folder), MODEL_NAME, VERSION, None, None)
    finally:
        stop(deployment)

    assert set(statuses) == {200}
    # The warm-up text is predicted before the log opens: exactly the texts sent are logged.
    assert sorted(records["text"]) == sorted(sent)
    assert records["chars"].tolist() == records["text"].str.len().tolist()
    assert (records["tokens"] > 0).all() and records["unknown_share"].between(0, 1).all()
    assert records["outcomes"].map(len).eq(1).all()
    # Each of the service's two workers that took connections writes files of its own.
    workers = set(records["worker"])
    assert 1 <= len(workers) <= 2
    _, files = log_files(str(folder))
    assert {name for name in workers for file in files if Path(file).name.startswith(name)} == (
        workers
    )
    assert len(files) > 2 * len(workers)  # rotated: more than one file per worker
    assert not list(folder.glob("*.part"))  # every file closed at shutdown
    assert records["time"].is_monotonic_increasing and window.records == len(sent)


def test_an_unwritable_log_path_fails_no_request(onnx_model, tmp_path_factory):
    blocker = tmp_path_factory.mktemp("blocked") / "a-file"
    blocker.write_text("a file where the log's folder would be")
    settings = {"path": str(blocker / "request-log"), "max_file_seconds": 0.5}
    deployment, home = serve(onnx_model, settings, tmp_path_factory)
    bodies = [{"texts": [f"text {number}"]} for number in range(200)]
    try:
        statuses = send(deployment.url, bodies)
        time.sleep(3)  # the writers try their files and drop the records
    finally:
        stop(deployment)

    assert statuses == [200] * len(bodies)
    log = Path(deployment.log_file).read_text() if deployment.log_file else ""
    assert "Request log: dropped" in log and "failed" in log


@pytest.mark.skipif(
    shutil.which("node") is None, reason="node is not installed: Azurite runs on Node.js (>= 20)"
)
def test_a_log_on_azure_blob_storage_is_written_and_read_back(onnx_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("azurite")
    port = free_port()
    azurite = LocalServer(
        "azurite",
        azurite_command(port, root / "blobs"),
        f"http://127.0.0.1:{port}/devstoreaccount1?comp=list",
        root,
        {"PATH": os.environ["PATH"], "HOME": str(root)},
    )
    path = "az://served/request-log"
    bodies = [
        {"texts": [f"blob {number}: a text", f"blob {number}: another"]} for number in range(60)
    ]
    sent = [text for body in bodies for text in body["texts"]]
    # adlfs, in the bento's workers and here, signs in with the emulator's connection string.
    storage = {"AZURE_STORAGE_CONNECTION_STRING": azurite_connection_string(port)}
    try:
        azurite.wait_until_up(120)
        with mock.patch.dict(os.environ, storage):
            deployment, _ = serve(
                onnx_model, {"path": path, "max_file_seconds": 0.5}, tmp_path_factory
            )
            try:
                statuses = send(deployment.url, bodies)
                deadline = time.monotonic() + WAIT_S
                records, _ = read_window(path, MODEL_NAME, VERSION, None, None)
                while len(records) < len(sent) and time.monotonic() < deadline:
                    time.sleep(1)
                    records, _ = read_window(path, MODEL_NAME, VERSION, None, None)
            finally:
                stop(deployment)
            log = Path(deployment.log_file).read_text() if deployment.log_file else ""
            filesystem, files = log_files(path)
            left = filesystem.find("served/request-log")
    finally:
        azurite.stop()

    assert set(statuses) == {200}
    dropped = [line for line in log.splitlines() if "Request log" in line]
    assert sorted(records["text"]) == sorted(sent), dropped[:3]
    assert files and all(file.endswith(".parquet") for file in files)
    assert not [name for name in left if name.endswith(".part")]  # closed at shutdown
