"""Data validation: one test per kind of bad data, each naming its cause, and the materializer."""

import json
import socket
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from zenml.artifact_stores.local_artifact_store import (
    LocalArtifactStore,
    LocalArtifactStoreConfig,
)
from zenml.enums import StackComponentType, VisualizationType

from materializers.validation_report import ValidationReportMaterializer
from stackport.core.settings import ValidationSettings
from stackport.data.validation import (
    CheckResult,
    DataValidationError,
    ValidationReport,
    validate_dataset,
)
from stackport.tasks import training_plugin

SETTINGS = ValidationSettings(labels=["sport", "tech"], min_examples_per_class=3)
CLASSIFICATION = training_plugin("classification")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a network connection fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def valid_frame() -> pd.DataFrame:
    labels = ["sport"] * 4 + ["tech"] * 4
    return pd.DataFrame(
        {"text": [f"article {i} about {label}" for i, label in enumerate(labels)], "label": labels}
    )


def validate(frame: pd.DataFrame, **kwargs) -> ValidationReport:
    settings = kwargs.pop("settings", SETTINGS)
    return validate_dataset(frame, "text", "label", settings, CLASSIFICATION, **kwargs)


def failure(report: ValidationReport, name: str) -> CheckResult:
    """The failed check called `name`, after checking that it is named in the summary."""
    assert not report.success
    failed = {check.name: check for check in report.failures()}
    assert name in failed, report.summary()
    assert f"{name}: {failed[name].details}" in report.summary()
    return failed[name]


def test_valid_frame_passes_without_touching_the_callers_frame():
    frame = valid_frame()
    original = frame.copy()
    report = validate(frame)
    assert report.success, report.summary()
    assert report.failures() == []
    assert report.row_count == 8
    assert report.columns == ["text", "label"]
    assert {check.name for check in report.checks} == {
        "text_column_exists",
        "label_column_exists",
        "has_rows",
        "text_not_null",
        "text_not_blank",
        "text_length_in_range",
        "label_not_null",
        "label_in_declared_set",
        "declared_labels_seen",
        "enough_classes",
        "enough_examples_per_class",
    }
    pd.testing.assert_frame_equal(frame, original)


def test_integer_labels_are_checked_as_strings():
    frame = valid_frame()
    frame["label"] = [0] * 4 + [1] * 4
    settings = SETTINGS.model_copy(update={"labels": ["0", "1"]})
    assert validate(frame, settings=settings).success


def test_missing_text_column_is_named():
    report = validate(valid_frame().rename(columns={"text": "body"}))
    check = failure(report, "text_column_exists")
    assert "'text'" in check.details and "'body'" in check.details
    assert not any(check.name.startswith("text_not") for check in report.checks)


def test_missing_label_column_is_named():
    report = validate(valid_frame().drop(columns="label"))
    check = failure(report, "label_column_exists")
    assert "'label'" in check.details
    assert [check.name for check in report.failures()] == ["label_column_exists"]


def test_blank_texts_are_listed_by_row():
    frame = valid_frame()
    frame.loc[[1, 5], "text"] = ["   ", "\t\n"]
    check = failure(validate(frame), "text_not_blank")
    assert check.details == "2 rows have a blank text (rows 1, 5)"
    assert check.unexpected_count == 2


def test_text_outside_length_range_names_its_length():
    frame = valid_frame()
    frame.loc[3, "text"] = "x" * 50
    settings = SETTINGS.model_copy(update={"max_text_chars": 40})
    check = failure(validate(frame, settings=settings), "text_length_in_range")
    assert "row 3: 50 chars" in check.details


def test_null_labels_are_listed_by_row():
    frame = valid_frame()
    frame.loc[[2, 6], "label"] = None
    check = failure(validate(frame), "label_not_null")
    assert check.details == "2 rows have no label (rows 2, 6)"


def test_label_outside_declared_set_is_named():
    frame = valid_frame()
    frame.loc[7, "label"] = "weather"
    check = failure(validate(frame), "label_in_declared_set")
    assert "'weather' (1 row)" in check.details and "row 7" in check.details


def test_single_class_is_named():
    frame = valid_frame().assign(label="sport")
    check = failure(validate(frame), "enough_classes")
    assert check.details == "found 1 distinct label ('sport')"


