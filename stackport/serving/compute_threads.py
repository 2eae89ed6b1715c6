"""Where a worker's compute threads run: each on a core of its own, below the event loop.

A worker predicts `concurrent_batches` batches at a time, each in a compute thread that runs
ONNX Runtime on one core; its event loop parses, queues and answers the requests in between.
Left to Linux, the threads stack up: measured under 16 clients on 2 cores, each compute
thread waited for a core 18 % of the time and the event loop 20 %, while about 0.3 of the
machine's cores stood idle (the scheduler places a woken thread beside the thread that woke
it, and a core idle for only a moment does not pull it over). Pinned to a core each, and at a
lower priority than the event loop, so that a request is parsed and queued as soon as it
arrives instead of after a batch's time slice, the worker kept more of the cores busy and
served more requests per second (docs/benchmarks.md).

The placement applies only where it fits: on Linux, when each batch has one ONNX Runtime
thread (more would run in ONNX Runtime's own thread pool, not in the compute thread) and the
batches of every worker fit the cores one each.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections.abc import Callable, Collection, Sequence

logger = logging.getLogger(__name__)

# Niceness a compute thread adds to its process's: the event loop, at a higher priority, then
# preempts it on waking.
COMPUTE_NICENESS = 5
MAX_NICENESS = 19


def compute_cores(
    worker: int, workers: int, batches: int, threads_per_batch: int, cores: Collection[int]
) -> list[int] | None:
    """The core of each of worker `worker`'s (1-based) batch threads; `None` when they do not fit.

    Worker `w`'s threads take the `batches` cores after those of workers 1 … w − 1.
    """
    if threads_per_batch != 1 or workers * batches > len(cores) or not 1 <= worker <= workers:
        return None
    first = (worker - 1) * batches
    return sorted(cores)[first : first + batches]


def placing_initializer(cores: Sequence[int]) -> Callable[[], None]:
    """A thread initializer that moves each new thread to the next of `cores`, at lower priority."""
    next_core = itertools.cycle(cores)
    lock = threading.Lock()

    def place_thread() -> None:
        with lock:
            core = next(next_core)
        try:
            os.sched_setaffinity(0, {core})  # 0: the calling thread
            thread = threading.get_native_id()
            niceness = os.getpriority(os.PRIO_PROCESS, thread) + COMPUTE_NICENESS
            os.setpriority(os.PRIO_PROCESS, thread, min(niceness, MAX_NICENESS))
        except OSError as error:  # e.g. a container that forbids it: the thread runs unplaced
            logger.warning("Could not place a compute thread on core %d: %s", core, error)

    return place_thread


def can_place_threads() -> bool:
    """Whether this platform can pin and renice single threads (Linux)."""
    return hasattr(os, "sched_setaffinity") and hasattr(os, "setpriority")
