"""What a prediction request may hold, and the checks of its body, for every server of a model.

One definition for the bento (`stackport.serving.service` and the ASGI middleware of
`stackport.serving.body_limits`) and the AzureML scoring script (`stackport.serving.scoring`):
the request is `{"texts": [...]}` with at most `RequestLimits.max_texts` texts of at most
`max_text_chars` characters each, in a UTF-8 JSON body of at most `max_body_bytes` bytes. A
request that breaks a rule gets a 4xx whose message names the rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints, ValidationError, create_model

from stackport.core.settings import RequestLimits

JSON_MEDIA_TYPE = "application/json"
REQUEST_MODEL_NAME = "PredictionRequest"


@dataclass(frozen=True)
class RequestProblem:
    """Why a request is refused: the HTTP status and a message naming the problem."""

    status: int
    message: str


def texts_type(limits: RequestLimits) -> Any:
    """The type of a request's `texts`: 1 to `max_texts` strings of at most `max_text_chars`."""
    text = Annotated[str, StringConstraints(max_length=limits.max_text_chars)]
    return Annotated[list[text], Field(min_length=1, max_length=limits.max_texts)]


def request_model(limits: RequestLimits) -> type[BaseModel]:
    """The model of a whole request body, `{"texts": [...]}`."""
    return create_model(REQUEST_MODEL_NAME, texts=(texts_type(limits), ...))


def media_type_problem(content_type: str | None) -> RequestProblem | None:
    """415 unless the body is JSON; a request without a Content-Type is taken as JSON."""
    media_type = (content_type or JSON_MEDIA_TYPE).split(";")[0].strip()
    if media_type.lower() == JSON_MEDIA_TYPE:
        return None
    return RequestProblem(415, f"Content-Type must be {JSON_MEDIA_TYPE}, not {media_type}.")


def too_large(limits: RequestLimits) -> RequestProblem:
    """413: the body exceeds `max_body_bytes`."""
    return RequestProblem(
        413, f"The request body exceeds the limit of {limits.max_body_bytes} bytes."
    )


def declared_too_large(content_length: str | None, limits: RequestLimits) -> bool:
    """Whether the Content-Length header alone shows that the body exceeds the limit."""
    return (
        content_length is not None
        and content_length.isdigit()
        and int(content_length) > limits.max_body_bytes
    )


def encoding_problem(body: bytes) -> RequestProblem | None:
    """400 unless the body is valid UTF-8, naming the first invalid byte."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as error:
        return RequestProblem(400, f"The request body is not valid UTF-8 (byte {error.start}).")
    return None


def validation_error_body(error: ValidationError) -> dict[str, Any]:
    """A 400 body for a request that does not fit the request model, as BentoML answers it.

    `error` names the count and the model; `detail` lists each problem (its location, type and
    pydantic's message, e.g. "List should have at most 8 items after validation"), without the
    input it was given.
    """
    return {
        "error": f"{error.error_count()} validation error for {error.title}",
        "detail": error.errors(include_context=False, include_input=False),
    }
