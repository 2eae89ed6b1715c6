"""The inference benchmark on a tiny random BERT, kept to a few texts."""

from pathlib import Path

import pandas as pd
import pytest
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from textmodels.benchmarking import BenchmarkSettings, model_runtimes, run_benchmark
from textmodels.modeling import FineTunedModel
from textmodels.onnx_export import export_to_onnx
from textmodels.quantization import QuantizationSettings, quantize_onnx_model
from textmodels.tasks import Task

SETTINGS = BenchmarkSettings(
    max_texts=10, latency_texts=3, batch_size=4, repeats=2, warmup_batches=1, threads=1
)


@pytest.fixture(scope="module")
def report(tiny_bert_path: Path, bbc_slice: pd.DataFrame, tmp_path_factory):
    label_names = sorted(bbc_slice["label"].unique())
    model = FineTunedModel(
        model=AutoModelForSequenceClassification.from_pretrained(
            tiny_bert_path, num_labels=len(label_names), id2label=dict(enumerate(label_names))
        ),
        tokenizer=AutoTokenizer.from_pretrained(tiny_bert_path),
        task=Task.CLASSIFICATION,
    )
    fp32 = export_to_onnx(model, tmp_path_factory.mktemp("fp32"), max_length=32)
    int8 = quantize_onnx_model(fp32, tmp_path_factory.mktemp("int8"), QuantizationSettings())
    runtimes = model_runtimes(model, fp32, int8, SETTINGS)
    return run_benchmark(runtimes, bbc_slice, label_names, 32, SETTINGS)


def test_benchmark_measures_every_runtime(report):
    assert [result.runtime for result in report.results] == [
        "pytorch_fp32",
        "onnx_fp32",
        "onnx_int8",
    ]
    assert (report.texts, report.latency_texts, report.threads) == (10, 3, 1)
    for result in report.results:
        assert 0 < result.latency_ms_p50 <= result.latency_ms_p95
        assert result.batch_latency_ms_p50 > 0
        assert result.throughput > 0
        assert 0 <= result.macro_f1 <= 1
    sizes = {result.runtime: result.size_bytes for result in report.results}
    assert sizes["onnx_int8"] < sizes["onnx_fp32"]
    assert sizes["pytorch_fp32"] == pytest.approx(sizes["onnx_fp32"], rel=0.2)  # + graph


def test_fp32_runtimes_agree_on_accuracy(report):
    assert report.result("onnx_fp32").macro_f1 == report.result("pytorch_fp32").macro_f1


def test_figures_and_markdown_table(report):
    figures = report.figures()
    assert figures["pytorch_fp32"]["speedup_batch1"] == 1.0
    assert figures["pytorch_fp32"]["speedup_batched"] == 1.0
    assert set(figures["onnx_int8"]) == {
        "latency_ms_p50",
        "latency_ms_p95",
        "batch_latency_ms_p50",
        "throughput",
        "macro_f1",
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
        "| onnx_int8",
    ]
    assert "10 test texts, 3 of them timed one at a time; 2 repeats" in lines[-1]
