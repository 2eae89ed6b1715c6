"""Multi-label classification: label lists, checks, split, encoding, thresholds, training."""

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from transformers import AutoTokenizer

from materializers.evaluation_report import EvaluationReportMaterializer
from materializers.fine_tuned_model import FineTunedModelMaterializer
from materializers.tokenized_dataset import TokenizedDatasetMaterializer
from stackport.core.settings import (
    DataSettings,
    SplitSettings,
    TrainingSettings,
    ValidationSettings,
)
from stackport.data.splitting import split_dataset
from stackport.data.tokenization import TokenizedDataset, tokenize_dataset
from stackport.data.validation import ValidationReport, validate_dataset
from stackport.tasks import training_plugin
from stackport.tasks.multilabel import train as multilabel
from stackport.training.model import FineTunedModel
from stackport.training.trainer import fine_tune
from tests.helpers import materializer_round_trip, multilabel_titles

LABEL_SETS = [["sport"], ["sport", "tech"], ["tech"], []]


@pytest.mark.parametrize(
    ("cell", "delimiter", "labels"),
    [
        ("sport|tech", "|", ["sport", "tech"]),
        (" sport | tech |", "|", ["sport", "tech"]),
        ("sport;tech", ";", ["sport", "tech"]),
        ("sport", "|", ["sport"]),
        (["tech", "sport", "tech"], "|", ["tech", "sport"]),
        (np.array(["tech", "sport"], dtype=object), "|", ["tech", "sport"]),
        ([3.0, 4], "|", ["3", "4"]),
        (7, "|", ["7"]),
        ("", "|", []),
        (None, "|", []),
        (float("nan"), "|", []),
    ],
)
def test_label_cells_become_label_lists(cell, delimiter, labels):
    assert multilabel.parse_label_set(cell, delimiter) == labels


def write(frame: pd.DataFrame, path, kind: str) -> None:
    match kind:
        case "csv":
            frame.assign(label=frame["label"].str.join("|")).to_csv(path, index=False)
        case "jsonl":
            path.write_text("\n".join(json.dumps(row) for row in frame.to_dict("records")))
        case "parquet":
            frame.to_parquet(path)


@pytest.mark.parametrize("kind", ["csv", "jsonl", "parquet"])
def test_each_format_reads_the_same_label_lists(tmp_path, kind):
    frame = pd.DataFrame({"text": [f"text {i}" for i in range(4)], "label": LABEL_SETS})
    write(frame, tmp_path / f"data.{kind}", kind)
    data = DataSettings(source=str(tmp_path / f"data.{kind}"), task="multilabel")
    read, report = training_plugin("multilabel").read(data.source, data)

    assert report.problems == []
    assert read["label"].tolist() == LABEL_SETS


def test_csv_delimiter_is_a_setting(tmp_path):
    (tmp_path / "data.csv").write_text("review,tags\ngreat phone,tech;design\n")
    data = DataSettings(
        source=str(tmp_path / "data.csv"),
        task="multilabel",
        text_column="review",
        label_column="tags",
        label_delimiter=";",
    )
    read, _ = training_plugin("multilabel").read(data.source, data)
    assert read["tags"].tolist() == [["tech", "design"]]


def validate(frame: pd.DataFrame, **settings) -> ValidationReport:
    settings = ValidationSettings(min_examples_per_class=2, **settings)
    return validate_dataset(frame, "text", "label", settings, training_plugin("multilabel"))


def test_bad_label_sets_are_named():
    labels = [["sport"], ["sport", "tech"], ["tech"], [], ["tech", "weather"], []]
    frame = pd.DataFrame({"text": [f"text {i}" for i in range(6)], "label": labels})
    report = validate(frame, labels=["sport", "tech", "politics"])
    failed = {check.name: check.details for check in report.failures()}

    assert failed == {
        "label_set_not_empty": "2 rows have an empty label set (rows 3, 5)",
        "label_in_declared_set": (
            "1 row has a label outside the declared set (row 4); "
            "the undeclared labels are 'weather' (1 row)"
        ),
        "declared_labels_seen": "declared labels never seen: 'politics'",
        "enough_examples_per_class": "class 'weather' has 1 example, fewer than 2",
    }


