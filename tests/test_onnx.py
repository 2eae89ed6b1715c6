"""ONNX export, parity, inference and int8 quantization of a tiny random BERT, for every task."""

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
from scipy.special import expit
from seqeval.metrics.sequence_labeling import get_entities

from materializers.quantization_report import QuantizationReportMaterializer
from stackport.core.numerics import softmax
from stackport.core.settings import DataSettings, OnnxVariant, QuantizationSettings
from stackport.data.tokenization import tokenize_dataset
from stackport.inference.onnx_model import OnnxModel
from stackport.inference.predictor import OnnxPredictor
from stackport.inference.words import split_words
from stackport.onnx.export import (
    OnnxParityError,
    check_parity,
    export_to_onnx,
    optimize_onnx_model,
)
from stackport.onnx.quantization import (
    QuantizationReport,
    VariantGate,
    evaluate_onnx_model,
    gate_variants,
    quantize_onnx_model,
    variant_gate,
)
from stackport.tasks import inference_plugin, training_plugin
from stackport.tasks.multilabel.infer import MultilabelPrediction, classify_multilabel
from stackport.tasks.ner import train as ner
from stackport.tasks.ner.infer import Entity, EntityPrediction, entity_word_ranges
from stackport.training.model import FineTunedModel
from tests.helpers import (
    MAX_LENGTH,
    MULTILABEL_THRESHOLDS,
    NER_SENTENCES,
    materializer_round_trip,
    multilabel_titles,
    tiny_model,
)

CLASSIFICATION = training_plugin("classification")


def logits(model: OnnxModel, texts: list[str]) -> np.ndarray:
    """The model's logits for texts, one truncated row each."""
    predictor = OnnxPredictor(model)
    return predictor.session.run(None, predictor.encode(texts).inputs)[0]


def tiny_classifier(tiny_bert_path: Path, label_names: list[str], seed: int) -> FineTunedModel:
    return tiny_model(tiny_bert_path, label_names, seed)


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
    assert onnx_fp32.variant is OnnxVariant.FP32
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
    table = tokenize_dataset(
        {"test": frame}, fine_tuned.tokenizer, "classification", CLASSIFICATION, MAX_LENGTH
    ).splits["test"]
    expected = softmax(fine_tuned.predict_logits(table))

    predictions = OnnxPredictor(onnx_fp32).predict(texts)

    assert [p.label for p in predictions] == [label_names[i] for i in expected.argmax(axis=-1)]
    assert [p.score for p in predictions] == pytest.approx(expected.max(axis=-1).tolist(), abs=1e-5)


def test_tokenizer_truncates_to_max_length_and_pads_dynamically(fine_tuned, onnx_fp32, texts):
    predictor = OnnxPredictor(onnx_fp32)
    short_batch = predictor.encode(texts[:1]).inputs
    mixed_batch = predictor.encode(texts[:2]).inputs

    short_length = len(fine_tuned.tokenizer(texts[0])["input_ids"])
    assert short_batch["input_ids"].shape == (1, short_length)
    assert mixed_batch["input_ids"].shape == (2, MAX_LENGTH)
    assert mixed_batch["attention_mask"][0].sum() == short_length
    assert set(mixed_batch) == {"input_ids", "attention_mask", "token_type_ids"}


