"""Latency, throughput, accuracy and size of a model's runtimes on real test texts.

Each runtime (PyTorch fp32, and every ONNX variant) turns texts into predictions end to end:
tokenization (truncation to `max_length`, or windows of it; dynamic padding to the longest
row of the batch), the forward pass and the task's post-processing
(`stackport.inference.predictor.post_process`), and
is scored by the task's metric (macro-F1; entity-F1 for NER). Runtimes are timed in turns
within each repeat, so that changes in the machine's load touch all of them alike.

`depth_latencies` times the base model cut to each depth a hyper-parameter search tries
(`hpo.search_space.num_layers`), on its fp32 ONNX export, the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel
from tqdm.auto import tqdm

from stackport.core.names import EXAMPLE_ID_COLUMN
from stackport.core.plugins import EncodedBatch
from stackport.core.settings import BenchmarkSettings
from stackport.data.tokenization import TokenizedDataset, encode_texts
from stackport.inference.onnx_model import OnnxModel
from stackport.inference.predictor import OnnxPredictor, available_cores, batches, post_process
from stackport.inference.words import Text, texts_and_words
from stackport.onnx.export import export_to_onnx, pytorch_logits, transformers_batch
from stackport.tasks import inference_plugin, training_plugin
from stackport.training.model import FineTunedModel

BASELINE_RUNTIME = "pytorch_fp32"
# Validation texts a depth is timed on (batch 1), and the timed passes over them.
DEPTH_LATENCY_TEXTS = 16
DEPTH_LATENCY_REPEATS = 3
CPU_FLAGS_OF_INTEREST = ("avx512_vnni", "avx_vnni", "amx_int8")


class RuntimeBenchmark(BaseModel):
    """The figures of one runtime.

    Attributes:
        runtime: `pytorch_fp32`, or `onnx_<variant>` (`onnx_fp32`, `onnx_dynamic-int8`, ...).
        latency_ms_p50: Median time to predict one text (batch 1).
        latency_ms_p95: 95th percentile of the same.
        batch_latency_ms_p50: Median time to predict one batch of `batch_size` texts.
        throughput: Texts per second when predicting in batches of `batch_size`.
        macro_f1: Test macro-F1 over the benchmarked texts (every task reports one: over
            classes, labels or entity types).
        size_bytes: Size of the weights (safetensors payload or ONNX graph files).
        metrics: Every test metric of the task over the benchmarked texts, by name
            (`macro_f1` among them).
    """

    runtime: str
    latency_ms_p50: float
    latency_ms_p95: float
    batch_latency_ms_p50: float
    throughput: float
    macro_f1: float
    size_bytes: int
    metrics: dict[str, float]


class BenchmarkReport(BaseModel):
    """The figures of every runtime and the conditions they were measured in.

    `metric` is the task's metric that the table shows (`macro_f1`; `entity_f1` for NER).
    """

    texts: int
    latency_texts: int
    batch_size: int
    repeats: int
    max_length: int
    threads: int
    cpu: str
    results: list[RuntimeBenchmark]
    metric: str = "macro_f1"

    def speedups(self, runtime: str) -> dict[str, float]:
        """How many times faster `runtime` is than PyTorch fp32, at batch 1 and in batches."""
        baseline = self.result(BASELINE_RUNTIME)
        result = self.result(runtime)
        return {
            "speedup_batch1": baseline.latency_ms_p50 / result.latency_ms_p50,
            "speedup_batched": result.throughput / baseline.throughput,
        }

    def result(self, runtime: str) -> RuntimeBenchmark:
        """The figures of one runtime."""
        return next(result for result in self.results if result.runtime == runtime)

    def figures(self) -> dict[str, dict[str, float]]:
        """Per runtime, its figures, metrics and speed-ups as plain numbers (metadata, MLflow)."""
        return {
            result.runtime: {
                **result.model_dump(exclude={"runtime", "metrics"}),
                **result.metrics,
                **self.speedups(result.runtime),
            }
            for result in self.results
        }

    def table(self) -> tuple[list[str], list[list[str]]]:
        """Column names, and one row of formatted figures per runtime."""
        batch = self.batch_size
        columns = [
            "runtime",
            "size (MB)",
            self.metric.replace("_f1", "-F1"),
            "batch 1 p50 (ms)",
            "batch 1 p95 (ms)",
            f"batch {batch} p50 (ms)",
            f"batch {batch} texts/s",
            "speed-up batch 1",
            f"speed-up batch {batch}",
        ]
        rows = []
        for result in self.results:
            speedups = self.speedups(result.runtime)
            rows.append(
                [
                    result.runtime,
                    f"{result.size_bytes / 1e6:.1f}",
                    f"{result.metrics[self.metric]:.4f}",
                    f"{result.latency_ms_p50:.2f}",
                    f"{result.latency_ms_p95:.2f}",
                    f"{result.batch_latency_ms_p50:.1f}",
                    f"{result.throughput:.1f}",
                    f"{speedups['speedup_batch1']:.2f}x",
                    f"{speedups['speedup_batched']:.2f}x",
                ]
            )
        return columns, rows

    def conditions(self) -> str:
        """What was measured, how often, and on which machine."""
        return (
            f"{self.texts} test texts, {self.latency_texts} of them timed one at a time; "
            f"{self.repeats} repeats; max_length {self.max_length}; {self.threads} threads; "
            f"CPU: {self.cpu}"
        )

    def markdown(self) -> str:
        """The figures as a markdown table, with the conditions underneath."""
        columns, rows = self.table()
        lines = [
            "| " + " | ".join(columns) + " |",
            "| --- |" + " ---: |" * (len(columns) - 1),
            *("| " + " | ".join(row) + " |" for row in rows),
        ]
        return "\n".join(lines) + f"\n\n{self.conditions()}.\n"


@dataclass(frozen=True)
class Runtime:
    """A way to turn texts into the task's predictions, named, with the size of its weights."""

    name: str
    predict: Callable[[Sequence[Text]], list[Any]]
    size_bytes: int


