"""ONNX export, parity, inference and int8 quantization of a tiny random BERT."""

from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from textmodels.inference import OnnxPredictor, softmax
from textmodels.modeling import FineTunedModel
from textmodels.onnx_export import OnnxParityError, check_parity, export_to_onnx
from textmodels.onnx_model import OnnxModel, QuantizationMode
from textmodels.quantization import (
    QuantizationSettings,
    choose_deployable,
    gate_quantized_model,
    quantize_onnx_model,
)
from textmodels.tasks import Task
from textmodels.tokenization import tokenize_dataset

MAX_LENGTH = 64


def tiny_classifier(tiny_bert_path: Path, label_names: list[str], seed: int) -> FineTunedModel:
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_bert_path,
        num_labels=len(label_names),
        id2label=dict(enumerate(label_names)),
        label2id={name: index for index, name in enumerate(label_names)},
    )
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_path)
    return FineTunedModel(model=model, tokenizer=tokenizer, task=Task.CLASSIFICATION)


@pytest.fixture(scope="module")
def label_names(bbc_slice: pd.DataFrame) -> list[str]:
    return sorted(bbc_slice["label"].unique())


@pytest.fixture(scope="module")
def fine_tuned(tiny_bert_path: Path, label_names: list[str]):
    return tiny_classifier(tiny_bert_path, label_names, seed=0)


@pytest.fixture(scope="module")
def texts(bbc_slice: pd.DataFrame) -> list[str]:
    """Twenty articles, plus a short text so that batches need padding."""
    return ["Shares rose.", *bbc_slice["text"].iloc[::6].tolist()]


@pytest.fixture(scope="module")
def onnx_fp32(fine_tuned, tmp_path_factory) -> OnnxModel:
    return export_to_onnx(fine_tuned, tmp_path_factory.mktemp("fp32"), MAX_LENGTH)


@pytest.fixture(scope="module")
def onnx_int8(onnx_fp32: OnnxModel, tmp_path_factory) -> OnnxModel:
    return quantize_onnx_model(onnx_fp32, tmp_path_factory.mktemp("int8"), QuantizationSettings())


def test_export_writes_a_sealed_fp32_model(onnx_fp32: OnnxModel, label_names: list[str]):
    assert {path.name for path in onnx_fp32.directory.iterdir()} == {
        "model.onnx",
        "tokenizer.json",
        "onnx_model.json",
    }
    assert onnx_fp32.quantization is QuantizationMode.FP32
    assert onnx_fp32.opset == 18
    assert onnx_fp32.inputs == ["input_ids", "attention_mask", "token_type_ids"]
    assert onnx_fp32.outputs == ["logits"]
    assert onnx_fp32.label_names == label_names
    assert onnx_fp32.max_length == MAX_LENGTH
    assert OnnxModel.load(onnx_fp32.directory) == onnx_fp32


def test_export_matches_pytorch_within_the_tolerance(fine_tuned, onnx_fp32, texts):
    difference = check_parity(fine_tuned, onnx_fp32, texts, tolerance=1e-4)
    assert 0 <= difference < 1e-4


def test_parity_check_fails_naming_the_difference(tiny_bert_path, label_names, onnx_fp32, texts):
    other_model = tiny_classifier(tiny_bert_path, label_names, seed=1)
    with pytest.raises(OnnxParityError, match=r"differs .* by up to [0-9.e-]+ .* tolerance 0.0001"):
        check_parity(other_model, onnx_fp32, texts, tolerance=1e-4)


def test_onnx_inference_predicts_like_pytorch(fine_tuned, onnx_fp32, texts, label_names):
    """PyTorch runs on ids tokenized by transformers, ONNX on texts tokenized by `tokenizers`."""
    frame = pd.DataFrame({"text": texts, "label": label_names[0]})
    table = tokenize_dataset({"test": frame}, fine_tuned.tokenizer, MAX_LENGTH).splits["test"]
    expected = softmax(fine_tuned.predict_logits(table))

    predictions = OnnxPredictor(onnx_fp32).predict(texts)

    assert [p.label for p in predictions] == [label_names[i] for i in expected.argmax(axis=-1)]
    assert [p.score for p in predictions] == pytest.approx(expected.max(axis=-1).tolist(), abs=1e-5)