def test_quantization_does_not_flood_the_log(onnx_fp32: OnnxModel, tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        quantize_onnx_model(onnx_fp32, tmp_path / "int8", QuantizationSettings())
        assert logging.getLogger().level == logging.INFO  # restored

    root_info = [r for r in caplog.records if r.name == "root" and r.levelno < logging.WARNING]
    assert not root_info  # without the guard: a line per tensor ("Quantization parameters ...")


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
    assert onnx_int8.variant is OnnxVariant.DYNAMIC_INT8
    assert onnx_int8.size_bytes < onnx_fp32.size_bytes
    ops = {node.op_type for node in onnx.load(str(onnx_int8.model_path)).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops
    fp32_probabilities = softmax(logits(onnx_fp32, texts))
    int8_probabilities = softmax(logits(onnx_int8, texts))
    np.testing.assert_allclose(int8_probabilities, fp32_probabilities, atol=0.05)


def test_static_int8_keeps_sensitive_ops_in_float(onnx_fp32, texts, tmp_path):
    settings = QuantizationSettings(calibration_samples=8)
    model = quantize_onnx_model(
        onnx_fp32, tmp_path / "int8", settings, OnnxVariant.STATIC_INT8, texts
    )

    graph = onnx.load(str(model.model_path)).graph
    producers = {output: node.op_type for node in graph.node for output in node.output}
    assert model.variant is OnnxVariant.STATIC_INT8
    assert "QuantizeLinear" in producers.values()
    for node in graph.node:
        if node.op_type in ("LayerNormalization", "Softmax", "Erf"):
            assert all(producers.get(name) != "DequantizeLinear" for name in node.input), node.name
    assert len(OnnxPredictor(model).predict(texts)) == len(texts)


def test_gate_refuses_an_int8_variant_whose_drop_is_too_large(onnx_fp32, onnx_int8, bbc_slice):
    """A negative max_metric_drop demands int8 beat fp32 by >1 macro-F1: impossible."""
    settings = QuantizationSettings(max_metric_drop=-1.0)
    validation, test = bbc_slice.head(20), bbc_slice.tail(20)
    report = gate_variants(onnx_fp32, [onnx_int8], validation, test, settings)

    assert report.deployable == [OnnxVariant.FP32]
    int8 = report.gate(OnnxVariant.DYNAMIC_INT8)
    assert not int8.deployable and "exceeds max_metric_drop -1" in int8.reason
    assert report.metric == "macro_f1"
    fp32 = report.gate(OnnxVariant.FP32)
    assert int8.metric_drop == pytest.approx(fp32.validation_metric - int8.validation_metric)
    assert "not deployable: dynamic-int8: validation macro_f1" in report.summary


@pytest.mark.parametrize(
    ("fp32_metric", "int8_metric", "deployable"),
    [(0.96, 0.958, True), (0.96, 0.955, True), (0.96, 0.954, False), (0.9, 0.95, True)],
)
def test_gate_allows_drops_up_to_max_metric_drop(onnx_int8, fp32_metric, int8_metric, deployable):
    gate = variant_gate(
        "macro_f1", fp32_metric, onnx_int8, int8_metric, {"macro_f1": 0.0}, QuantizationSettings()
    )
    assert gate.deployable is deployable
    assert f"validation macro_f1 {int8_metric:.4f} vs fp32 {fp32_metric:.4f}" in gate.reason
    assert gate.metric_drop == pytest.approx(fp32_metric - int8_metric)
    assert gate.size_bytes == onnx_int8.size_bytes


def test_fp32_graphs_are_deployable_whatever_their_drop(onnx_fp32):
    gate = variant_gate("macro_f1", 0.9, onnx_fp32, 0.1, {}, QuantizationSettings())
    assert gate.deployable and gate.reason.endswith("an fp32 graph")


def test_gate_decides_on_validation_and_never_reads_the_test_split(
    onnx_fp32, onnx_int8, bbc_slice, monkeypatch
):
    """The decision is the same whatever the test rows are; they are only evaluated."""
    validation, test = bbc_slice.head(20), bbc_slice.tail(20)
    settings = QuantizationSettings()
    splits_read = []
    original = evaluate_onnx_model

    def spy(model, frame, split):
        splits_read.append(split)
        return original(model, frame, split)

    monkeypatch.setattr("stackport.onnx.quantization.evaluate_onnx_model", spy)
    report = gate_variants(onnx_fp32, [onnx_int8], validation, test, settings)
    shuffled_labels = test.assign(label=test["label"].sample(frac=1, random_state=1).tolist())
    other = gate_variants(onnx_fp32, [onnx_int8], validation, shuffled_labels, settings)

    verdicts = [(gate.deployable, gate.reason) for gate in report.variants]
    assert verdicts == [(gate.deployable, gate.reason) for gate in other.variants]
    fp32 = report.gate(OnnxVariant.FP32)
    assert (
        fp32.validation_metric == original(onnx_fp32, validation, "validation").metrics["macro_f1"]
    )
    assert fp32.test_metrics == original(onnx_fp32, test, "test").metrics
    assert splits_read[0] == "validation"


def test_the_optimized_variant_is_fused_and_matches_pytorch(fine_tuned, onnx_fp32, texts, tmp_path):
    optimized = optimize_onnx_model(onnx_fp32, fine_tuned.model.config, tmp_path / "opt", 2)

    assert optimized.variant is OnnxVariant.FP32_OPTIMIZED
    ops = {node.op_type for node in onnx.load(str(optimized.model_path)).graph.node}
    assert {"SkipLayerNormalization"} & ops or {"Attention"} & ops, ops
    assert check_parity(fine_tuned, optimized, texts, tolerance=1e-4) < 1e-4
    assert OnnxModel.load(optimized.directory) == optimized


# Multi-label classification and NER.


@pytest.fixture(scope="module")
def multilabel_frame(bbc_slice: pd.DataFrame) -> pd.DataFrame:
    """BBC titles with one or two topics each, as a split holds them (labels as lists)."""
    rows = multilabel_titles(bbc_slice, per_topic=6)
    return pd.DataFrame({"text": rows["text"], "label": rows["topics"].str.split("|")})


@pytest.fixture(scope="module")
def multilabel_model(tiny_bert_path, label_names) -> FineTunedModel:
    return tiny_model(tiny_bert_path, label_names, seed=0, task="multilabel")


@pytest.fixture(scope="module")
def multilabel_onnx(multilabel_model, tmp_path_factory) -> OnnxModel:
    return export_to_onnx(multilabel_model, tmp_path_factory.mktemp("multilabel"), MAX_LENGTH)


@pytest.fixture(scope="module")
def ner_frame() -> pd.DataFrame:
    """The 50 CoNLL fixture sentences: token lists and tag lists."""
    frame, _ = ner.read_sentences(str(NER_SENTENCES), DataSettings(task="ner"))
    return frame


def joined_sentences(frame: pd.DataFrame, count: int) -> pd.DataFrame:
    """Each run of `count` sentences of `frame` joined into one long sentence."""
    starts = range(0, len(frame), count)
    return pd.DataFrame(
        {
            column: [
                [item for row in frame[column][start : start + count] for item in row]
                for start in starts
            ]
            for column in ("text", "label")
        }
    )


@pytest.fixture(scope="module")
def ner_names(ner_frame) -> list[str]:
    return ner.label_names([ner_frame["label"]])


@pytest.fixture(scope="module")
def ner_model(tiny_bert_path, ner_names) -> FineTunedModel:
    return tiny_model(tiny_bert_path, ner_names, seed=0, task="ner")


@pytest.fixture(scope="module")
def ner_onnx(ner_model, tmp_path_factory) -> OnnxModel:
    return export_to_onnx(ner_model, tmp_path_factory.mktemp("ner"), MAX_LENGTH)


def test_multilabel_export_carries_the_thresholds(multilabel_onnx, label_names):
    assert multilabel_onnx.task == "multilabel"
    assert multilabel_onnx.label_names == label_names
    assert multilabel_onnx.thresholds == MULTILABEL_THRESHOLDS
    assert multilabel_onnx.outputs == ["logits"]
    assert OnnxModel.load(multilabel_onnx.directory) == multilabel_onnx


def test_ner_export_is_a_word_level_token_classifier(ner_onnx, ner_names):
    assert ner_onnx.task == "ner"
    assert ner_onnx.label_names == ner_names
    assert ner_onnx.thresholds is None
    assert inference_plugin(ner_onnx.task).word_level
    graph = onnx.load(str(ner_onnx.model_path)).graph
    logits_shape = graph.output[0].type.tensor_type.shape.dim
    assert len(logits_shape) == 3  # (texts, tokens, tags)
    assert logits_shape[2].dim_value == len(ner_names)
    assert OnnxModel.load(ner_onnx.directory) == ner_onnx


@pytest.mark.parametrize("task", ["multilabel", "ner"])
def test_export_of_every_task_matches_pytorch(task, request):
    model = request.getfixturevalue(f"{task}_model")
    onnx_model = request.getfixturevalue(f"{task}_onnx")
    texts = request.getfixturevalue(f"{task}_frame")["text"].tolist()

    assert 0 <= check_parity(model, onnx_model, texts, tolerance=1e-4) < 1e-4


def test_ner_parity_check_fails_naming_the_difference(
    tiny_bert_path, ner_names, ner_onnx, ner_frame
):
    other_model = tiny_model(tiny_bert_path, ner_names, seed=1, task="ner")
    with pytest.raises(OnnxParityError, match=r"differs .* by up to [0-9.e-]+ .* tolerance 0.0001"):
        check_parity(other_model, ner_onnx, ner_frame["text"].tolist(), tolerance=1e-4)


def test_multilabel_predictions_match_pytorch_and_its_thresholds(
    multilabel_model, multilabel_onnx, multilabel_frame, label_names
):
    """PyTorch runs on the training tokenization, ONNX on texts tokenized by `tokenizers`.

    Each label's threshold is its median probability, so that the labels differ between texts.
    """
    splits = {"test": multilabel_frame}
    table = tokenize_dataset(
        splits,
        multilabel_model.tokenizer,
        "multilabel",
        training_plugin("multilabel"),
        MAX_LENGTH,
    )
    probabilities = expit(multilabel_model.predict_logits(table.splits["test"]).astype(np.float64))
    thresholds = np.median(probabilities, axis=0)
    chosen = probabilities >= thresholds
    model = dataclasses.replace(multilabel_onnx, thresholds=thresholds.tolist())

    predictions = OnnxPredictor(model).predict(multilabel_frame["text"].tolist())

    assert [p.labels for p in predictions] == [
        [label_names[i] for i in np.flatnonzero(row)] for row in chosen
    ]
    for prediction, row, row_chosen in zip(predictions, probabilities, chosen, strict=True):
        assert prediction.scores == pytest.approx(row[row_chosen].tolist(), abs=1e-5)
    assert len({len(prediction.labels) for prediction in predictions}) > 2


def test_multilabel_post_processor_applies_each_labels_threshold(multilabel_onnx):
    # sigmoid(0) = 0.5: at or above the thresholds 0.45, 0.5 and 0.48 only.
    logits = np.array([np.zeros(5), np.full(5, -10.0)], dtype=np.float32)

    names = multilabel_onnx.label_names
    predictions = classify_multilabel(logits, None, names, multilabel_onnx.thresholds)

    assert predictions == [
        MultilabelPrediction(labels=[names[0], names[1], names[3]], scores=[0.5, 0.5, 0.5]),
        MultilabelPrediction(labels=[], scores=[]),
    ]


def test_entities_are_read_from_iob2_tags_as_seqeval_reads_them():
    tags = ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "B-ORG", "I-LOC", "I-LOC", "O", "B-MISC"]

    ranges = entity_word_ranges(tags)

    assert ranges == [
        ("PER", 0, 2),
        ("PER", 2, 3),
        ("LOC", 4, 5),
        ("ORG", 5, 6),
        ("LOC", 6, 8),
        ("MISC", 9, 10),
    ]
    assert ranges == [(kind, start, end + 1) for kind, start, end in get_entities(tags)]


def test_ner_predictions_match_pytorch_on_the_training_encoding(
    ner_model, ner_onnx, ner_frame, ner_names
):
    """Tags of PyTorch's first sub-words, as evaluation reads them, give the ONNX entities."""
    table = tokenize_dataset(
        {"test": ner_frame}, ner_model.tokenizer, "ner", training_plugin("ner"), MAX_LENGTH
    )
    test_table = table.splits["test"]
    _, expected_tags = ner.word_tags(ner_model.predict_logits(test_table), test_table, ner_names)

    predictions = OnnxPredictor(ner_onnx).predict(ner_frame["text"].tolist())

    entity_count = 0
    for row in range(len(ner_frame)):
        tokens = ner_frame["text"][row]
        starts = np.cumsum([0, *(len(token) + 1 for token in tokens)])[:-1].tolist()
        entities = predictions[row].entities
        expected = get_entities(expected_tags[row])
        assert [(e.type, starts.index(e.start)) for e in entities] == [
            (kind, start) for kind, start, _ in expected
        ]
        for entity, (_, start, end) in zip(entities, expected, strict=True):
            assert entity.text == " ".join(tokens[start : end + 1])
            assert 0 < entity.score <= 1
        entity_count += len(entities)
    assert entity_count > 20  # a random head tags plenty of words as entities


def pytorch_windowed_entities(
    model: FineTunedModel, names: list[str], words: list[str]
) -> tuple[list[tuple[str, int, int]], list[int]]:
    """(type, first word, last word) of the entities the PyTorch evaluation finds in `words`,
    split into windows by `ner.encode`, and the first word of each window."""
    frame = pd.DataFrame({"text": [words], "label": [[ner.OUTSIDE] * len(words)]})
    table = tokenize_dataset(
        {"test": frame}, model.tokenizer, "ner", training_plugin("ner"), MAX_LENGTH
    ).splits["test"]
    _, tags = ner.word_tags(model.predict_logits(table), table, names)
    sizes = [sum(label != -100 for label in row) for row in table.column("labels").to_pylist()]
    return get_entities(tags[0]), np.cumsum([0, *sizes[:-1]]).tolist()


def word_entities(text: str, prediction: EntityPrediction) -> list[tuple[str, int, int]]:
    """(type, first word, last word) of each predicted entity; fails unless it spans words."""
    spans = split_words(text)
    starts = {start: index for index, (start, _) in enumerate(spans)}
    ends = {end: index for index, (_, end) in enumerate(spans)}
    for entity in prediction.entities:
        assert text[entity.start : entity.end] == entity.text
    return [(e.type, starts[e.start], ends[e.end]) for e in prediction.entities]


def test_a_text_longer_than_max_length_is_tagged_in_windows_like_pytorch(
    ner_model, ner_onnx, ner_frame, ner_names
):
    """Every window of a long raw text is tagged, as the PyTorch evaluation tags its words, and
    offsets index the raw text; its batch neighbours predict as they do alone."""
    tokens = joined_sentences(ner_frame, 20)["text"][0]
    separators = [" ", "  ", "\n", " \t"]
    text = "".join(f"{token}{separators[i % 4]}" for i, token in enumerate(tokens))
    words = [text[start:end] for start, end in split_words(text)]
    short = "EU rejects German call to boycott British lamb."
    predictor = OnnxPredictor(ner_onnx)

    predictions = predictor.predict([short, text, ""])

    expected, window_starts = pytorch_windowed_entities(ner_model, ner_names, words)
    assert len(window_starts) >= 4
    assert word_entities(text, predictions[1]) == expected
    assert any(first >= window_starts[-1] for _, first, _ in expected)
    alone = predictor.predict([short])[0]
    assert [(e.type, e.start, e.end) for e in predictions[0].entities] == [
        (e.type, e.start, e.end) for e in alone.entities
    ]
    assert [e.score for e in predictions[0].entities] == pytest.approx(
        [e.score for e in alone.entities], abs=1e-5
    )
    assert predictions[2] == EntityPrediction(entities=[])


def test_a_word_longer_than_max_length_is_truncated_in_a_window_of_its_own(
    ner_model, ner_onnx, ner_names
):
    """Its first sub-word keeps its tag; the words after it are tagged in the next window."""
    long_word = ".".join(["u"] * 80)  # punctuation inside a word: one word, 159 sub-words
    text = f"Peter Blackburn of the EU said {long_word} in Brussels and Paris on Monday ."
    words = [text[start:end] for start, end in split_words(text)]
    position = words.index(long_word)
    assert len(ner_model.tokenizer(long_word, add_special_tokens=False)["input_ids"]) > MAX_LENGTH
    predictor = OnnxPredictor(ner_onnx)

    batch = predictor.encode_word_windows([text])
    prediction = predictor.predict([text])[0]

    assert batch.row_texts == [0, 0, 0]
    assert batch.row_words == [(0, position), (position, position + 1), (position + 1, len(words))]
    assert batch.inputs["attention_mask"][1].sum() == MAX_LENGTH
    expected, window_starts = pytorch_windowed_entities(ner_model, ner_names, words)
    assert window_starts == [0, position, position + 1]
    assert word_entities(text, prediction) == expected


def test_raw_text_is_split_into_words_as_conll_splits_it():
    text = " (Peter Blackburn), in\tU.S. on 1,000 don't-stop…"
    words = [text[start:end] for start, end in split_words(text)]
    assert words == ["(", "Peter", "Blackburn", ")", ",", "in", "U.S", ".", "on", "1,000"] + [
        "don't-stop",
        "…",
    ]


def test_raw_text_entities_point_into_the_original_text(ner_onnx, ner_frame):
    """Raw text predicts as its words given pre-split; offsets are the raw text's."""
    predictor = OnnxPredictor(ner_onnx)
    texts = ["  EU rejects\tGerman call (Reuters),  said Peter Blackburn in U.S. ", "", " \n "]
    texts += [" ".join(tokens) for tokens in ner_frame["text"][:5]]
    words = [[text[start:end] for start, end in split_words(text)] for text in texts]

    raw = predictor.predict(texts)
    pre_split = predictor.predict(words)

    assert raw[1] == raw[2] == EntityPrediction(entities=[])
    for text, spans, by_raw, by_words in zip(
        texts, map(split_words, texts), raw, pre_split, strict=True
    ):
        joined_starts = np.cumsum([0, *(end - start + 1 for start, end in spans)])[:-1].tolist()
        moved = {joined: start for joined, (start, _) in zip(joined_starts, spans, strict=True)}
        assert [(e.type, moved[e.start], e.score) for e in by_words.entities] == [
            (e.type, e.start, e.score) for e in by_raw.entities
        ]
        for entity in by_raw.entities:
            assert text[entity.start : entity.end] == entity.text
            assert entity.text == entity.text.strip() and entity.text
    assert any(prediction.entities for prediction in raw)


def test_predictions_serialise_to_plain_json(multilabel_onnx, ner_onnx, onnx_fp32):
    text = "EU rejects German call to boycott British lamb."
    outputs = [
        OnnxPredictor(model).predict([text])[0] for model in (onnx_fp32, multilabel_onnx, ner_onnx)
    ]

    documents = [json.loads(output.model_dump_json()) for output in outputs]

    assert set(documents[0]) == {"label", "score"}
    assert set(documents[1]) == {"labels", "scores"}
    assert set(documents[2]) == {"entities"}
    entity = Entity(type="ORG", score=0.9, start=0, end=2, text="EU")
    assert entity.model_dump() == {
        "type": "ORG",
        "score": 0.9,
        "start": 0,
        "end": 2,
        "text": "EU",
    }


def test_int8_models_keep_the_task_and_thresholds(multilabel_onnx, ner_onnx, tmp_path):
    settings = QuantizationSettings()
    multilabel_int8 = quantize_onnx_model(multilabel_onnx, tmp_path / "multilabel", settings)
    ner_int8 = quantize_onnx_model(ner_onnx, tmp_path / "ner", settings)

    assert multilabel_int8.thresholds == MULTILABEL_THRESHOLDS
    assert ner_int8.task == "ner"
    assert OnnxModel.load(ner_int8.directory) == ner_int8


def test_ner_evaluation_through_inference_matches_the_pytorch_evaluation(
    ner_model, ner_onnx, ner_frame
):
    """Both split long sentences into the same windows and read the same first sub-words."""
    frame = pd.concat([ner_frame, joined_sentences(ner_frame, 10)], ignore_index=True)
    table = tokenize_dataset(
        {"test": frame}, ner_model.tokenizer, "ner", training_plugin("ner"), MAX_LENGTH
    )
    assert table.splits["test"].num_rows > len(frame) + 5  # the joined sentences need windows

    expected = ner_model.evaluate(table.splits["test"], "test")
    actual = evaluate_onnx_model(ner_onnx, frame, "test")

    for metric in ("entity_f1", "entity_precision", "entity_recall", "macro_f1"):
        assert actual.metrics[metric] == pytest.approx(expected.metrics[metric], abs=1e-9)


@pytest.mark.parametrize(("task", "metric"), [("multilabel", "macro_f1"), ("ner", "entity_f1")])
def test_gate_uses_the_task_metric(task, metric, request, tmp_path):
    fp32 = request.getfixturevalue(f"{task}_onnx")
    frame = request.getfixturevalue(f"{task}_frame").head(20)
    int8 = quantize_onnx_model(fp32, tmp_path / "int8", QuantizationSettings())

    settings = QuantizationSettings(max_metric_drop=-1.0)
    report = gate_variants(fp32, [int8], frame, frame, settings)

    assert report.metric == metric
    assert report.deployable == [OnnxVariant.FP32]
    gate = report.gate(OnnxVariant.DYNAMIC_INT8)
    assert f"validation {metric} {gate.validation_metric:.4f} vs fp32" in gate.reason
    fp32_metric = report.gate(OnnxVariant.FP32).validation_metric
    assert fp32_metric == evaluate_onnx_model(fp32, frame, "validation").metrics[metric]


def test_static_int8_ner_model_tags_every_sentence(ner_onnx, ner_frame, tmp_path):
    settings = QuantizationSettings(calibration_samples=8)
    texts = ner_frame["text"].tolist()
    model = quantize_onnx_model(
        ner_onnx, tmp_path / "int8", settings, OnnxVariant.STATIC_INT8, texts
    )

    assert model.variant is OnnxVariant.STATIC_INT8
    predictions = OnnxPredictor(model).predict(ner_frame["text"][:8].tolist())
    assert [type(prediction) for prediction in predictions] == [EntityPrediction] * 8


def test_quantization_report_round_trips_with_an_html_page(tmp_path):
    def gate(variant, metric, drop, deployable, reason, test):
        return VariantGate(
            variant=variant,
            validation_metric=metric,
            metric_drop=drop,
            deployable=deployable,
            reason=reason,
            size_bytes=23_000_000,
            test_metrics={"entity_f1": test},
        )

    report = QuantizationReport(
        metric="entity_f1",
        max_metric_drop=0.005,
        per_channel=True,
        weight_type="QInt8",
        variants=[
            gate(OnnxVariant.FP32, 0.81, 0.0, True, "an fp32 graph", 0.8),
            gate(OnnxVariant.DYNAMIC_INT8, 0.79, 0.02, False, "drop exceeds <max>", 0.78),
        ],
    )

    loaded = materializer_round_trip(QuantizationReportMaterializer, report, tmp_path)

    assert loaded == report and loaded.deployable == [OnnxVariant.FP32]
    page = (tmp_path / "artifact" / "quantization.html").read_text()
    assert "<h2>ONNX variants: deployable fp32</h2>" in page
    assert (
        "<th>validation entity_f1 (decides)</th><th>drop</th><th>test entity_f1 (reported)" in page
    )
    assert (
        "<td>dynamic-int8</td><td>0.7900</td><td>+0.0200</td><td>0.7800</td><td>23.0</td>" in page
    )
    assert "&lt;max&gt;" in page
    metadata = QuantizationReportMaterializer(str(tmp_path / "artifact")).extract_metadata(report)
    assert metadata["dynamic-int8_validation_entity_f1"] == 0.79
    assert metadata["dynamic-int8_test_entity_f1"] == 0.78
    assert metadata["deployable"] == ["fp32"]