def pytorch_runtime(model: FineTunedModel, onnx_model: OnnxModel, threads: int) -> Runtime:
    """The PyTorch model in eager mode; sets torch's (process-wide) intra-op threads.

    Texts are tokenized by the `transformers` tokenizer as `onnx_model` tokenizes them (long
    texts in windows as in training, when it reads several), and the logits post-processed
    with `onnx_model`'s labels and thresholds.
    """
    torch.set_num_threads(threads)
    weights = model.model.state_dict().values()

    word_level = inference_plugin(onnx_model.task).word_level

    def predict(texts: Sequence[Text]) -> list[Any]:
        strings, words = texts_and_words(texts, word_level)
        if words is None and onnx_model.max_windows > 1:
            rows = encode_texts(
                strings, model.tokenizer, onnx_model.max_length, onnx_model.max_windows
            )
            encoded = model.tokenizer.pad(
                {name: rows[name] for name in ("input_ids", "attention_mask")},
                return_tensors="pt",
            )
            batch = EncodedBatch(strings, {}, rows[EXAMPLE_ID_COLUMN])
        else:
            encoded = transformers_batch(model, strings, words, onnx_model.max_length)
            batch = EncodedBatch(
                strings,
                {},
                list(range(len(strings))),
                words=words,
                row_words=None if words is None else [(0, len(spans)) for spans in words],
                row_word_ids=None if words is None else [e.word_ids for e in encoded.encodings],
            )
        return post_process(pytorch_logits(model, encoded), batch, onnx_model)

    return Runtime(
        name=BASELINE_RUNTIME,
        predict=predict,
        size_bytes=sum(tensor.numel() * tensor.element_size() for tensor in weights),
    )


def onnx_runtime(name: str, model: OnnxModel, threads: int) -> Runtime:
    """An ONNX model through `stackport.inference.predictor`, as it is served."""
    return Runtime(
        name=name, predict=OnnxPredictor(model, threads).predict, size_bytes=model.size_bytes
    )


def model_runtimes(
    model: FineTunedModel, variants: Sequence[OnnxModel], settings: BenchmarkSettings
) -> list[Runtime]:
    """PyTorch fp32 and every ONNX variant (`onnx_<variant>`), each on `settings.threads`."""
    threads = settings.threads or available_cores()
    return [
        pytorch_runtime(model, variants[0], threads),
        *(onnx_runtime(f"onnx_{variant.variant}", variant, threads) for variant in variants),
    ]


