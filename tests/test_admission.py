"""Admission control: an overloaded worker answers 503 with `Retry-After` at once."""

import asyncio
import time

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from stackport.serving.admission import AdmissionControl, CostEstimate, explain_refusal

SERVICE_S = 0.05  # one request's work on the single-worker app below


def test_cost_is_latency_shared_among_the_requests_in_flight():
    cost = CostEstimate()
    assert cost.wait_s(10) == 0.0  # nothing learned yet: admit

    cost.finished(latency_s=0.4, shared_with=4)
    assert cost.seconds_per_request == pytest.approx(0.1)
    assert cost.wait_s(3) == pytest.approx(0.3)

    cost.finished(latency_s=0.2, shared_with=1)
    assert cost.seconds_per_request == pytest.approx(0.1 + 0.1 * (0.2 - 0.1))


def single_worker_app(status: int = 200, reason: str | None = None) -> Starlette:
    """`POST /predict` does `SERVICE_S` of work, one request at a time; `GET /other` too.

    With `reason`, it explains its answer with it, then answers as BentoML answers a 5xx.
    """
    lock = asyncio.Lock()

    async def work(_: Request) -> JSONResponse:
        async with lock:
            await asyncio.sleep(SERVICE_S)
        if reason is not None:
            explain_refusal(reason)
            return JSONResponse({"error": "An unexpected error has occurred."}, status)
        return JSONResponse({"done": True}, status)

    routes = [Route("/predict", work, methods=["POST"]), Route("/other", work, methods=["GET"])]
    return Starlette(routes=routes)


async def burst(app, requests: int, path: str = "/predict", method: str = "POST") -> list:
    """One request alone (the worker learns its cost), then `requests` at once."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await client.request(method, path)

        async def timed() -> tuple[httpx.Response, float]:
            start = time.monotonic()
            response = await client.request(method, path)
            return response, time.monotonic() - start

        return await asyncio.gather(*(timed() for _ in range(requests)))


def test_requests_beyond_the_budget_get_503_with_retry_after_at_once():
    budget_s = 4.5 * SERVICE_S  # about four requests fit
    app = AdmissionControl(single_worker_app(), budget_s=budget_s, paths=("/predict",))

    answers = asyncio.run(burst(app, 12))

    statuses = [response.status_code for response, _ in answers]
    assert set(statuses) == {200, 503}
    assert 3 <= statuses.count(200) <= 5
    for response, seconds in answers:
        if response.status_code == 503:
            assert int(response.headers["Retry-After"]) >= 1
            assert "service.batching.max_latency_ms" in response.json()["error"]
            assert seconds < SERVICE_S  # refused at once, not after waiting
    assert app.in_flight == 0


def test_other_paths_are_not_limited():
    app = AdmissionControl(single_worker_app(), budget_s=SERVICE_S, paths=("/predict",))

    answers = asyncio.run(burst(app, 6, path="/other", method="GET"))

    assert {response.status_code for response, _ in answers} == {200}


def test_a_503_of_the_service_gets_retry_after_too():
    app = AdmissionControl(single_worker_app(status=503), budget_s=10, paths=("/predict",))

    answers = asyncio.run(burst(app, 2))

    assert [response.headers["Retry-After"] for response, _ in answers] == ["1", "1"]


def test_a_503_the_service_explained_answers_with_the_reason():
    reason = "The request waited 5.1 s for the model, more than its latency budget of 5 s."
    app = AdmissionControl(
        single_worker_app(status=503, reason=reason), budget_s=10, paths=("/predict",)
    )

    answers = asyncio.run(burst(app, 2))

    for response, _ in answers:
        assert (response.status_code, response.json()) == (503, {"error": reason})
        assert response.headers["Content-Length"] == str(len(response.content))
        assert response.headers["Retry-After"] == "1"
