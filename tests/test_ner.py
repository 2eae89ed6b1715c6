"""NER: CoNLL and JSONL readers, IOB2 checks, sub-word labels, long sentences, metrics, training."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch
from transformers import AutoTokenizer

from materializers.fine_tuned_model import FineTunedModelMaterializer
from materializers.tokenized_dataset import TokenizedDatasetMaterializer
from stackport.core.settings import (
    DataSettings,
    SplitSettings,
    TrainingSettings,
    ValidationSettings,
)
from stackport.data.bundled import read_dataset
from stackport.data.splitting import split_dataset
from stackport.data.tokenization import TokenizedDataset, tokenize_dataset, tokenized_schema
from stackport.data.validation import ValidationReport, validate_dataset
from stackport.inference.words import word_windows
from stackport.tasks import training_plugin
from stackport.tasks.ner import train as ner
from stackport.training.model import FineTunedModel
from stackport.training.trainer import fine_tune
from tests.helpers import NER_SENTENCES, materializer_round_trip

CONLL = """\
-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER


-DOCSTART- -X- -X- O
BRUSSELS\tNNP\tB-NP\tB-LOC
1996-08-22\tCD\tI-NP\tO
"""
TAGS = ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]


def read(source: Path, **columns: str) -> tuple[pd.DataFrame, list[str], list[str]]:
    data = DataSettings(source=str(source), task="ner", **columns)
    frame, report = training_plugin("ner").read(data.source, data)
    return frame, report.problems, report.notes


def test_conll_reader_skips_docstart_and_blank_lines_and_takes_the_last_column(tmp_path):
    (tmp_path / "news.conll").write_text(CONLL)
    frame, problems, _ = read(tmp_path / "news.conll")

    assert problems == []
    assert frame["text"].tolist() == [
        ["EU", "rejects", "German", "call", "."],
        ["Peter", "Blackburn"],
        ["BRUSSELS", "1996-08-22"],
    ]
    assert frame["label"].tolist() == [
        ["B-ORG", "O", "B-MISC", "O", "O"],
        ["B-PER", "I-PER"],
        ["B-LOC", "O"],
    ]


def test_conll_line_without_a_tag_is_a_problem_naming_the_line(tmp_path):
    (tmp_path / "news.iob").write_text("Paris B-LOC\nrocks\n\nOslo B-LOC\n")
    frame, problems, _ = read(tmp_path / "news.iob")

    assert problems == [f"{tmp_path / 'news.iob'}: 1 line(s) hold a token without a tag (line 2)"]
    assert frame["text"].tolist() == [["Paris"], ["Oslo"]]


def test_a_folder_of_conll_split_files_keeps_its_splits(tmp_path):
    for name in ("train.conll", "dev.txt", "test.iob2"):
        (tmp_path / name).write_text(CONLL)
    frame, problems, _ = read(tmp_path)

    assert problems == []
    assert frame["split"].value_counts().to_dict() == {"test": 3, "train": 3, "validation": 3}


def test_the_same_sentence_in_two_split_files_is_named(tmp_path):
    (tmp_path / "train.conll").write_text(CONLL)
    (tmp_path / "test.conll").write_text("Peter B-PER\nBlackburn I-PER\n")
    frame, _, _ = read(tmp_path)
    report = validate(frame)
    details = {check.name: check.details for check in report.failures()}["no_text_in_two_splits"]
    assert details == (
        "1 text appears in more than one split, e.g. 'Peter Blackburn' in test, train (rows 0, 2)"
    )


def test_jsonl_rows_with_token_and_tag_lists_and_a_cell_that_is_no_list(tmp_path):
    rows = [
        {"tokens": ["Paris", "rocks"], "tags": ["B-LOC", "O"]},
        {"tokens": "Oslo rocks", "tags": ["B-LOC", "O"]},
    ]
    (tmp_path / "ner.jsonl").write_text("\n".join(json.dumps(row) for row in rows))
    frame, problems, notes = read(tmp_path / "ner.jsonl", text_column="tokens", label_column="tags")

    assert problems == []
    assert frame["tokens"].tolist() == [["Paris", "rocks"], None]
    assert frame["tags"].tolist() == [["B-LOC", "O"], ["B-LOC", "O"]]
    assert notes == ["column 'tokens': 1 cell(s) hold no list and are read as missing (rows 1)"]


def test_the_default_source_is_a_problem_as_there_is_no_bundled_ner_data():
    frame, report = read_dataset(DataSettings(task="ner"), training_plugin("ner").read)
    assert frame.empty
    assert report.problems == [
        "bundled:rotten-tomatoes is a classification data set, not one for the ner task: "
        "pass --data with data of that task"
    ]


def validate(frame: pd.DataFrame, **settings) -> ValidationReport:
    settings = ValidationSettings(min_examples_per_class=2, **settings)
    return validate_dataset(frame, "text", "label", settings, training_plugin("ner"))


def test_the_fixture_passes_every_check():
    frame, _, _ = read(NER_SENTENCES)
    report = validate(frame, labels=["LOC", "MISC", "ORG", "PER"])
    assert report.success, report.summary()
    assert {check.name for check in report.checks} == {
        "text_column_exists",
        "label_column_exists",
        "has_rows",
        "tokens_not_null",
        "tokens_not_blank",
        "tags_not_null",
        "tags_match_tokens",
        "tags_are_iob2",
        "label_in_declared_set",
        "declared_labels_seen",
        "enough_classes",
        "enough_examples_per_class",
    }


def test_bad_sentences_are_named_by_row():
    rows = [
        (["Paris", "and", "Rome"], ["B-LOC", "O", "B-LOC"]),
        (["Tony", "Blair", "spoke"], ["B-PER", "I-PER"]),
        (["the", "Blair", "government"], ["O", "I-PER", "O"]),
        (["Tony", "Blair"], ["PERSON", "O"]),
        (["Trafford", "park"], ["I-LOC", "O"]),
        (["Tony", " ", "Blair"], ["B-PER", "O", "B-PER"]),
        (None, ["O"]),
        (["a", "German", "car"], ["O", "B-MISC", "O"]),
    ]
    frame = pd.DataFrame(rows, columns=["text", "label"])
    report = validate(frame, labels=["LOC", "PER", "ORG"])
    failed = {check.name: check.details for check in report.failures()}

    assert failed["tokens_not_null"] == "1 row has no token list (row 6)"
    assert failed["tokens_not_blank"] == (
        "1 row has an empty sentence or a blank token (row 5: token 1 is blank)"
    )
    assert failed["tags_match_tokens"] == (
        "1 row has a different number of tags and tokens (row 1: 3 tokens, 2 tags)"
    )
    assert failed["tags_are_iob2"] == (
        "3 rows have tags that are not valid IOB2 (row 2: 'I-PER' at token 1 follows 'O'; "
        "row 3: 'PERSON' at token 0 is not O, B-<type> or I-<type>; "
        "row 4: 'I-LOC' at token 0 starts the sentence)"
    )
    assert failed["label_in_declared_set"] == (
        "1 row has an entity type outside the declared set (row 7); "
        "the undeclared entity types are 'MISC' (1 row)"
    )
    assert failed["declared_labels_seen"] == "declared entity types never seen: 'ORG'"
    assert failed["enough_examples_per_class"] == ("entity type 'MISC' has 1 mention, fewer than 2")
    assert "enough_classes" not in failed


def test_first_sub_word_carries_the_tag_and_the_others_are_ignored(tiny_bert_path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_path)
    assert tokenizer.tokenize("Blackburn") == ["black", "##b", "##urn"]
    frame = pd.DataFrame(
        {"text": [["Peter", "Blackburn", "said"]], "label": [["B-PER", "I-PER", "O"]]}
    )
    columns = ner.encode(frame, tokenizer, TAGS, max_length=32)

    ids = columns["input_ids"][0]
    assert tokenizer.convert_ids_to_tokens(ids) == [
        "[CLS]", "pet", "##er", "black", "##b", "##urn", "said", "[SEP]"
    ]  # fmt: skip
    b_per, i_per, outside = TAGS.index("B-PER"), TAGS.index("I-PER"), TAGS.index("O")
    assert columns["labels"] == [[-100, b_per, -100, i_per, -100, -100, outside, -100]]
    assert columns["example_id"] == [0]
    assert columns["num_tokens"] == [8]


@pytest.mark.parametrize(
    ("lengths", "capacity", "windows"),
    [
        ([1, 1, 1, 1], 4, [(0, 4)]),
        ([1, 1, 1, 1], 2, [(0, 2), (2, 4)]),
        ([2, 2, 1], 3, [(0, 1), (1, 3)]),
        ([1, 9, 1], 3, [(0, 1), (1, 2), (2, 3)]),  # a word longer than a window: alone
        ([0, 2, 0, 1], 2, [(0, 3), (3, 4)]),  # a word of no sub-word takes no room
        ([], 3, [(0, 0)]),
    ],
)
def test_word_windows_hold_whole_words(lengths, capacity, windows):
    """Training (`ner.encode`) and ONNX inference share this rule."""
    assert list(word_windows(lengths, capacity)) == windows


def perfect_logits(table: pa.Table, tags: list[str]) -> np.ndarray:
    """Logits that score each row's true tags highest (-100 positions: `O`)."""
    labels = table.column("labels").to_pylist()
    logits = np.full((len(labels), max(map(len, labels)), len(tags)), -100.0)
    for row, row_labels in enumerate(labels):
        for position, label in enumerate(row_labels):
            logits[row, position, max(label, 0)] = 1.0
    return logits


