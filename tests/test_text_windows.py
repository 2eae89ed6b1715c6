"""Long texts read as windows of `max_length` tokens: encoding, training, evaluation, inference."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from transformers import AutoTokenizer

from stackport.core.numerics import mean_by_text, softmax
from stackport.data.tokenization import encode_texts, tokenize_dataset
from stackport.inference.onnx_model import OnnxModel
from stackport.inference.predictor import OnnxPredictor
from stackport.onnx.benchmark import pytorch_runtime
from stackport.onnx.export import export_to_onnx
from stackport.tasks import training_plugin
from stackport.tasks.multilabel import train as multilabel
from stackport.training.model import FineTunedModel
from stackport.training.trainer import OneWindowPerExample
from tests.helpers import MAX_LENGTH, tiny_model

MAX_WINDOWS = 3

# The task name and plug-in `tokenize_dataset` takes.
CLASSIFICATION = ("classification", training_plugin("classification"))


@pytest.fixture(scope="module")
def tokenizer(tiny_bert_path: Path):
    return AutoTokenizer.from_pretrained(tiny_bert_path)


@pytest.fixture(scope="module")
def label_names(bbc_slice: pd.DataFrame) -> list[str]:
    return sorted(bbc_slice["label"].unique())


@pytest.fixture(scope="module")
def texts(bbc_slice: pd.DataFrame) -> list[str]:
    """A short text, then articles of 2 to 8 windows, and an empty text."""
    return ["Shares rose.", *bbc_slice["text"].iloc[::12].tolist(), ""]


@pytest.fixture(scope="module")
def classifier(tiny_bert_path: Path, label_names: list[str]):
    return tiny_model(tiny_bert_path, label_names, seed=0)


@pytest.fixture(scope="module")
def windowed_onnx(classifier, tmp_path_factory) -> OnnxModel:
    directory = tmp_path_factory.mktemp("windowed")
    return export_to_onnx(classifier, directory, MAX_LENGTH, max_windows=MAX_WINDOWS)


def test_a_long_text_becomes_consecutive_windows_up_to_max_windows(tokenizer):
    text = " ".join(f"word{i}" for i in range(200))
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    capacity = 16 - 2  # [CLS] and [SEP] in every window

    rows = encode_texts(["short", text], tokenizer, max_length=16, max_windows=MAX_WINDOWS)

    assert rows["example_id"] == [0, 1, 1, 1]
    windows = rows["input_ids"][1:]
    assert all(w[0] == tokenizer.cls_token_id and w[-1] == tokenizer.sep_token_id for w in windows)
    assert [token for w in windows for token in w[1:-1]] == ids[: MAX_WINDOWS * capacity]
    # Full windows count their own tokens; the last counts every token left: the text was cut.
    assert rows["num_tokens"] == [3, 16, 16, len(ids) + 2 - 2 * capacity]


def test_truncation_rate_counts_texts_cut_after_their_last_window(tokenizer):
    fits_in_two = " ".join(["the"] * 20)  # 20 tokens: two windows of 14
    too_long = " ".join(["the"] * 100)
    frame = pd.DataFrame({"text": ["short", fits_in_two, too_long], "label": ["a", "b", "a"]})

    dataset = tokenize_dataset(
        {"train": frame}, tokenizer, *CLASSIFICATION, 16, max_windows=MAX_WINDOWS
    )

    assert dataset.splits["train"].column("example_id").to_pylist() == [0, 1, 1, 2, 2, 2]
    assert dataset.splits["train"].column("labels").to_pylist() == [0, 1, 1, 0, 0, 0]
    assert dataset.example_count("train") == 3
    assert dataset.truncation_rate("train") == pytest.approx(1 / 3)
    assert dataset.label_counts("train") == {"a": 4, "b": 2}  # rows, as the loss sees them


def test_training_draws_one_window_of_every_text_per_epoch_by_seed_and_epoch_alone(
    tokenizer, texts
):
    frame = pd.DataFrame({"text": ["short", texts[1]], "label": ["a", "b"]})
    table = tokenize_dataset(
        {"train": frame}, tokenizer, *CLASSIFICATION, 16, max_windows=MAX_WINDOWS
    ).splits["train"]
    rows = table.select(["input_ids", "attention_mask", "labels"]).to_pylist()
    dataset = OneWindowPerExample(table, seed=1)

    def epoch_draws(dataset, epoch):
        dataset.set_epoch(epoch)
        return [dataset[1], dataset[1]]

    drawn = [epoch_draws(dataset, epoch) for epoch in range(30)]

    assert len(dataset) == 2
    assert dataset[0] == rows[0]
    assert all(first == second and first in rows[1:] for first, second in drawn)
    assert len({tuple(first["input_ids"]) for first, _ in drawn}) > 1  # anew every epoch
    # A resumed training draws epoch 17's windows as the killed one did, whatever came before.
    again = OneWindowPerExample(table, seed=1)
    assert epoch_draws(again, 17) == drawn[17]
    assert [epoch_draws(again, epoch) for epoch in range(30)] == drawn


def test_evaluation_scores_each_text_by_the_mean_of_its_windows(tokenizer):
    frame = pd.DataFrame({"text": ["short", " ".join(["the"] * 30)], "label": ["a", "b"]})
    table = tokenize_dataset(
        {"test": frame}, tokenizer, *CLASSIFICATION, 16, max_windows=MAX_WINDOWS
    ).splits["test"]
    assert table.column("example_id").to_pylist() == [0, 1, 1, 1]
    # Text 1: window 0 says "a" strongly, windows 1 and 2 say "b" a little more in sum.
    logits = np.array([[2.0, 0.0], [3.0, 0.0], [0.0, 1.6], [0.0, 1.6]])

    report = training_plugin("classification").report("m", "test", ["a", "b"], logits, table, None)

    assert report.metrics["accuracy"] == 1.0


def test_multilabel_thresholds_are_tuned_on_the_mean_of_each_texts_windows(tokenizer):
    frame = pd.DataFrame({"text": ["short", " ".join(["the"] * 30)], "label": [["a"], ["b"]]})
    table = tokenize_dataset(
        {"test": frame},
        tokenizer,
        "multilabel",
        training_plugin("multilabel"),
        16,
        max_windows=MAX_WINDOWS,
    ).splits["test"]
    logits = np.array([[2.0, -2.0], [-2.0, 0.0], [-2.0, 2.0], [-2.0, 1.0]])
    text_probabilities = expit(np.array([[2.0, -2.0], [-2.0, 1.0]]))

    thresholds = multilabel.tune_thresholds(logits, table)
    report = multilabel.report("m", "test", ["a", "b"], logits, table, thresholds)

    assert report.metrics["accuracy"] == 1.0
    assert (text_probabilities >= thresholds).tolist() == [[True, False], [False, True]]


def test_mean_by_text_averages_the_rows_of_each_text():
    rows = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 8.0]], dtype=np.float32)
    means = mean_by_text(rows, [0, 1, 1], 2)
    assert means.dtype == np.float32
    assert means.tolist() == [[1.0, 2.0], [4.0, 6.0]]


def test_onnx_reads_the_windows_training_reads_and_predicts_their_mean(
    classifier, windowed_onnx, texts, label_names
):
    """PyTorch runs on the training encoding's windows, ONNX on the `tokenizers` windows."""
    frame = pd.DataFrame({"text": texts, "label": label_names[0]})
    table = tokenize_dataset(
        {"test": frame}, classifier.tokenizer, *CLASSIFICATION, MAX_LENGTH, max_windows=MAX_WINDOWS
    ).splits["test"]
    windows_per_text = np.bincount(table.column("example_id").to_numpy())
    assert windows_per_text.max() == MAX_WINDOWS and windows_per_text.min() == 1
    row_logits = classifier.predict_logits(table)
    expected = softmax(mean_by_text(row_logits, table.column("example_id").to_pylist(), len(texts)))
    predictor = OnnxPredictor(windowed_onnx)

    batch = predictor.encode_token_windows(texts)
    predictions = predictor.predict(texts)

    assert batch.inputs["input_ids"].shape == (table.num_rows, MAX_LENGTH)
    for row, ids in enumerate(table.column("input_ids").to_pylist()):
        assert batch.inputs["input_ids"][row, : len(ids)].tolist() == ids
        assert batch.inputs["attention_mask"][row].sum() == len(ids)
    assert [p.label for p in predictions] == [label_names[i] for i in expected.argmax(axis=-1)]
    assert [p.score for p in predictions] == pytest.approx(expected.max(axis=-1).tolist(), abs=1e-5)
    alone = predictor.predict(texts[1:2])[0]  # its windows alone, padded to their own longest
    assert alone.label == predictions[1].label
    assert alone.score == pytest.approx(predictions[1].score, abs=1e-5)


def test_manifest_and_pytorch_benchmark_runtime_read_the_same_windows(
    classifier, windowed_onnx, texts
):
    assert OnnxModel.load(windowed_onnx.directory).max_windows == MAX_WINDOWS
    onnx_predictions = OnnxPredictor(windowed_onnx).predict(texts)

    pytorch_predictions = pytorch_runtime(classifier, windowed_onnx, threads=1).predict(texts)

    assert [p.label for p in pytorch_predictions] == [p.label for p in onnx_predictions]
    assert [p.score for p in pytorch_predictions] == pytest.approx(
        [p.score for p in onnx_predictions], abs=1e-5
    )


def test_a_model_records_the_windows_it_was_trained_on(classifier, tmp_path):
    """Promotion re-tokenizes the production model as it was trained (`text_windows`)."""
    classifier.model.config.text_windows = {"max_length": MAX_LENGTH, "max_windows": MAX_WINDOWS}
    try:
        classifier.save(tmp_path)
        loaded = FineTunedModel.load(tmp_path, "classification")
    finally:
        classifier.model.config.text_windows = {"max_length": MAX_LENGTH, "max_windows": 1}
    assert loaded.text_windows == (MAX_LENGTH, MAX_WINDOWS)
