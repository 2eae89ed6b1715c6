"""Choosing the ONNX variant to serve: the fastest on the machine the service starts on.

Which variant is fastest depends on the CPU (dynamic int8 pays off with VNNI instructions and
barely without them; static int8 needs good quantized kernels; fp32 with fused ops can win on
short texts), so the service measures instead of assuming: every deployable variant predicts
the same warm-up workload (single texts, then a full batch, of short and long texts alike),
and the one that spends the least CPU time on it is served. A variant can also be pinned.

CPU time, not wall time, and the variants' rounds taken in turns: a worker chooses while
other programs may be busy (the service's other workers time their variants at the same
moment), and wall time charges a variant for the moments it waited for a core. Measured with a
training run holding both cores, timing each variant's rounds by wall clock chose static int8
in 2 of 12 tries, CPU time chose dynamic int8 in all 12 (by about 10 %; docs/benchmarks.md).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from stackport.inference.onnx_model import OnnxModel
from stackport.inference.predictor import OnnxPredictor

AUTO = "auto"
# Words of the warm-up texts: plain English, so that their token counts are close to their
# word counts whatever the tokenizer.
WARMUP_WORDS = "the story of the film is told well and the cast plays it with care".split()
WARMUP_LENGTHS = (8, 24, 48, 96)
ROUNDS = 5


@dataclass(frozen=True)
class RuntimeChoice:
    """The variant served, and why.

    Attributes:
        variant: The variant served.
        predictor: Its predictor, warm.
        reason: Why it was chosen, in one sentence.
        timings_ms: Each variant's CPU time for a round of the warm-up workload (empty when
            pinned).
    """

    variant: str
    predictor: OnnxPredictor
    reason: str
    timings_ms: dict[str, float]


def warmup_texts(batch_size: int) -> list[str]:
    """Texts of `WARMUP_LENGTHS` words, cycled to `batch_size` texts."""
    texts = [
        " ".join(WARMUP_WORDS[index % len(WARMUP_WORDS)] for index in range(length))
        for length in WARMUP_LENGTHS
    ]
    return [texts[index % len(texts)] for index in range(batch_size)]


def workload_cpu_ms(predictor: OnnxPredictor, texts: list[str]) -> float:
    """CPU milliseconds of the process for one round: each distinct text alone, then one batch."""
    start = time.process_time()
    for text in texts[: len(WARMUP_LENGTHS)]:
        predictor.predict([text])
    predictor.predict(texts)
    return 1000 * (time.process_time() - start)


def workload_timings_ms(predictors: dict[str, OnnxPredictor], batch_size: int) -> dict[str, float]:
    """Each predictor's median CPU milliseconds per round, the rounds taken in turns."""
    texts = warmup_texts(batch_size)
    for predictor in predictors.values():
        predictor.predict(texts)  # the first call allocates; not timed
    rounds: dict[str, list[float]] = {variant: [] for variant in predictors}
    for _ in range(ROUNDS):
        for variant, predictor in predictors.items():
            rounds[variant].append(workload_cpu_ms(predictor, texts))
    return {variant: statistics.median(times) for variant, times in rounds.items()}


def choose_runtime(
    models: dict[str, OnnxModel], pinned: str, threads: int, batch_size: int
) -> RuntimeChoice:
    """The variant to serve: `pinned`, or with `auto` the cheapest on the warm-up workload.

    Args:
        models: The deployable variants the service carries, by variant.
        pinned: `auto`, or the variant to serve.
        threads: ONNX Runtime intra-op threads of each predictor.
        batch_size: The service's largest batch (the batched part of the workload).

    Raises:
        ValueError: The pinned variant is not one of `models`.
    """
    if pinned != AUTO:
        if pinned not in models:
            raise ValueError(
                f"service.runtime pins {pinned}, which this bento does not carry as a "
                f"deployable variant (it carries {', '.join(models)})"
            )
        predictor = OnnxPredictor(models[pinned], threads=threads)
        predictor.predict(warmup_texts(1))
        return RuntimeChoice(pinned, predictor, "pinned by service.runtime", {})
    predictors = {
        variant: OnnxPredictor(model, threads=threads) for variant, model in models.items()
    }
    timings = workload_timings_ms(predictors, batch_size)
    cheapest = min(timings, key=timings.__getitem__)
    others = ", ".join(
        f"{variant} {ms:.0f} ms" for variant, ms in timings.items() if variant != cheapest
    )
    reason = f"least CPU time on this machine's warm-up workload: {timings[cheapest]:.0f} ms"
    if others:
        reason += f" (then {others})"
    return RuntimeChoice(cheapest, predictors[cheapest], reason, timings)
