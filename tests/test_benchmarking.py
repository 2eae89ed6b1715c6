"""The inference benchmark on a tiny random BERT, kept to a few texts, for every task."""

from pathlib import Path

import pandas as pd
import pytest

from stackport.core.settings import BenchmarkSettings, DataSettings, QuantizationSettings
from stackport.onnx.benchmark import (
    BenchmarkReport,
    model_runtimes,
    run_benchmark,
)
from stackport.onnx.export import export_to_onnx
from stackport.onnx.quantization import quantize_onnx_model
from stackport.tasks.ner import train as ner
from tests.helpers import NER_SENTENCES, tiny_model

SETTINGS = BenchmarkSettings(
    max_texts=10, latency_texts=3, batch_size=4, repeats=2, warmup_batches=1, threads=1
)


def benchmark(
    tiny_bert_path: Path, task: str, frame: pd.DataFrame, label_names: list[str], directory: Path
) -> BenchmarkReport:
    """Export, quantize and benchmark a tiny random model of `task` on `frame`."""
    model = tiny_model(tiny_bert_path, label_names, task=task)
    fp32 = export_to_onnx(model, directory / "fp32", max_length=32)
    int8 = quantize_onnx_model(fp32, directory / "int8", QuantizationSettings())
    runtimes = model_runtimes(model, [fp32, int8], SETTINGS)
    return run_benchmark(runtimes, frame, task, label_names, 32, SETTINGS)


@pytest.fixture(scope="module")
def report(tiny_bert_path: Path, bbc_slice: pd.DataFrame, tmp_path_factory) -> BenchmarkReport:
    label_names = sorted(bbc_slice["label"].unique())
    directory = tmp_path_factory.mktemp("classification")
    return benchmark(tiny_bert_path, "classification", bbc_slice, label_names, directory)


@pytest.fixture(scope="module")
def ner_report(tiny_bert_path: Path, tmp_path_factory) -> BenchmarkReport:
    frame, _ = ner.read_sentences(str(NER_SENTENCES), DataSettings(task="ner"))
    label_names = ner.label_names([frame["label"]])
    directory = tmp_path_factory.mktemp("ner")
    return benchmark(tiny_bert_path, "ner", frame, label_names, directory)


def test_benchmark_measures_every_runtime(report):
    assert [result.runtime for result in report.results] == [
        "pytorch_fp32",
        "onnx_fp32",
        "onnx_dynamic-int8",
    ]
    assert (report.texts, report.latency_texts, report.threads) == (10, 3, 1)
    assert report.metric == "macro_f1"
    for result in report.results:
        assert 0 < result.latency_ms_p50 <= result.latency_ms_p95
        assert result.batch_latency_ms_p50 > 0
        assert result.throughput > 0
        assert 0 <= result.macro_f1 <= 1
        assert set(result.metrics) == {"accuracy", "macro_f1"}
    sizes = {result.runtime: result.size_bytes for result in report.results}
    assert sizes["onnx_dynamic-int8"] < sizes["onnx_fp32"]
    assert sizes["pytorch_fp32"] == pytest.approx(sizes["onnx_fp32"], rel=0.2)  # + graph


def test_fp32_runtimes_agree_on_accuracy(report):
    assert report.result("onnx_fp32").metrics == report.result("pytorch_fp32").metrics


def test_figures_and_markdown_table(report):
    figures = report.figures()
    assert figures["pytorch_fp32"]["speedup_batch1"] == 1.0
    assert figures["pytorch_fp32"]["speedup_batched"] == 1.0
    assert set(figures["onnx_dynamic-int8"]) == {
        "latency_ms_p50",
        "latency_ms_p95",
        "batch_latency_ms_p50",
        "throughput",
        "macro_f1",
        "accuracy",
        "size_bytes",
        "speedup_batch1",
        "speedup_batched",
    }
    lines = report.markdown().splitlines()
    assert lines[0].startswith("| runtime | size (MB) | macro-F1 | batch 1 p50 (ms)")
    assert "batch 4 texts/s" in lines[0]
    assert [line.split(" | ")[0] for line in lines[2:5]] == [
        "| pytorch_fp32",
        "| onnx_fp32",
        "| onnx_dynamic-int8",
    ]
    assert "10 test texts, 3 of them timed one at a time; 2 repeats" in lines[-1]


def test_ner_benchmark_scores_every_runtime_by_entity_f1(ner_report):
    assert ner_report.metric == "entity_f1"
    pytorch = ner_report.result("pytorch_fp32")
    assert set(pytorch.metrics) == {
        "entity_f1",
        "entity_precision",
        "entity_recall",
        "accuracy",
        "macro_f1",
    }
    assert ner_report.result("onnx_fp32").metrics == pytorch.metrics
    assert all(0 <= result.metrics["entity_f1"] <= 1 for result in ner_report.results)
    assert (
        ner_report.figures()["onnx_dynamic-int8"]["entity_f1"]
        == (ner_report.result("onnx_dynamic-int8").metrics["entity_f1"])
    )
    lines = ner_report.markdown().splitlines()
    assert lines[0].startswith("| runtime | size (MB) | entity-F1 |")
    row = lines[4].split(" | ")
    assert row[2] == f"{ner_report.result('onnx_dynamic-int8').metrics['entity_f1']:.4f}"
