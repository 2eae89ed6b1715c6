"""The bento's BentoML service: `POST /predict` with greedy batching, and `GET /metadata`.

The service predicts through `stackport.inference.predictor.OnnxPredictor`: the response of
each text is the prediction model of the served task's inference plug-in (a label and its
score; labels and their scores; entities with their character spans). The ONNX Runtime
session loads in a background thread: `/livez` answers at once, `/readyz` only once the
session is loaded and warmed up. Concurrent requests are predicted together
(`stackport.serving.batcher`). Each predicted text's features go to the served-input log
(`stackport.serving.request_log`), off the request's path. A request the worker could not
serve within the latency budget is answered 503 with `Retry-After` when it arrives
(`stackport.serving.admission`).
"""

import gc
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import bentoml
from bentoml.exceptions import ServiceUnavailable
from bentoml.validators import ContentType
from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from stackport.inference.onnx_model import OnnxModel
from stackport.inference.predictor import OnnxPredictor, available_cores
from stackport.inference.runtime import RuntimeChoice, choose_runtime
from stackport.serving.admission import AdmissionControl, explain_refusal
from stackport.serving.batcher import GreedyBatcher, Overloaded
from stackport.serving.body_limits import RequestBodyLimits
from stackport.serving.compute_threads import (
    can_place_threads,
    compute_cores,
    placing_initializer,
)
from stackport.serving.request_checks import texts_type
from stackport.serving.request_log import RequestLog, log_destination
from stackport.serving.served_model import ServedModel, read_served_model, read_service_settings
from stackport.tasks import inference_plugin


class RefusalsInOneLine(logging.Filter):
    """Logs a 503 as one warning line with its reason.

    BentoML logs every exception of an API with its traceback; under overload, 503s are
    expected, and a traceback each would bury the log.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite a record of a `ServiceUnavailable` to one line; keep every record."""
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, ServiceUnavailable):
            record.msg, record.args = "Answered 503: %s", (error,)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


# Where BentoML's API server logs an API's exceptions.
logging.getLogger("bentoml._internal.server.http_app").addFilter(RefusalsInOneLine())

SOURCE_ROOT = Path(__file__).resolve().parents[2]
SETTINGS = read_service_settings(SOURCE_ROOT)
SERVED_MODEL = read_served_model(SOURCE_ROOT)
LIMITS = SETTINGS.limits


Texts = texts_type(LIMITS)
Prediction = inference_plugin(SERVED_MODEL.task).prediction
# A declared media type: without one, BentoML derives it from the output's JSON schema, which
# pydantic rebuilds for every response (7 % of a worker's time at 16 clients, profiled).
Predictions = Annotated[list[Prediction], ContentType("application/json")]


class ModelMetadata(BaseModel):
    """What `GET /metadata` answers."""

    name: str
    version: str
    task: str
    labels: list[str]
    thresholds: dict[str, float] | None = Field(
        description="Multi-label classification: each label's probability threshold."
    )
    variant: str = Field(description="The ONNX variant served.")
    runtime: str = Field(description="Why that variant is served.")
    metrics: dict[str, float] = Field(description="The served variant's own test metrics.")
    metrics_of: str = Field(description="Which model and split `metrics` are of.")
    variants: dict[str, dict[str, float]] = Field(
        description="Every deployable variant the bento carries, with its test metrics."
    )
    warmup_ms: dict[str, float] = Field(
        description="Each variant's CPU time for a round of the start-up workload (empty "
        "when pinned)."
    )
    max_length: int = Field(description="Tokens per window of a text.")
    max_windows: int = Field(description="Windows of a long text the prediction reads.")
    bentoml_model: str