def test_empty_label_sets_pass_when_allowed():
    frame = pd.DataFrame({"text": [f"text {i}" for i in range(4)], "label": LABEL_SETS})
    report = validate(frame, allow_empty_label_sets=True)
    assert report.success, report.summary()
    assert "label_set_not_empty" not in {check.name for check in report.checks}


def test_split_is_stratified_by_the_rarest_label_and_keeps_label_lists(bbc_slice):
    frame = multilabel_titles(bbc_slice)
    frame["topics"] = frame["topics"].str.split("|")
    splits = split_dataset(frame, "text", "topics", SplitSettings(), training_plugin("multilabel"))

    assert sum(len(split) for split in splits.values()) == len(frame)
    assert {name: len(split) for name, split in splits.items()} == {
        "train": 48,
        "validation": 6,
        "test": 6,
    }
    for split in splits.values():
        assert all(isinstance(labels, list) and labels for labels in split["label"])
        # Strata are each row's rarest topic: every topic is tested on.
        assert {label for labels in split["label"] for label in labels} == set(bbc_slice["label"])


def test_encoding_keeps_label_ids_and_the_collator_makes_them_multi_hot(tiny_bert_path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_path)
    frame = pd.DataFrame(
        {"text": ["a goal", "a chip and a goal", "a chip"], "label": LABEL_SETS[:3]}
    )
    dataset = tokenize_dataset(
        {"train": frame}, tokenizer, "multilabel", training_plugin("multilabel"), max_length=16
    )
    table = dataset.splits["train"]

    assert dataset.label_names == ["sport", "tech"]
    assert table.schema.field("labels").type == pa.list_(pa.int64())
    assert table.column("labels").to_pylist() == [[0], [0, 1], [1]]
    assert dataset.label_counts("train") == {"sport": 2, "tech": 2}
    collator = training_plugin("multilabel").make_collator(tokenizer, dataset.label_names)
    batch = collator(table.select(["input_ids", "attention_mask", "labels"]).to_pylist())
    assert batch["labels"].tolist() == [[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
    assert batch["input_ids"].shape[0] == 3


def labels_table(label_ids: list[list[int]]) -> pa.Table:
    """One row (one window) per text."""
    return pa.table(
        {"labels": label_ids, "example_id": list(range(len(label_ids)))},
        schema=pa.schema([("labels", pa.list_(pa.int64())), ("example_id", pa.int32())]),
    )


def logit(probability: float) -> float:
    return float(np.log(probability / (1 - probability)))


def test_thresholds_maximise_each_labels_f1_on_validation():
    # Label 0: positives at 0.3 and 0.35, negatives at 0.1 and 0.2: any threshold in (0.2, 0.3]
    # separates them; 0.3 is the one closest to 0.5. Label 1 has no positive: 0.5.
    probabilities = [[0.3, 0.6], [0.35, 0.2], [0.1, 0.1], [0.2, 0.9]]
    logits = np.vectorize(logit)(np.array(probabilities))
    table = labels_table([[0], [0], [], []])
    assert multilabel.tune_thresholds(logits, table) == [0.3, 0.5]


def test_report_uses_the_thresholds_and_reports_subset_accuracy():
    logits = np.vectorize(logit)(np.array([[0.3, 0.4], [0.35, 0.6], [0.1, 0.7], [0.2, 0.45]]))
    table = labels_table([[0], [0, 1], [1], [1]])
    names = ["sport", "tech"]

    at_half = multilabel.report("m", "test", names, logits, table)
    tuned = multilabel.report("m", "test", names, logits, table, [0.3, 0.5])

    assert at_half.metrics["accuracy"] == 0.25  # only row 2 is exactly right
    assert tuned.metrics["accuracy"] == 0.75  # row 3 misses tech
    assert tuned.per_class["sport"].model_dump() == {
        "precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2
    }  # fmt: skip
    assert tuned.per_class["tech"].recall == pytest.approx(2 / 3)
    assert tuned.metrics["macro_f1"] == pytest.approx((1.0 + 0.8) / 2)
    assert tuned.metrics["micro_f1"] == pytest.approx(2 * 4 / (2 * 4 + 0 + 1))
    assert tuned.confusion_matrix == []


def test_one_vs_rest_baseline_separates_distinct_topics():
    words = {"sport": "goal match team", "tech": "chip software phone"}
    rows = [{"text": f"{words['sport']} {i}", "label": ["sport"]} for i in range(12)]
    rows += [{"text": f"{words['tech']} {i}", "label": ["tech"]} for i in range(12)]
    rows += [
        {"text": f"{words['sport']} {words['tech']} {i}", "label": ["sport", "tech"]}
        for i in range(12)
    ]
    frame = pd.DataFrame(rows)
    report = training_plugin("multilabel").baseline(
        frame.iloc[::2], frame.iloc[1::2], ["sport", "tech"]
    )

    assert report.model_name == "tfidf-logreg-one-vs-rest"
    assert set(report.metrics) == {"accuracy", "macro_f1", "micro_f1"}
    assert report.metrics["micro_f1"] == 1.0


@pytest.fixture(scope="module")
def multilabel_dataset(bbc_slice, tiny_bert_path) -> TokenizedDataset:
    frame = multilabel_titles(bbc_slice)
    frame["topics"] = frame["topics"].str.split("|")
    splits = split_dataset(frame, "text", "topics", SplitSettings(), training_plugin("multilabel"))
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_path)
    return tokenize_dataset(
        splits, tokenizer, "multilabel", training_plugin("multilabel"), max_length=32
    )


@pytest.fixture(scope="module")
def multilabel_model(multilabel_dataset, tiny_bert_path, tmp_path_factory) -> FineTunedModel:
    settings = TrainingSettings(epochs=1, batch_size=8)
    return fine_tune(multilabel_dataset, tiny_bert_path, settings, tmp_path_factory.mktemp("ml"))


def test_fine_tuned_model_keeps_its_thresholds_through_save_and_load(
    multilabel_model, multilabel_dataset, tmp_path
):
    thresholds = multilabel_model.label_thresholds
    assert multilabel_model.model.config.problem_type == "multi_label_classification"
    assert len(thresholds) == len(multilabel_dataset.label_names) == 5
    assert set(thresholds) <= set(multilabel.THRESHOLD_GRID.tolist())
    test = multilabel_dataset.splits["test"]
    report = multilabel_model.evaluate(test, "test")
    assert set(report.metrics) == {"accuracy", "macro_f1", "micro_f1"}

    multilabel_model.save(tmp_path)
    loaded = FineTunedModel.load(tmp_path, "multilabel")
    assert loaded.label_thresholds == thresholds
    assert loaded.text_windows == (32, 1)  # as multilabel_dataset was tokenized
    assert loaded.model.config.problem_type == "multi_label_classification"
    assert np.allclose(
        loaded.predict_logits(test), multilabel_model.predict_logits(test), atol=1e-6
    )
    assert loaded.evaluate(test, "test") == report


def test_materializers_round_trip_multilabel_artifacts(
    multilabel_model, multilabel_dataset, tmp_path
):
    dataset = materializer_round_trip(
        TokenizedDatasetMaterializer, multilabel_dataset, tmp_path / "dataset"
    )
    assert dataset.task == "multilabel"
    for split, table in multilabel_dataset.splits.items():
        assert dataset.splits[split].equals(table)
    preview = (tmp_path / "dataset" / "artifact" / "preview.html").read_text()
    first_labels = multilabel_dataset.splits["train"].column("labels")[0].as_py()
    assert f"<td>{' '.join(dataset.row_label_names(first_labels))}</td>" in preview

    model = materializer_round_trip(
        FineTunedModelMaterializer, multilabel_model, tmp_path / "model"
    )
    assert model.task == "multilabel"
    assert model.label_thresholds == multilabel_model.label_thresholds

    report = multilabel_model.evaluate(multilabel_dataset.splits["test"], "test")
    loaded = materializer_round_trip(EvaluationReportMaterializer, report, tmp_path / "report")
    assert loaded == report
    assert {path.name for path in (tmp_path / "report" / "artifact").iterdir()} == {
        "report.json",
        "metrics.html",
    }  # no confusion matrix: multi-label classes are not exclusive