def run_benchmark(
    runtimes: Sequence[Runtime],
    test_set: pd.DataFrame,
    task: str,
    label_names: Sequence[str],
    max_length: int,
    settings: BenchmarkSettings,
) -> BenchmarkReport:
    """Time every runtime on a sample of test texts and score its predictions.

    Args:
        runtimes: What to compare; one of them must be `pytorch_fp32`, the speed-up baseline.
        test_set: `text`/`label` rows as the task's splits hold them; a seeded sample of
            `settings.max_texts` of them, in random order, is used (splits often keep their
            source's order, sorted by label).
        task: The task; its `report_predictions` scores the runtimes.
        label_names: Label names in the order of the logits.
        max_length: Tokens per text after truncation (recorded in the report).
        settings: How many texts and repeats.

    Returns:
        The report; the metrics are computed from the batched runs' predictions.
    """
    spec = training_plugin(task)
    frame = test_set.sample(n=min(settings.max_texts, len(test_set)), random_state=settings.seed)
    texts = frame["text"].tolist()
    single_texts = texts[: settings.latency_texts]
    text_batches = batches(texts, settings.batch_size)
    latencies: dict[str, list[float]] = {runtime.name: [] for runtime in runtimes}
    batch_latencies: dict[str, list[float]] = {runtime.name: [] for runtime in runtimes}
    predictions: dict[str, list[Any]] = {}
    for runtime in runtimes:
        for batch in text_batches[: settings.warmup_batches]:
            runtime.predict(batch)
    for _ in tqdm(range(settings.repeats), desc="Benchmark rounds", unit="round"):
        for runtime in runtimes:
            latencies[runtime.name] += [_timed(runtime, [text])[0] for text in single_texts]
            timed_batches = [_timed(runtime, batch) for batch in text_batches]
            batch_latencies[runtime.name] += [seconds for seconds, _ in timed_batches]
            predictions[runtime.name] = [item for _, output in timed_batches for item in output]
    results = []
    for runtime in runtimes:
        evaluation = spec.report_predictions(
            runtime.name, "test", frame, list(label_names), predictions[runtime.name]
        )
        results.append(
            RuntimeBenchmark(
                runtime=runtime.name,
                latency_ms_p50=_percentile_ms(latencies[runtime.name], 50),
                latency_ms_p95=_percentile_ms(latencies[runtime.name], 95),
                batch_latency_ms_p50=_percentile_ms(batch_latencies[runtime.name], 50),
                throughput=len(texts) * settings.repeats / sum(batch_latencies[runtime.name]),
                macro_f1=evaluation.metrics["macro_f1"],
                size_bytes=runtime.size_bytes,
                metrics=evaluation.metrics,
            )
        )
    return BenchmarkReport(
        texts=len(texts),
        latency_texts=len(single_texts),
        batch_size=settings.batch_size,
        repeats=settings.repeats,
        max_length=max_length,
        threads=settings.threads or available_cores(),
        cpu=cpu_description(),
        results=results,
        metric=spec.selection_metric,
    )


def depth_latencies(
    base_model: Path, dataset: TokenizedDataset, depths: Sequence[int], workdir: Path
) -> dict[int, float]:
    """Median batch-1 latency (ms) of `base_model` cut to each depth, exported to fp32 ONNX.

    Each depth keeps the base model's first layers under a random head of the dataset's
    task (the head costs nothing next to the layers), is exported into `workdir` and predicts
    the first `DEPTH_LATENCY_TEXTS` validation rows (decoded from their token ids) one at a
    time through `OnnxPredictor` on one thread, as the service predicts a batch. The depths
    are timed in turns within each of `DEPTH_LATENCY_REPEATS` passes, after one untimed pass,
    by the CPU time of each call: on one thread that is its latency on an idle core, and it
    does not grow while other programs hold the cores. (Timed by wall clock on two threads,
    6 layers measured 8.7 ms in one run of the same inputs and 6.5 ms, as fast as 4 layers, in
    the next, and `fastest_within` took 6 layers.) No depth: no figures.
    """
    rows = dataset.splits["validation"].column("input_ids").to_pylist()[:DEPTH_LATENCY_TEXTS]
    runtimes = []
    texts: list[str] = []
    for depth in sorted(set(depths)):
        model = FineTunedModel.with_new_head(
            base_model, dataset.task, dataset.label_names, num_layers=depth
        )
        texts = [model.tokenizer.decode(row, skip_special_tokens=True) for row in rows]
        exported = export_to_onnx(
            model, workdir / f"depth-{depth}", dataset.max_length, max_windows=dataset.max_windows
        )
        runtimes.append((depth, onnx_runtime(f"depth-{depth}", exported, threads=1)))
    for _, runtime in runtimes:
        for text in texts:
            runtime.predict([text])
    seconds: dict[int, list[float]] = {depth: [] for depth, _ in runtimes}
    for _ in range(DEPTH_LATENCY_REPEATS):
        for depth, runtime in runtimes:
            seconds[depth] += [_cpu_timed(runtime, [text]) for text in texts]
    return {depth: _percentile_ms(times, 50) for depth, times in seconds.items()}


def _cpu_timed(runtime: Runtime, texts: Sequence[Text]) -> float:
    """CPU seconds of this process that one call of the runtime takes."""
    start = time.process_time()
    runtime.predict(texts)
    return time.process_time() - start


def _timed(runtime: Runtime, texts: Sequence[Text]) -> tuple[float, list[Any]]:
    """Wall-clock seconds one call of the runtime takes, and its predictions."""
    start = time.perf_counter()
    output = runtime.predict(texts)
    return time.perf_counter() - start, output


def _percentile_ms(seconds: list[float], percentile: int) -> float:
    """A percentile of durations in seconds, in milliseconds."""
    return 1000 * float(np.percentile(seconds, percentile))


def cpu_description() -> str:
    """The CPU model and its int8 dot-product instruction sets, from /proc/cpuinfo if present."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        return "unknown"
    fields = {
        key.strip(): value.strip()
        for key, value in (
            line.split(":", 1) for line in cpuinfo.read_text().splitlines() if ":" in line
        )
    }
    flags = set(fields.get("flags", "").split())
    int8_flags = [flag for flag in CPU_FLAGS_OF_INTEREST if flag in flags]
    name = fields.get("model name", "unknown")
    return f"{name} ({', '.join(int8_flags) or 'no VNNI'})"
