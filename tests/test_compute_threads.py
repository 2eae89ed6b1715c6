"""Compute threads: a core each, below the event loop's priority, where that fits."""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from stackport.serving.compute_threads import (
    COMPUTE_NICENESS,
    MAX_NICENESS,
    can_place_threads,
    compute_cores,
    placing_initializer,
)


@pytest.mark.parametrize(
    ("worker", "workers", "batches", "threads", "cores", "expected"),
    [
        (1, 1, 2, 1, [0, 1], [0, 1]),  # the default on 2 cores
        (2, 2, 2, 1, [3, 2, 1, 0], [2, 3]),  # the second worker takes the next cores
        (1, 1, 1, 1, [4, 5], [4]),
        (1, 1, 2, 2, [0, 1, 2, 3], None),  # ONNX Runtime's own threads: not the compute thread
        (1, 2, 2, 1, [0, 1, 2], None),  # more batches than cores
        (3, 2, 1, 1, [0, 1], None),  # a worker index outside the workers
    ],
)
def test_each_batch_thread_gets_a_core_of_its_own_or_none_do(
    worker, workers, batches, threads, cores, expected
):
    assert compute_cores(worker, workers, batches, threads, cores) == expected


@pytest.mark.skipif(not can_place_threads(), reason="pins and renices threads on Linux only")
def test_the_initializer_pins_each_new_thread_and_lowers_its_priority():
    cores = sorted(os.sched_getaffinity(0))[:2]
    seen = {}
    barrier = threading.Barrier(len(cores))

    def placement() -> None:
        barrier.wait(5)  # every thread of the pool exists before any returns
        seen[threading.get_native_id()] = (
            os.sched_getaffinity(0),
            os.getpriority(os.PRIO_PROCESS, threading.get_native_id()),
        )

    main_priority = os.getpriority(os.PRIO_PROCESS, 0)
    with ThreadPoolExecutor(len(cores), initializer=placing_initializer(cores)) as pool:
        for future in [pool.submit(placement) for _ in cores]:
            future.result(10)
    assert sorted(next(iter(affinity)) for affinity, _ in seen.values()) == cores
    assert all(len(affinity) == 1 for affinity, _ in seen.values())
    assert {priority for _, priority in seen.values()} == {
        min(main_priority + COMPUTE_NICENESS, MAX_NICENESS)
    }
    assert os.sched_getaffinity(0) >= set(cores)  # the calling thread stays where it was
