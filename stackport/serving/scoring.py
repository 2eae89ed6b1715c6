"""What the AzureML scoring script does, without the AzureML inference server around it.

`Scorer` loads the registered model from `AZUREML_MODEL_DIR` and answers one `/score` request:
the request checks and limits of `stackport.serving.request_checks` (as the bento's), then the
predictions of `stackport.inference.predictor.OnnxPredictor`, each the task plug-in's
`prediction` (as the bento's `/predict` answers). `stackport.serving.azureml_entry` is the
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

from stackport.core.settings import ServiceSettings
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

# The scoring code folder's copy of the service settings (written by stackport.serving.azureml).
SERVICE_SETTINGS = Path("configs") / "service.json"
WARMUP_TEXT = "Warm-up."
READ_CHUNK_BYTES = 64 * 1024
# The inference server's worker processes (its own variable; 1 unless set).
WORKER_COUNT_VARIABLE = "WORKER_COUNT"


@dataclass(frozen=True)
class ScoringResponse:
    """An answer of `/score`: its status and its JSON body."""

    status: int
    body: Any


def read_scoring_settings(code_root: Path) -> ServiceSettings:
    """The service settings the code folder was built with (`configs/service.json`)."""
    return ServiceSettings.model_validate_json((code_root / SERVICE_SETTINGS).read_text())


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

    def __init__(self, model_root: Path, settings: ServiceSettings):
        """Load (and verify) the model, open its session and run one warm-up prediction.

        Args:
            model_root: `AZUREML_MODEL_DIR`.
            settings: The service settings: request limits and ONNX Runtime threads (null:
                the cores divided among the inference server's workers).
        """
        model = OnnxModel.load(find_model_directory(model_root))
        workers = int(os.environ.get(WORKER_COUNT_VARIABLE, "1"))
        threads = settings.threads or max(1, available_cores() // workers)
        self.predictor = OnnxPredictor(model, threads=threads)
        self.predictor.predict([WARMUP_TEXT])
        self.limits = settings.limits
        self.request_model = request_model(settings.limits)

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
        return ScoringResponse(200, [p.model_dump(mode="json") for p in predictions])
