"""ASGI middleware that refuses oversized, non-JSON and non-UTF-8 request bodies with a 4xx.

It reads the whole body (at most `max_body_bytes`) before the service parses it, so that no
request can make the server buffer more than the limit.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

JSON_MEDIA_TYPE = b"application/json"


class RequestBodyLimits:
    """Checks every POST body: size (413), content type (415) and UTF-8 encoding (400)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int):
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on with its body replayed, or answer the error."""
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        media_type = headers.get(b"content-type", JSON_MEDIA_TYPE).split(b";")[0].strip()
        if media_type.lower() != JSON_MEDIA_TYPE:
            message = f"Content-Type must be application/json, not {media_type.decode('latin-1')}."
            await JSONResponse({"error": message}, 415)(scope, receive, send)
            return
        body = await self._read_body(receive, headers.get(b"content-length"))
        if body is None:
            message = f"The request body exceeds the limit of {self.max_body_bytes} bytes."
            await JSONResponse({"error": message}, 413)(scope, receive, send)
            return
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as error:
            message = f"The request body is not valid UTF-8 (byte {error.start})."
            await JSONResponse({"error": message}, 400)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read_body(self, receive: Receive, content_length: bytes | None) -> bytes | None:
        """The whole body, or `None` as soon as it is known to exceed the limit."""
        if content_length is not None and content_length.isdigit():
            if int(content_length) > self.max_body_bytes:
                return None
        body = bytearray()
        more_body = True
        while more_body:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > self.max_body_bytes:
                return None
            more_body = message.get("more_body", False) and message["type"] == "http.request"
        return bytes(body)


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