def test_class_below_minimum_count_is_named_with_its_count():
    frame = pd.concat(
        [valid_frame(), pd.DataFrame({"text": ["chip news", "phone news"], "label": "science"})],
        ignore_index=True,
    )
    settings = SETTINGS.model_copy(update={"labels": None})
    check = failure(validate(frame, settings=settings), "enough_examples_per_class")
    assert check.details == "class 'science' has 2 examples, fewer than 3"


def test_same_text_in_train_and_test_is_named():
    frame = valid_frame().assign(split=["train"] * 3 + ["test"] + ["train"] * 3 + ["test"])
    frame.loc[3, "text"] = frame.loc[0, "text"] + "  "
    check = failure(validate(frame), "no_text_in_two_splits")
    assert check.details == (
        "1 text appears in more than one split, e.g. 'article 0 about sport' in test, train "
        "(rows 0, 3)"
    )


def test_max_shared_texts_tolerates_that_many_texts_in_two_splits_and_no_more():
    frame = valid_frame().assign(split=["train"] * 3 + ["test"] + ["train"] * 3 + ["test"])
    frame.loc[3, "text"] = frame.loc[0, "text"]
    frame.loc[7, "text"] = frame.loc[4, "text"]
    tolerant = SETTINGS.model_copy(update={"max_shared_texts": 2})
    assert validate(frame, settings=tolerant).success

    strict = SETTINGS.model_copy(update={"max_shared_texts": 1})
    check = failure(validate(frame, settings=strict), "no_text_in_two_splits")
    assert check.details.startswith(
        "2 texts appear in more than one split (at most 1 allowed), e.g. 'article 0 about sport'"
    )


def test_empty_frame_without_columns_fails_and_names_what_is_missing():
    report = validate(pd.DataFrame())
    assert report.row_count == 0 and report.columns == []
    assert "'text' not found" in failure(report, "text_column_exists").details
    assert "'label' not found" in failure(report, "label_column_exists").details
    assert failure(report, "has_rows").details == "the data has 0 rows"


@pytest.mark.parametrize(
    "problem",
    [
        "data/x.csv is not valid UTF-8: byte 0xff at line 3 (re-save the file as UTF-8)",
        "path does not exist: /nope.csv",
    ],
)
def test_source_problem_becomes_a_failed_check(problem: str):
    report = validate(valid_frame(), source_problems=[problem])
    assert failure(report, "source_readable").details == problem
    assert len(report.failures()) == 1


def test_error_message_is_the_summary_of_every_failure():
    frame = valid_frame()
    frame.loc[0, "text"] = " "
    frame.loc[1, "label"] = "weather"
    report = validate(frame)
    error = DataValidationError(report)
    assert isinstance(error, ValueError) and error.report is report
    assert str(error) == report.summary()
    assert "text_not_blank: 1 row has a blank text (row 0)" in str(error)
    assert "label_in_declared_set" in str(error)


def test_materializer_round_trip(tmp_path: Path):
    frame = valid_frame()
    frame.loc[1, "text"] = " "
    frame.loc[2, "label"] = "<script>"
    report = validate(frame)
    now = datetime.now(UTC)
    store = LocalArtifactStore(
        name="test",
        id=uuid.uuid4(),
        config=LocalArtifactStoreConfig(path=str(tmp_path)),
        flavor="local",
        type=StackComponentType.ARTIFACT_STORE,
        user=None,
        created=now,
        updated=now,
    )
    materializer = ValidationReportMaterializer(uri=str(tmp_path), artifact_store=store)

    materializer.save(report)
    assert ValidationReportMaterializer(str(tmp_path), store).load(ValidationReport) == report
    assert json.loads((tmp_path / "report.json").read_text())["success"] is False

    visualizations = materializer.save_visualizations(report)
    assert visualizations == {str(tmp_path / "report.html"): VisualizationType.HTML}
    page = (tmp_path / "report.html").read_text()
    for check in report.failures():
        assert check.name in page
    assert "&#x27;&lt;script&gt;&#x27;" in page and "<script>" not in page

    assert materializer.extract_metadata(report) == {
        "success": False,
        "row_count": 8,
        "failed_checks": 3,
    }