def test_a_long_sentence_is_split_into_windows_and_evaluated_whole(tiny_bert_path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_path)
    words = ["the", "bank", "of", "england", "and", "the", "minister", "of", "trade", "said"]
    words += ["Blackburn", "\u200b"]  # three sub-words; no sub-word at all
    tags = ["B-ORG"] + ["I-ORG"] * 9 + ["B-PER", "O"]
    frame = pd.DataFrame({"text": [words, ["Rome"]], "label": [tags, ["B-LOC"]]})
    dataset = tokenize_dataset(
        {"test": frame}, tokenizer, "ner", training_plugin("ner"), max_length=4
    )
    table = dataset.splits["test"]

    assert dataset.label_names == ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    assert table.schema == tokenized_schema(training_plugin("ner").labels_type)
    assert table.column("example_id").to_pylist() == [0, 0, 0, 0, 0, 0, 0, 1]
    assert dataset.example_count("test") == 2
    assert max(len(ids) for ids in table.column("input_ids").to_pylist()) == 4
    # Blackburn (3 sub-words) alone is longer than a window: truncated, its tag kept. That cuts
    # the first of the two sentences.
    assert dataset.truncation_rate("test") == pytest.approx(1 / 2)
    assert "[UNK]" in tokenizer.convert_ids_to_tokens(table.column("input_ids")[6].as_py())

    true, predicted = ner.word_tags(
        perfect_logits(table, dataset.label_names), table, dataset.label_names
    )
    assert true == [tags, ["B-LOC"]]
    assert predicted == true
    report = training_plugin("ner").report(
        "m", "test", dataset.label_names, perfect_logits(table, dataset.label_names), table, None
    )
    assert report.metrics["entity_f1"] == 1.0  # the ORG entity spans four windows: one entity
    assert report.per_class["ORG"].support == 1


