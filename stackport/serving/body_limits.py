"""ASGI middleware that refuses oversized, non-JSON and non-UTF-8 request bodies with a 4xx.

It reads the whole body (at most `max_body_bytes`) before the service parses it, so that no
request can make the server buffer more than the limit. The checks and their messages are
`stackport.serving.request_checks`', which the AzureML scoring script runs too.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stackport.core.settings import RequestLimits
from stackport.serving.request_checks import (
    RequestProblem,
    declared_too_large,
    encoding_problem,
    media_type_problem,
    too_large,
)


class RequestBodyLimits:
    """Checks every POST body: size (413), content type (415) and UTF-8 encoding (400)."""

    def __init__(self, app: ASGIApp, limits: RequestLimits):
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on with its body replayed, or answer the error."""
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = {
            key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]
        }
        body = None
        problem = media_type_problem(headers.get("content-type"))
        if problem is None:
            body = await self._read_body(receive, headers.get("content-length"))
            problem = too_large(self.limits) if body is None else encoding_problem(body)
        if problem is not None:
            await _answer(problem, scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read_body(self, receive: Receive, content_length: str | None) -> bytes | None:
        """The whole body, or `None` as soon as it is known to exceed the limit."""
        if declared_too_large(content_length, self.limits):
            return None
        body = bytearray()
        more_body = True
        while more_body:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > self.limits.max_body_bytes:
                return None
            more_body = message.get("more_body", False) and message["type"] == "http.request"
        return bytes(body)


async def _answer(problem: RequestProblem, scope: Scope, receive: Receive, send: Send) -> None:
    """Send the problem as `{"error": message}` with its status."""
    await JSONResponse({"error": problem.message}, problem.status)(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the buffered body once, then waits for the client's disconnect."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
