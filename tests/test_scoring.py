"""The AzureML scoring script's work without the inference server: `Scorer` and its plan.

Under the real inference server, in its own environment, tests/test_online_endpoint.py runs it.
"""

import json

import pytest

from stackport.core.settings import AzureMLSettings, ServiceSettings
from stackport.monitoring.served_inputs import read_window
from stackport.serving.azureml import (
    LOG_ACCOUNT_VARIABLE,
    MissingLogAccountError,
    log_environment,
    plan_deployment,
    write_scoring_code,
)
from stackport.serving.scoring import Scorer, ScoringConfig, read_scoring_config
from tests.helpers import tiny_onnx_model

MODEL_NAME = "tiny-scorer"
VERSION = "4"


@pytest.fixture(scope="module")
def onnx_model(tiny_bert_path, tmp_path_factory):
    return tiny_onnx_model(tiny_bert_path, ["rotten", "fresh"], tmp_path_factory.mktemp("onnx"))


def config(**request_log) -> ScoringConfig:
    service = ServiceSettings.model_validate({"request_log": request_log})
    return ScoringConfig(model_name=MODEL_NAME, model_version=VERSION, service=service)


def score(scorer: Scorer, texts: list[str]):
    body = json.dumps({"texts": texts}).encode()
    chunks = iter([body, b""])
    return scorer.score("POST", "application/json", str(len(body)), lambda _: next(chunks))


def test_scorer_logs_each_scored_text_as_the_bento_does(onnx_model, tmp_path):
    log = tmp_path / "request-log"
    scorer = Scorer(onnx_model.directory, config(path=str(log)))
    texts = [f"review {number}: a fine film" for number in range(5)]

    answers = [score(scorer, texts[:2]), score(scorer, texts[2:])]
    refused = score(scorer, [""] * 1000)
    scorer.close()

    assert [answer.status for answer in answers] == [200, 200]
    assert refused.status == 400
    records, window = read_window(str(log), MODEL_NAME, VERSION, None, None)
    # The warm-up text is scored before the log opens, a refused request never reaches it.
    assert records["text"].tolist() == texts
    predicted = [prediction["label"] for answer in answers for prediction in answer.body]
    assert records["outcomes"].map(list).tolist() == [[label] for label in predicted]
    assert (records["tokens"] > 0).all()


def test_scorer_without_a_log_path_keeps_no_log(onnx_model):
    scorer = Scorer(onnx_model.directory, config(path=None))

    assert score(scorer, ["a fine film"]).status == 200
    assert scorer.request_log is None
    scorer.close()


def test_code_folder_config_names_the_version_it_logs_as(tmp_path):
    written = config(path="az://served/request-log")

    files = write_scoring_code(tmp_path, "classification", written)

    assert read_scoring_config(tmp_path) == written
    assert "stackport/serving/request_log.py" in {str(file) for file in files}


def test_an_azure_log_names_its_account_for_the_managed_identity_and_adds_adlfs(
    onnx_model, tmp_path
):
    path = "az://served/request-log"
    variables = log_environment(path, "stackportdata")

    plan = plan_deployment(
        onnx_model, MODEL_NAME, VERSION, "model", tmp_path, AzureMLSettings(), path, variables
    )

    assert plan.deployment.environment_variables == {LOG_ACCOUNT_VARIABLE: "stackportdata"}
    (pip,) = [item["pip"] for item in plan.environment.conda_file["dependencies"][2:]]
    assert {requirement.split("==")[0] for requirement in pip} >= {"pyarrow", "fsspec", "adlfs"}
    local = plan_deployment(onnx_model, MODEL_NAME, VERSION, "model", tmp_path, AzureMLSettings())
    assert local.deployment.environment_variables == {}
    assert "adlfs" not in json.dumps(local.environment.conda_file)
    assert local.environment.version != plan.environment.version
    assert log_environment(str(tmp_path), None) == {}


def test_an_azure_log_without_a_storage_account_is_one_clear_error():
    with pytest.raises(MissingLogAccountError, match="AZURE_STORAGE_ACCOUNT"):
        log_environment("az://served/request-log", None)