def test_entity_metrics_on_hand_made_predictions():
    true = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    predicted = [["B-PER", "I-PER", "O", "O"], ["B-ORG", "B-LOC"]]
    report = ner.entity_report("m", "test", TAGS, true, predicted)

    # Entities: PER and ORG found, LOC missed, one LOC invented: P 2/3, R 2/3.
    assert report.metrics["entity_precision"] == pytest.approx(2 / 3)
    assert report.metrics["entity_recall"] == pytest.approx(2 / 3)
    assert report.metrics["entity_f1"] == pytest.approx(2 / 3)
    assert report.metrics["accuracy"] == pytest.approx(4 / 6)
    assert report.metrics["macro_f1"] == pytest.approx((1 + 1 + 0) / 3)
    assert report.per_class["PER"].f1 == 1.0
    assert report.per_class["LOC"].model_dump() == {
        "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1
    }  # fmt: skip
    assert report.per_class["MISC"].support == 0
    outside, b_loc = TAGS.index("O"), TAGS.index("B-LOC")
    assert report.confusion_matrix[b_loc][outside] == 1
    assert report.confusion_matrix[outside][b_loc] == 1


def test_an_entity_with_a_wrong_boundary_is_wrong():
    report = ner.entity_report("m", "test", TAGS, [["B-PER", "I-PER"]], [["B-PER", "O"]])
    assert report.metrics["entity_f1"] == 0.0
    assert report.metrics["accuracy"] == 0.5


