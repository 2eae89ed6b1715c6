"""Choosing the ONNX variant to serve: the fastest on the machine the service starts on.

Which variant is fastest depends on the CPU (dynamic int8 pays off with VNNI instructions and
barely without them; static int8 needs good quantized kernels; fp32 with fused ops can win on
short texts), so the service measures instead of assuming: every deployable variant predicts
the same warm-up workload (single texts, then full batches, of short and long texts alike),
and the one with the least total time is served. A variant can also be pinned.
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
SINGLE_ROUNDS = 3
BATCH_ROUNDS = 2


@dataclass(frozen=True)
class RuntimeChoice:
    """The variant served, and why.

    Attributes:
        variant: The variant served.
        predictor: Its predictor, warm.
        reason: Why it was chosen, in one sentence.
        timings_ms: Each variant's time for the warm-up workload (empty when pinned).
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


def workload_ms(predictor: OnnxPredictor, batch_size: int) -> float:
    """Median milliseconds of one round of the warm-up workload: each text alone, one batch."""
    texts = warmup_texts(batch_size)
    predictor.predict(texts)  # the first call allocates; not timed
    rounds = []
    for _ in range(max(SINGLE_ROUNDS, BATCH_ROUNDS)):
        start = time.perf_counter()
        for text in texts[: len(WARMUP_LENGTHS)]:
            predictor.predict([text])
        predictor.predict(texts)
        rounds.append(1000 * (time.perf_counter() - start))
    return statistics.median(rounds)


def choose_runtime(
    models: dict[str, OnnxModel], pinned: str, threads: int, batch_size: int
) -> RuntimeChoice:
    """The variant to serve: `pinned`, or with `auto` the fastest on the warm-up workload.

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
    timings = {
        variant: workload_ms(predictor, batch_size) for variant, predictor in predictors.items()
    }
    fastest = min(timings, key=timings.__getitem__)
    others = ", ".join(
        f"{variant} {ms:.0f} ms" for variant, ms in timings.items() if variant != fastest
    )
    reason = f"fastest on this machine's warm-up workload: {timings[fastest]:.0f} ms"
    if others:
        reason += f" (then {others})"
    return RuntimeChoice(fastest, predictors[fastest], reason, timings)
