"""Splitting without leakage, tokenization, the baseline and the evaluation report."""

import pandas as pd
import pytest
from transformers import AutoTokenizer

from stackport.core.names import SPLIT_COLUMN
from stackport.core.settings import SplitSettings
from stackport.data.splitting import split_dataset
from stackport.data.tokenization import tokenize_dataset, tokenizer_fingerprint
from stackport.evaluation.report import classification_report
from stackport.tasks import training_plugin
from stackport.tasks.classification.train import evaluate_baseline

CLASSIFICATION = training_plugin("classification")


@pytest.fixture()
def labelled() -> pd.DataFrame:
    rows = [{"body": f"text {i} of {label}", "topic": label} for label in "abc" for i in range(30)]
    rows += [{"body": "repeated text", "topic": "a"}] * 5  # exact duplicates
    return pd.DataFrame(rows)


def test_split_is_stratified_seeded_and_keeps_duplicates_together(labelled):
    settings = SplitSettings(validation_fraction=0.2, test_fraction=0.2, seed=7)
    splits = split_dataset(labelled, "body", "topic", settings, CLASSIFICATION)
    again = split_dataset(labelled, "body", "topic", settings, CLASSIFICATION)

    assert sum(len(frame) for frame in splits.values()) == len(labelled)
    for name, frame in splits.items():
        assert list(frame.columns) == ["text", "label"]
        assert frame.equals(again[name])
    sizes = {name: frame["label"].nunique() for name, frame in splits.items()}
    assert sizes == {"train": 3, "validation": 3, "test": 3}
    texts = {name: set(frame["text"]) for name, frame in splits.items()}
    assert not texts["train"] & texts["test"]
    assert not texts["train"] & texts["validation"]
    assert not texts["validation"] & texts["test"]
    assert len(splits["test"]) == pytest.approx(0.2 * 91, abs=3)


def test_given_splits_are_kept_and_a_missing_validation_split_is_carved(labelled):
    labelled[SPLIT_COLUMN] = ["test" if i % 5 == 0 else "train" for i in range(len(labelled))]
    splits = split_dataset(labelled, "body", "topic", SplitSettings(), CLASSIFICATION)
    assert len(splits["test"]) == (labelled[SPLIT_COLUMN] == "test").sum()
    assert len(splits["validation"]) > 0
    assert (
        len(splits["train"]) + len(splits["validation"])
        == (labelled[SPLIT_COLUMN] == "train").sum()
    )


def test_max_rows_takes_a_seeded_subset_of_the_named_splits_only(labelled):
    full = split_dataset(labelled, "body", "topic", SplitSettings(seed=3), CLASSIFICATION)
    settings = SplitSettings(seed=3, max_rows={"train": 20, "test": 4})
    subset = split_dataset(labelled, "body", "topic", settings, CLASSIFICATION)

    assert len(subset["train"]) == 20 and len(subset["test"]) == 4
    assert subset["validation"].equals(full["validation"])
    for name in ("train", "test"):
        assert set(subset[name]["text"]) < set(full[name]["text"])
    assert subset["train"].equals(
        split_dataset(labelled, "body", "topic", settings, CLASSIFICATION)["train"]
    )


def test_tokenized_dataset_counts_labels_and_truncation(tiny_bert_path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_path)
    splits = {
        "train": pd.DataFrame({"text": ["short", "a much longer text " * 20], "label": ["x", "y"]}),
        "validation": pd.DataFrame({"text": ["short"], "label": ["x"]}),
        "test": pd.DataFrame({"text": ["short"], "label": ["z"]}),
    }
    dataset = tokenize_dataset(splits, tokenizer, "classification", CLASSIFICATION, max_length=16)

    assert dataset.label_names == ["x", "y", "z"]
    assert dataset.label_counts("train") == {"x": 1, "y": 1, "z": 0}
    assert dataset.truncation_rate("train") == 0.5
    assert dataset.truncation_rate("validation") == 0.0
    lengths = [len(ids) for ids in dataset.splits["train"].column("input_ids").to_pylist()]
    assert max(lengths) == 16
    assert dataset.tokenizer_fingerprint == tokenizer_fingerprint(tokenizer)


def test_classification_report_metrics():
    report = classification_report("m", "test", ["a", "b"], [0, 0, 1, 1], [0, 1, 1, 1])
    assert report.metrics["accuracy"] == 0.75
    assert report.confusion_matrix == [[1, 1], [0, 2]]
    assert report.per_class["a"].recall == 0.5
    assert report.metrics["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)


def test_tfidf_baseline_separates_distinct_topics():
    words = {"sport": "goal match team", "tech": "chip software phone"}
    rows = [{"text": f"{words[label]} {i}", "label": label} for label in words for i in range(20)]
    frame = pd.DataFrame(rows)
    report = evaluate_baseline(frame.iloc[::2], frame.iloc[1::2], ["sport", "tech"])
    assert report.model_name == "tfidf-logreg"
    assert report.metrics["macro_f1"] == 1.0