def test_most_frequent_tag_baseline():
    train = pd.DataFrame(
        {
            "text": [["Paris", "is", "nice"], ["Paris", "Hilton", "is", "here"], ["see", "Paris"]],
            "label": [["B-LOC", "O", "O"], ["B-PER", "I-PER", "O", "O"], ["O", "B-LOC"]],
        }
    )
    test = pd.DataFrame({"text": [["paris", "rocks"]], "label": [["B-LOC", "O"]]})
    report = training_plugin("ner").baseline(train, test, TAGS)

    assert report.model_name == "most-frequent-tag"
    assert report.metrics["entity_f1"] == 1.0


@pytest.fixture(scope="module")
def ner_dataset(tiny_bert_path) -> TokenizedDataset:
    frame, _, _ = read(NER_SENTENCES)
    splits = split_dataset(frame, "text", "label", SplitSettings(), training_plugin("ner"))
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_path)
    return tokenize_dataset(splits, tokenizer, "ner", training_plugin("ner"), max_length=16)


@pytest.fixture(scope="module")
def ner_model(ner_dataset, tiny_bert_path, tmp_path_factory) -> FineTunedModel:
    settings = TrainingSettings(epochs=1, batch_size=8)
    return fine_tune(ner_dataset, tiny_bert_path, settings, tmp_path_factory.mktemp("ner"))


def test_split_keeps_sentences_whole_and_splits_every_sentence_once(ner_dataset):
    assert sum(ner_dataset.example_count(split) for split in ner_dataset.splits) == 50
    assert ner_dataset.splits["train"].num_rows > ner_dataset.example_count("train")


def test_fine_tuned_ner_model_evaluates_and_round_trips(ner_model, ner_dataset, tmp_path):
    test = ner_dataset.splits["test"]
    report = ner_model.evaluate(test, "test")
    assert {"entity_f1", "entity_precision", "entity_recall", "accuracy", "macro_f1"} == set(
        report.metrics
    )
    assert set(report.per_class) == {"LOC", "MISC", "ORG", "PER"}
    assert ner_model.label_thresholds is None

    ner_model.save(tmp_path)
    loaded = FineTunedModel.load(tmp_path, "ner")
    assert type(loaded.model).__name__ == "BertForTokenClassification"
    assert loaded.label_names == ner_dataset.label_names
    logits = loaded.predict_logits(test)
    assert logits.shape[:2] == (
        test.num_rows,
        max(len(ids) for ids in test["input_ids"].to_pylist()),
    )
    assert torch.allclose(
        torch.from_numpy(logits), torch.from_numpy(ner_model.predict_logits(test))
    )
    assert loaded.evaluate(test, "test") == report


def test_materializers_round_trip_ner_artifacts(ner_model, ner_dataset, tmp_path):
    dataset = materializer_round_trip(TokenizedDatasetMaterializer, ner_dataset, tmp_path / "data")
    assert dataset.task == "ner"
    assert dataset.label_names == ner_dataset.label_names
    for split, table in ner_dataset.splits.items():
        assert dataset.splits[split].equals(table)
        assert table.schema == tokenized_schema(training_plugin("ner").labels_type)
    preview = (tmp_path / "data" / "artifact" / "preview.html").read_text()
    assert "examples in" in preview and "B-PER" in preview

    model = materializer_round_trip(FineTunedModelMaterializer, ner_model, tmp_path / "model")
    assert model.task == "ner"
    assert type(model.model).__name__ == "BertForTokenClassification"