@bentoml.service(
    name="text_model",
    workers=SETTINGS.workers,
    traffic={"timeout": SETTINGS.timeout_s},
    logging={"access": {"enabled": SETTINGS.access_log}},
    metrics={"enabled": SETTINGS.metrics},
    # BentoML wraps every request in OpenTelemetry's middleware; excluding every URL skips it.
    tracing={} if SETTINGS.tracing else {"excluded_urls": ".*"},
)
class TextModelService:
    """Predicts with the bento's ONNX model."""

    onnx_model = bentoml.models.BentoModel(SERVED_MODEL.bentoml_model)

    def __init__(self) -> None:
        self.served_model: ServedModel = SERVED_MODEL
        self.runtime: RuntimeChoice | None = None
        self.predictor: OnnxPredictor | None = None
        self.request_log: RequestLog | None = None
        self.load_error: BaseException | None = None
        self._loaded = threading.Event()
        self.threads = SETTINGS.threads_per_batch(available_cores())
        self.batcher = GreedyBatcher(
            self._predict_batch,
            SETTINGS.batching.max_batch_size,
            budget_s=SETTINGS.batching.max_latency_ms / 1000,
            concurrent_batches=SETTINGS.batching.concurrent_batches,
            thread_initializer=self._thread_placement(),
        )
        threading.Thread(target=self._load, name="load-onnx-model", daemon=True).start()

    def _load(self) -> None:
        """Verify every variant's files, choose the variant to serve, and warm it up."""
        try:
            models = {
                variant: OnnxModel.load(Path(self.onnx_model.path) / variant)
                for variant in self.served_model.variants
            }
            self.runtime = choose_runtime(
                models, SETTINGS.runtime, self.threads, SETTINGS.batching.max_batch_size
            )
            self.predictor = self.runtime.predictor
            if log_destination(SETTINGS.request_log):
                self.request_log = RequestLog(
                    SETTINGS.request_log,
                    self.served_model.name,
                    self.served_model.version,
                    self.predictor.model.task,
                    self.predictor.tokenizer,
                )
            # The start-up's objects (BentoML, the sessions' wrappers) are never scanned again:
            # the full collections while serving take a few milliseconds, not a hundred.
            gc.freeze()
        except BaseException as error:
            self.load_error = error
            raise
        finally:
            self._loaded.set()

    def _thread_placement(self) -> Callable[[], None] | None:
        """What pins each compute thread to a core of its own, when configured and it fits."""
        if not (SETTINGS.batching.pin_threads and can_place_threads()):
            return None
        cores = compute_cores(
            bentoml.server_context.worker_index or 1,
            SETTINGS.workers,
            SETTINGS.batching.concurrent_batches,
            self.threads,
            os.sched_getaffinity(0),
        )
        return None if cores is None else placing_initializer(cores)

    def __is_alive__(self) -> bool:
        """False once loading the model failed, so that the process gets restarted."""
        return self.load_error is None

    def __is_ready__(self) -> bool:
        """True once the session is loaded and warmed up."""
        return self.predictor is not None

    def _ready_predictor(self) -> OnnxPredictor:
        """The predictor, waiting for it while it loads."""
        self._loaded.wait(SETTINGS.timeout_s)
        if self.predictor is None:
            raise ServiceUnavailable("The model is not loaded (yet); see /readyz.")
        return self.predictor

    @bentoml.api
    async def predict(self, texts: Texts) -> Predictions:
        """One prediction per text, in order (concurrent requests are predicted together)."""
        try:
            return await self.batcher.submit(texts)
        except (Overloaded, ServiceUnavailable) as error:  # queued too long; model not loaded
            explain_refusal(str(error))
            raise ServiceUnavailable(str(error)) from error

    def _predict_batch(self, texts: list[str]) -> list[Prediction]:
        """The batcher's work, in its compute thread: predict, and log what was predicted."""
        predictions = self._ready_predictor().predict(texts)
        if self.request_log is not None:
            self.request_log.record(texts, predictions)  # queued; written in the background
        return predictions

    @bentoml.on_shutdown
    def close(self) -> None:
        """Finish the batch being predicted, then write the queued log records and close."""
        self.batcher.close()
        if self.request_log is not None:
            self.request_log.close()

    def metadata(self) -> ModelMetadata:
        """The served model: name, version, task, labels, thresholds, variant and metrics."""
        model = self._ready_predictor().model
        variant = self.runtime.variant
        thresholds = None
        if model.thresholds is not None:
            thresholds = dict(zip(model.label_names, model.thresholds, strict=True))
        return ModelMetadata(
            name=self.served_model.name,
            version=self.served_model.version,
            task=model.task,
            labels=model.label_names,
            thresholds=thresholds,
            variant=variant,
            runtime=self.runtime.reason,
            metrics=self.served_model.variants[variant],
            metrics_of=f"the {variant} ONNX variant being served, on the test split of its "
            "training run",
            variants=self.served_model.variants,
            warmup_ms=self.runtime.timings_ms,
            max_length=model.max_length,
            max_windows=model.max_windows,
            bentoml_model=self.served_model.bentoml_model,
        )


async def metadata_endpoint(_: Request) -> JSONResponse:
    """`GET /metadata`; 503 until the model is loaded."""
    service = bentoml.get_current_service()
    if service is None or not service.__is_ready__():
        return JSONResponse({"error": "The model is not loaded (yet); see /readyz."}, 503)
    return JSONResponse(service.metadata().model_dump())


TextModelService.mount_asgi_app(
    Starlette(routes=[Route("/metadata", metadata_endpoint, methods=["GET"])]), path="/"
)
# Checked first: a bad body gets its 4xx, and only a valid request counts against the budget.
TextModelService.add_asgi_middleware(RequestBodyLimits, limits=LIMITS)
TextModelService.add_asgi_middleware(
    AdmissionControl, budget_s=SETTINGS.batching.max_latency_ms / 1000, paths=("/predict",)
)
