"""Greedy batching: whatever queued while the model was busy is predicted as the next batch."""

import asyncio
import threading
import time

import pytest

from stackport.serving.batcher import GreedyBatcher, Overloaded

WAIT_S = 5  # longest a test waits for the batcher's compute thread


class RecordingModel:
    """Predicts `text.upper()`, records each batch, and can hold a batch until released."""

    def __init__(self, hold_first: bool = False, parallel: int = 1):
        self.batches: list[list[str]] = []
        self.started = threading.Event()
        self.release = threading.Event()
        if not hold_first:
            self.release.set()
        self.together = threading.Barrier(parallel) if parallel > 1 else None

    def __call__(self, texts: list[str]) -> list[str]:
        self.batches.append(list(texts))
        self.started.set()
        if self.together is not None:
            self.together.wait(WAIT_S)  # raises unless `parallel` batches run at the same time
        assert self.release.wait(WAIT_S)
        if "boom" in texts:
            raise ValueError("the model failed on this batch")
        return [text.upper() for text in texts]


async def wait_for(event: threading.Event) -> None:
    await asyncio.get_running_loop().run_in_executor(None, event.wait, WAIT_S)


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 4 * WAIT_S))


def test_requests_queued_during_a_batch_are_the_next_batch_in_order():
    model = RecordingModel(hold_first=True)
    batcher = GreedyBatcher(model, max_batch_size=32, budget_s=60)

    async def scenario():
        first = asyncio.create_task(batcher.submit(["a"]))
        await wait_for(model.started)  # the model is busy with ["a"]
        later = [asyncio.create_task(batcher.submit([f"b{n}", f"c{n}"])) for n in range(3)]
        await asyncio.sleep(0.05)
        model.release.set()
        return await first, await asyncio.gather(*later)

    first, later = run(scenario())
    batcher.close()
    assert first == ["A"]
    assert later == [["B0", "C0"], ["B1", "C1"], ["B2", "C2"]]
    assert model.batches == [["a"], ["b0", "c0", "b1", "c1", "b2", "c2"]]


def test_a_lone_request_runs_at_once():
    model = RecordingModel()
    batcher = GreedyBatcher(model, max_batch_size=32, budget_s=60)
    start = time.monotonic()
    assert run(batcher.submit(["x"])) == ["X"]
    assert time.monotonic() - start < 1
    batcher.close()


def test_batches_hold_at_most_max_batch_size_texts_but_a_larger_request_runs_alone():
    model = RecordingModel(hold_first=True)
    batcher = GreedyBatcher(model, max_batch_size=4, budget_s=60)

    async def scenario():
        first = asyncio.create_task(batcher.submit(["a"]))
        await wait_for(model.started)
        sizes = [3, 2, 6, 1]
        later = [
            asyncio.create_task(batcher.submit([f"t{n}-{i}" for i in range(size)]))
            for n, size in enumerate(sizes)
        ]
        await asyncio.sleep(0.05)
        model.release.set()
        await first
        return await asyncio.gather(*later)

    results = run(scenario())
    batcher.close()
    assert [len(result) for result in results] == [3, 2, 6, 1]
    assert [len(batch) for batch in model.batches] == [1, 3, 2, 6, 1]


def test_a_request_that_waited_beyond_the_budget_is_refused_and_the_rest_run():
    model = RecordingModel(hold_first=True)
    batcher = GreedyBatcher(model, max_batch_size=32, budget_s=0.1)

    async def scenario():
        first = asyncio.create_task(batcher.submit(["a"]))
        await wait_for(model.started)
        late = asyncio.create_task(batcher.submit(["waited"]))
        await asyncio.sleep(0.3)  # longer than the budget, while the model is busy
        model.release.set()
        await first
        with pytest.raises(Overloaded, match="latency budget of 0.1 s"):
            await late
        batcher.cost.seconds_per_request = None  # forget the held batch's time: admit the next one
        return await batcher.submit(["fresh"])

    assert run(scenario()) == ["FRESH"]
    batcher.close()
    assert model.batches == [["a"], ["fresh"]]


def test_a_failed_batch_fails_its_requests_only():
    model = RecordingModel(hold_first=True)
    batcher = GreedyBatcher(model, max_batch_size=32, budget_s=60)

    async def scenario():
        first = asyncio.create_task(batcher.submit(["a"]))
        await wait_for(model.started)
        failing = [asyncio.create_task(batcher.submit([text])) for text in ("ok", "boom")]
        await asyncio.sleep(0.05)
        model.release.set()
        await first
        outcomes = await asyncio.gather(*failing, return_exceptions=True)
        return outcomes, await batcher.submit(["after"])

    outcomes, after = run(scenario())
    batcher.close()
    assert all(isinstance(outcome, ValueError) for outcome in outcomes)
    assert after == ["AFTER"]


def test_a_cancelled_request_is_not_predicted():
    model = RecordingModel(hold_first=True)
    batcher = GreedyBatcher(model, max_batch_size=32, budget_s=60)

    async def scenario():
        first = asyncio.create_task(batcher.submit(["a"]))
        await wait_for(model.started)
        gone = asyncio.create_task(batcher.submit(["gone"]))
        kept = asyncio.create_task(batcher.submit(["kept"]))
        await asyncio.sleep(0.05)
        gone.cancel()  # its client disconnected
        await asyncio.sleep(0.05)
        model.release.set()
        await first
        return await kept

    assert run(scenario()) == ["KEPT"]
    batcher.close()
    assert model.batches == [["a"], ["kept"]]


def test_concurrent_batches_run_at_the_same_time():
    model = RecordingModel(parallel=2)  # each batch waits until the other one runs too
    batcher = GreedyBatcher(model, max_batch_size=1, budget_s=60, concurrent_batches=2)

    async def scenario():
        return await asyncio.gather(batcher.submit(["a"]), batcher.submit(["b"]))

    assert run(scenario()) == [["A"], ["B"]]
    batcher.close()
    assert sorted(map(tuple, model.batches)) == [("a",), ("b",)]


def test_a_request_the_queue_ahead_would_delay_beyond_the_budget_is_refused_at_once():
    model = RecordingModel(hold_first=True)
    batcher = GreedyBatcher(model, max_batch_size=32, budget_s=1.0)
    batcher.cost.seconds_per_request = 0.1  # learned from earlier batches

    async def scenario():
        first = asyncio.create_task(batcher.submit(["a"]))
        await wait_for(model.started)
        queued = [asyncio.create_task(batcher.submit([f"q{n}"])) for n in range(10)]
        await asyncio.sleep(0.05)  # 10 texts queued: 1.0 s ahead
        start = time.monotonic()
        with pytest.raises(Overloaded, match="10 texts queued ahead would take about 1.1 s"):
            await batcher.submit(["one too many"])
        refused_after = time.monotonic() - start
        model.release.set()
        await first
        return refused_after, await asyncio.gather(*queued)

    refused_after, answers = run(scenario())
    batcher.close()
    assert refused_after < 0.1
    assert len(answers) == 10
    assert batcher.cost.seconds_per_request is not None
    assert batcher.cost.seconds_per_request < 0.1