def test_tokenizer_truncates_to_max_length_and_pads_dynamically(fine_tuned, onnx_fp32, texts):
    predictor = OnnxPredictor(onnx_fp32)
    _, short_batch = predictor.encode(texts[:1])
    _, mixed_batch = predictor.encode(texts[:2])

    short_length = len(fine_tuned.tokenizer(texts[0])["input_ids"])
    assert short_batch["input_ids"].shape == (1, short_length)
    assert mixed_batch["input_ids"].shape == (2, MAX_LENGTH)
    assert mixed_batch["attention_mask"][0].sum() == short_length
    assert set(mixed_batch) == {"input_ids", "attention_mask", "token_type_ids"}


def test_external_data_is_exported_sealed_and_quantized(
    fine_tuned, texts, tmp_path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("FORCE_ONNX_EXTERNAL_DATA", "1")  # Optimum's switch, as for >2 GB models
    model = export_to_onnx(fine_tuned, tmp_path / "fp32", MAX_LENGTH)

    assert model.graph_files == ["model.onnx", "model.onnx_data"]
    assert model.size_bytes > (tmp_path / "fp32" / "model.onnx").stat().st_size
    assert set(model.file_sha256) == {"model.onnx", "model.onnx_data", "tokenizer.json"}
    int8 = quantize_onnx_model(model, tmp_path / "int8", QuantizationSettings())
    assert len(OnnxPredictor(int8).predict(texts)) == len(texts)


def test_dynamic_int8_model_is_smaller_and_close(onnx_fp32, onnx_int8, texts):
    assert onnx_int8.quantization is QuantizationMode.DYNAMIC_INT8
    assert onnx_int8.size_bytes < onnx_fp32.size_bytes
    ops = {node.op_type for node in onnx.load(str(onnx_int8.model_path)).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops
    fp32_probabilities = softmax(OnnxPredictor(onnx_fp32).logits(texts))
    int8_probabilities = softmax(OnnxPredictor(onnx_int8).logits(texts))
    np.testing.assert_allclose(int8_probabilities, fp32_probabilities, atol=0.05)


def test_static_int8_keeps_sensitive_ops_in_float(onnx_fp32, texts, tmp_path):
    settings = QuantizationSettings(mode="static-int8", calibration_samples=8)
    model = quantize_onnx_model(onnx_fp32, tmp_path / "int8", settings, texts)

    graph = onnx.load(str(model.model_path)).graph
    producers = {output: node.op_type for node in graph.node for output in node.output}
    assert model.quantization is QuantizationMode.STATIC_INT8
    assert "QuantizeLinear" in producers.values()
    for node in graph.node:
        if node.op_type in ("LayerNormalization", "Softmax", "Erf"):
            assert all(producers.get(name) != "DequantizeLinear" for name in node.input), node.name
    assert len(OnnxPredictor(model).predict(texts)) == len(texts)


def test_gate_keeps_fp32_when_the_drop_is_too_large(onnx_fp32, onnx_int8, bbc_slice):
    """A negative max_metric_drop demands int8 beat fp32 by >1 macro-F1: impossible."""
    settings = QuantizationSettings(max_metric_drop=-1.0)
    report = gate_quantized_model(onnx_fp32, onnx_int8, bbc_slice.head(20), settings)

    assert report.deployable == "fp32"
    assert "exceeds max_metric_drop -1" in report.reason
    assert "fp32 ONNX model stays the deployable one" in report.reason
    assert report.metric == "macro_f1"
    assert report.metric_drop == pytest.approx(report.fp32_metric - report.int8_metric)


@pytest.mark.parametrize(
    ("fp32_metric", "int8_metric", "deployable"),
    [(0.96, 0.958, "int8"), (0.96, 0.955, "int8"), (0.96, 0.954, "fp32"), (0.9, 0.95, "int8")],
)
def test_gate_allows_drops_up_to_max_metric_drop(
    onnx_fp32, onnx_int8, fp32_metric, int8_metric, deployable
):
    report = choose_deployable(
        onnx_fp32, onnx_int8, fp32_metric, int8_metric, QuantizationSettings()
    )
    assert report.deployable == deployable
    assert f"int8 macro_f1 {int8_metric:.4f} vs fp32 {fp32_metric:.4f}" in report.reason
    assert report.int8_size_bytes == onnx_int8.size_bytes
