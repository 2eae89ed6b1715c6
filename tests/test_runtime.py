"""Choosing the ONNX variant a service serves (the fastest here, or a pinned one); its threads."""

import time
from pathlib import Path

import pandas as pd
import pytest

from stackport.core.settings import ServiceSettings
from stackport.inference.runtime import (
    AUTO,
    ROUNDS,
    WARMUP_LENGTHS,
    choose_runtime,
    warmup_texts,
    workload_timings_ms,
)
from tests.helpers import tiny_variants


@pytest.fixture(scope="module")
def variants(tiny_bert_path: Path, bbc_slice: pd.DataFrame, tmp_path_factory) -> dict:
    label_names = sorted(bbc_slice["label"].unique())
    models = tiny_variants(tiny_bert_path, label_names, tmp_path_factory.mktemp("variants"))
    return {str(model.variant): model for model in models}


def test_auto_times_every_variant_and_serves_the_fastest(variants):
    choice = choose_runtime(variants, AUTO, threads=1, batch_size=8)

    assert set(choice.timings_ms) == set(variants)
    assert all(ms > 0 for ms in choice.timings_ms.values())
    assert choice.timings_ms[choice.variant] == min(choice.timings_ms.values())
    assert choice.reason.startswith("least CPU time on this machine's warm-up workload")
    assert choice.predictor.model == variants[choice.variant]
    assert len(choice.predictor.predict(["a text"])) == 1


def test_a_pinned_variant_is_served_without_timing(variants):
    choice = choose_runtime(variants, "static-int8", threads=1, batch_size=8)
    assert (choice.variant, choice.timings_ms) == ("static-int8", {})
    assert choice.reason == "pinned by service.runtime"


def test_pinning_a_variant_the_bento_lacks_is_refused_naming_what_it_has(variants):
    only_fp32 = {"fp32": variants["fp32"]}
    with pytest.raises(ValueError, match="pins dynamic-int8, which this bento does not carry"):
        choose_runtime(only_fp32, "dynamic-int8", threads=1, batch_size=8)


class _TimedPredictor:
    """Predicts nothing; waits (`sleep`) or computes (`spin`) `seconds` per call, logging calls."""

    def __init__(self, name: str, how: str, seconds: float, calls: list[str]):
        self.name, self.how, self.seconds, self.calls = name, how, seconds, calls

    def predict(self, texts: list[str]) -> list[None]:
        self.calls.append(self.name)
        if self.how == "sleep":
            time.sleep(self.seconds)
        else:
            end = time.process_time() + self.seconds
            while time.process_time() < end:
                pass
        return [None] * len(texts)


def test_the_timing_charges_cpu_time_not_waiting_and_takes_the_variants_in_turns():
    calls: list[str] = []
    predictors = {
        "waits": _TimedPredictor("waits", "sleep", 0.004, calls),
        "computes": _TimedPredictor("computes", "spin", 0.001, calls),
    }
    timings = workload_timings_ms(predictors, batch_size=4)

    # Waiting 4 ms a call costs no CPU time; computing 1 ms a call does (5 calls a round).
    assert timings["waits"] < 2 < 4 < timings["computes"]
    per_round = len(WARMUP_LENGTHS) + 1  # each distinct text alone, then the batch
    assert calls[2:] == (["waits"] * per_round + ["computes"] * per_round) * ROUNDS


def test_the_warmup_workload_has_short_and_long_texts():
    texts = warmup_texts(8)
    assert len(texts) == 8
    assert sorted({len(text.split()) for text in texts}) == [8, 24, 48, 96]


@pytest.mark.parametrize(
    ("settings", "cores", "threads"),
    [
        ({}, 2, 1),  # one worker, two batches at a time: a core each
        ({"workers": 2}, 8, 2),
        ({"batching": {"concurrent_batches": 3}}, 2, 1),  # never fewer than one
        ({"threads": 4}, 2, 4),  # pinned
    ],
)
def test_every_batch_predicted_at_once_gets_its_share_of_the_cores(settings, cores, threads):
    assert ServiceSettings.model_validate(settings).threads_per_batch(cores) == threads
