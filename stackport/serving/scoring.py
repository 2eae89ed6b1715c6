"""What the AzureML scoring script does, without the AzureML inference server around it.

`Scorer` loads the registered model from `AZUREML_MODEL_DIR` and answers one `/score` request:
the request checks and limits of `stackport.serving.request_checks` (as the bento's), then the
predictions of `stackport.inference.predictor.OnnxPredictor`, each the task plug-in's
`prediction` (as the bento's `/predict` answers). Each predicted text's features go to the
served-input log (`stackport.serving.request_log`, as the bento's) when
`service.request_log.path` names one. `stackport.serving.azureml_entry` is the
`init()`/`run()` around it that the inference server calls; this module needs neither that
server nor torch, so it is tested in the project's environment too.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from stackport.core.settings import ServiceSettings, StrictSettings
from stackport.inference.onnx_model import MANIFEST_FILENAME, OnnxModel
from stackport.inference.predictor import OnnxPredictor, available_cores
from stackport.serving.request_checks import (
    RequestProblem,
    declared_too_large,
    encoding_problem,
    media_type_problem,
    request_model,
    too_large,
    validation_error_body,
)
from stackport.serving.request_log import RequestLog, log_destination

# The scoring code folder's configuration (written by stackport.serving.azureml).
SCORING_CONFIG = Path("configs") / "scoring.json"
WARMUP_TEXT = "Warm-up."
READ_CHUNK_BYTES = 64 * 1024
# The inference server's worker processes (its own variable; 1 unless set).
WORKER_COUNT_VARIABLE = "WORKER_COUNT"


@dataclass(frozen=True)
class ScoringResponse:
    """An answer of `/score`: its status and its JSON body."""

    status: int
    body: Any


class ScoringConfig(StrictSettings):
    """What the scoring code folder was built for: the model version and the service settings."""

    model_name: str
    model_version: str
    service: ServiceSettings


def read_scoring_config(code_root: Path) -> ScoringConfig:
    """The configuration the code folder was built with (`configs/scoring.json`)."""
    return ScoringConfig.model_validate_json((code_root / SCORING_CONFIG).read_text())


def find_model_directory(model_root: Path) -> Path:
    """The folder of the registered model's files under `AZUREML_MODEL_DIR`.

    AzureML mounts a model registered from a folder as `AZUREML_MODEL_DIR/<folder name>/`; a
    model whose files were registered at the root has them in `AZUREML_MODEL_DIR` itself.

    Raises:
        FileNotFoundError: No folder (the root or one below it) holds the model's manifest.
    """
    if (model_root / MANIFEST_FILENAME).is_file():
        return model_root
    found = sorted(path.parent for path in model_root.glob(f"*/{MANIFEST_FILENAME}"))
    if len(found) != 1:
        raise FileNotFoundError(
            f"{model_root} (AZUREML_MODEL_DIR) holds no ONNX model: expected one "
            f"{MANIFEST_FILENAME} in it or in one folder below it, found {len(found)}."
        )
    return found[0]


def read_limited(read: Callable[[int], bytes], limit: int) -> bytes | None:
    """The whole body from `read`, or None as soon as it exceeds `limit` bytes."""
    body = bytearray()
    while chunk := read(READ_CHUNK_BYTES):
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def problem_response(problem: RequestProblem) -> ScoringResponse:
    """A refused request's answer, `{"error": message}` as the bento's middleware answers."""
    return ScoringResponse(problem.status, {"error": problem.message})


class Scorer:
    """The registered model's predictor and the request checks of its settings."""

    def __init__(self, model_root: Path, config: ScoringConfig):
        """Load (and verify) the model, open its session and run one warm-up prediction.

        Args:
            model_root: `AZUREML_MODEL_DIR`.
            config: The model version, and the service settings: request limits, ONNX Runtime
                threads (null: the cores divided among the inference server's workers) and
                the served-input log (none without a path).
        """
        settings = config.service
        model = OnnxModel.load(find_model_directory(model_root))
        workers = int(os.environ.get(WORKER_COUNT_VARIABLE, "1"))
        threads = settings.threads or max(1, available_cores() // workers)
        self.predictor = OnnxPredictor(model, threads=threads)
        self.predictor.predict([WARMUP_TEXT])
        self.limits = settings.limits
        self.request_model = request_model(settings.limits)
        self.request_log: RequestLog | None = None
        if log_destination(settings.request_log):
            self.request_log = RequestLog(
                settings.request_log,
                config.model_name,
                config.model_version,
                model.task,
                self.predictor.tokenizer,
            )

    def score(
        self,
        method: str,
        content_type: str | None,
        content_length: str | None,
        read: Callable[[int], bytes],
    ) -> ScoringResponse:
        """Answer one request: 200 with one prediction per text, or a 4xx naming the problem.

        Args:
            method: The HTTP method; only POST predicts.
            content_type: The Content-Type header, if any.
            content_length: The Content-Length header, if any.
            read: Reads up to that many bytes of the body (b"" at its end).
        """
        if method != "POST":
            return problem_response(RequestProblem(405, f"{method} /score: use POST."))
        problem = media_type_problem(content_type)
        if problem is not None:
            return problem_response(problem)
        body = None
        if not declared_too_large(content_length, self.limits):
            body = read_limited(read, self.limits.max_body_bytes)
        if body is None:
            return problem_response(too_large(self.limits))
        problem = encoding_problem(body)
        if problem is not None:
            return problem_response(problem)
        try:
            request = self.request_model.model_validate_json(body)
        except ValidationError as error:
            return ScoringResponse(400, validation_error_body(error))
        predictions = self.predictor.predict(request.texts)
        if self.request_log is not None:
            self.request_log.record(request.texts, predictions)  # written in the background
        return ScoringResponse(200, [p.model_dump(mode="json") for p in predictions])

    def close(self) -> None:
        """Write the served-input log's queued records and close its file."""
        if self.request_log is not None:
            self.request_log.close()
