"""ASGI middleware that answers 503 with `Retry-After` at once when a worker is overloaded.

A prediction request that the worker cannot finish within the latency budget
(`service.batching.max_latency_ms`) is refused when it arrives, instead of queueing until
its client gives up. The worker's cost per request is learned from the requests it finished:
each one's latency divided by the requests it had to share the worker with (those in flight
when it arrived, and itself), as an exponential moving average. A request arriving with `n`
requests in flight would take about `(n + 1)` times that. Before the first request has
finished, everything is admitted.

The batcher refuses a queued request that has waited longer than the same budget with a 503 of
its own (`stackport.serving.batcher`); this middleware adds the `Retry-After` header to those
too, and the reason the service gave (`explain_refusal`) as their body, where BentoML would
answer any 5xx with "An unexpected error has occurred, please check the server log.": a client
sees one kind of overload answer.
"""

from __future__ import annotations

import json
import math
import time
from contextvars import ContextVar

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Weight of the newest finished request in the cost estimate.
COST_SMOOTHING = 0.1

# The reasons the service gave for refusing the request being answered (see `explain_refusal`).
_refusal_reasons: ContextVar[list[str] | None] = ContextVar("refusal_reasons", default=None)


def explain_refusal(reason: str) -> None:
    """Make `reason` the body of the 503 the current request is about to be answered with."""
    reasons = _refusal_reasons.get()
    if reasons is not None:
        reasons.append(reason)


class CostEstimate:
    """A worker's cost per request, learned from finished requests (see the module)."""

    def __init__(self) -> None:
        self.seconds_per_request: float | None = None

    def finished(self, latency_s: float, shared_with: int) -> None:
        """Learn from a request that took `latency_s` with `shared_with` requests in flight."""
        cost = latency_s / shared_with
        previous = self.seconds_per_request
        self.seconds_per_request = (
            cost if previous is None else previous + COST_SMOOTHING * (cost - previous)
        )

    def wait_s(self, requests: int) -> float:
        """The estimated seconds until `requests` requests are served (0 before any finished)."""
        return 0.0 if self.seconds_per_request is None else requests * self.seconds_per_request


class AdmissionControl:
    """Refuses `paths` requests that could not be served within `budget_s` with a 503."""

    def __init__(self, app: ASGIApp, budget_s: float, paths: tuple[str, ...]):
        self.app = app
        self.budget_s = budget_s
        self.paths = paths
        self.in_flight = 0
        self.cost = CostEstimate()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Admit the request and learn from it, or answer 503 with `Retry-After`."""
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        shared_with = self.in_flight + 1
        wait_s = self.cost.wait_s(shared_with)
        if wait_s > self.budget_s:
            await self._refuse(wait_s, scope, receive, send)
            return
        self.in_flight += 1
        start = time.monotonic()
        reasons: list[str] = []
        token = _refusal_reasons.set(reasons)
        try:
            await self.app(scope, receive, self._explaining_503s(send, reasons))
        finally:
            _refusal_reasons.reset(token)
            self.in_flight -= 1
            self.cost.finished(time.monotonic() - start, shared_with)

    def retry_after_s(self, wait_s: float) -> int:
        """Whole seconds after which the work ahead should fit the budget again (at least 1)."""
        return max(1, math.ceil(wait_s - self.budget_s))

    async def _refuse(self, wait_s: float, scope: Scope, receive: Receive, send: Send) -> None:
        retry_after = self.retry_after_s(wait_s)
        message = (
            f"The service is overloaded: {self.in_flight} requests ahead of this one would take "
            f"about {wait_s:.1f} s, more than its latency budget of {self.budget_s:g} s "
            f"(service.batching.max_latency_ms). Retry after {retry_after} s."
        )
        response = JSONResponse({"error": message}, 503, headers={"Retry-After": str(retry_after)})
        await response(scope, receive, send)

    def _explaining_503s(self, send: Send, reasons: list[str]) -> Send:
        """`send`, adding `Retry-After` to a 503 answer (the batcher's refusals).

        When the service explained the refusal (`explain_refusal`), the reason is the body.
        """
        replaced_body: bytes | None = None

        async def send_explained(message: Message) -> None:
            nonlocal replaced_body
            if message["type"] == "http.response.start" and message["status"] == 503:
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"retry-after" for name, _ in headers):
                    headers.append((b"retry-after", str(self.retry_after_s(0)).encode()))
                if reasons:
                    replaced_body = json.dumps({"error": reasons[-1]}).encode()
                    headers = [
                        (name, value)
                        for name, value in headers
                        if name.lower() != b"content-length"
                    ]
                    headers.append((b"content-length", str(len(replaced_body)).encode()))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and replaced_body is not None:
                if not replaced_body:  # already sent: drop the rest of the generic body
                    return
                message = {**message, "body": replaced_body, "more_body": False}
                replaced_body = b""
            await send(message)

        return send_explained
