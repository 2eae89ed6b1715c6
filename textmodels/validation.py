"""Validation of a labelled text dataset with Great Expectations, before any training.

`validate_dataset` runs one Great Expectations suite over a copy of the raw frame and turns
every expectation result into a `CheckResult` whose details name what was found: rows, counts,
offending values. Problems met while reading the source become failed checks too, so that one
report, and the `DataValidationError` built from it, lists everything that is wrong.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
import pydantic

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

SHOWN_ROWS = 5
SHOWN_VALUES = 5
VALUE_CHARS = 80
REPORT_STYLE = (
    "body{font-family:sans-serif;font-size:14px;margin:1em}"
    "table{border-collapse:collapse}"
    "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
    "tr.pass td.result{background:#e6f4ea;color:#137333}"
    "tr.fail td.result{background:#fce8e6;color:#a50e0e}"
    ".passed{color:#137333}.failed{color:#a50e0e}"
)


class ValidationSettings(pydantic.BaseModel):
    """What a dataset must satisfy to be trained on."""

    labels: list[str] | None = None
    min_classes: int = 2
    min_examples_per_class: int = 10
    min_text_chars: int = 1
    max_text_chars: int = 100_000


class CheckResult(pydantic.BaseModel):
    """The outcome of one check; `unexpected_count` is the number of offending rows."""

    name: str
    description: str
    success: bool
    details: str = ""
    unexpected_count: int | None = None


class ValidationReport(pydantic.BaseModel):
    """Every check run on a dataset, and whether all of them passed."""

    success: bool
    row_count: int
    columns: list[str]
    checks: list[CheckResult]

    def failures(self) -> list[CheckResult]:
        """The checks that failed, in report order."""
        return [check for check in self.checks if not check.success]

    def summary(self) -> str:
        """One line per failed check with its details, under a headline."""
        failures = self.failures()
        shape = f"{self.row_count} rows; columns: {', '.join(self.columns) or '(none)'}"
        if not failures:
            return f"Data validation passed: all {len(self.checks)} checks passed ({shape})."
        failed = f"{len(failures)} of {len(self.checks)} checks failed"
        lines = [f"Data validation failed: {failed} ({shape})."]
        lines += [f"- {check.name}: {check.details or check.description}" for check in failures]
        return "\n".join(lines)

    def to_html(self) -> str:
        """A self-contained HTML page with a table of all checks, failures first."""
        failed = len(self.failures())
        verdict = (
            f'<span class="failed">FAILED: {failed} of {len(self.checks)} checks</span>'
            if failed
            else f'<span class="passed">PASSED: all {len(self.checks)} checks</span>'
        )
        columns = ", ".join(html.escape(column) for column in self.columns) or "(none)"
        rows = "".join(
            f'<tr class="{"pass" if check.success else "fail"}">'
            f'<td class="result">{"pass" if check.success else "FAIL"}</td>'
            f"<td><code>{html.escape(check.name)}</code></td>"
            f"<td>{html.escape(check.description)}</td>"
            f"<td>{html.escape(check.details)}</td></tr>"
            for check in sorted(self.checks, key=lambda check: check.success)
        )
        return (
            '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Data validation</title>'
            f"<style>{REPORT_STYLE}</style></head><body>"
            f"<h1>Data validation: {verdict}</h1>"
            f"<p>{self.row_count} rows; columns: {columns}</p>"
            "<table><tr><th>result</th><th>check</th><th>expected</th><th>details</th></tr>"
            f"{rows}</table></body></html>"
        )


class DataValidationError(ValueError):
    """Raised when a dataset fails validation; `str()` is the report's summary."""

    def __init__(self, report: ValidationReport):
        super().__init__(report.summary())
        self.report = report


@dataclass
class _PlannedCheck:
    """A check to run: its Great Expectations expectation and how to word a failure."""

    name: str
    description: str
    expectation: Expectation
    explain: Callable[[dict[str, Any]], str]


def validate_dataset(
    frame: pd.DataFrame,
    text_column: str,
    label_column: str,
    settings: ValidationSettings,
    source_problems: Sequence[str] = (),
    split_column: str = "split",
) -> ValidationReport:
    """Check a raw labelled text frame against `settings` and report every problem found.

    Args:
        frame: The raw data with its original column names; it is not modified.
        text_column: The column holding the texts.
        label_column: The column holding the labels (strings or integers).
        settings: The thresholds and the declared label set.
        source_problems: Problems met while reading the source; each becomes a failed check.
        split_column: When present, the column naming the split (train/validation/test) of
            each row, as given by the user's split files.

    Returns:
        The report; `success` is False if any check failed.
    """
    checks = [
        CheckResult(
            name="source_readable",
            description="the data source can be read",
            success=False,
            details=problem,
        )
        for problem in source_problems
    ]
    # A new frame (copy-on-write), so helper columns never reach the caller's frame; its
    # RangeIndex makes the row numbers in the details 0-based positions.
    data = frame.reset_index(drop=True)
    planned = _plan_checks(data, text_column, label_column, settings, split_column)
    checks += _run_checks(data, planned)
    return ValidationReport(
        success=all(check.success for check in checks),
        row_count=len(frame),
        columns=[str(column) for column in frame.columns],
        checks=checks,
    )


def _plan_checks(
    data: pd.DataFrame,
    text_column: str,
    label_column: str,
    settings: ValidationSettings,
    split_column: str,
) -> list[_PlannedCheck]:
    """Build the expectations for `data`, adding the helper columns some of them need."""
    import great_expectations.expectations as gxe

    def missing_column(column: str) -> Callable[[dict[str, Any]], str]:
        present = ", ".join(repr(str(name)) for name in data.columns) or "none"
        return lambda _: f"column {column!r} not found (columns present: {present})"

    planned = [
        _PlannedCheck(
            "text_column_exists",
            f"a text column {text_column!r} exists",
            gxe.ExpectColumnToExist(column=text_column),
            missing_column(text_column),
        ),
        _PlannedCheck(
            "label_column_exists",
            f"a label column {label_column!r} exists",
            gxe.ExpectColumnToExist(column=label_column),
            missing_column(label_column),
        ),
        _PlannedCheck(
            "has_rows",
            "the data has at least 1 row",
            gxe.ExpectTableRowCountToBeBetween(min_value=1),
            lambda result: f"the data has {result['observed_value']} rows",
        ),
    ]
    if text_column in data.columns:
        planned += _text_checks(data, text_column, settings)
    if label_column in data.columns:
        data[label_column] = data[label_column].map(_label_text)
        planned += _label_checks(data, label_column, settings)
    if text_column in data.columns and split_column in data.columns:
        planned.append(_split_check(data, text_column, split_column))
    return planned


def _text_checks(
    data: pd.DataFrame, text_column: str, settings: ValidationSettings
) -> list[_PlannedCheck]:
    """Checks on the texts: present, not blank, of a length within the settings' bounds."""
    import great_expectations.expectations as gxe

    low, high = settings.min_text_chars, settings.max_text_chars

    def explain_lengths(result: dict[str, Any]) -> str:
        rows = result["unexpected_index_list"]
        lengths = ", ".join(
            f"row {row}: {len(str(data.at[row, text_column]))} chars" for row in rows[:SHOWN_ROWS]
        )
        more = f" and {len(rows) - SHOWN_ROWS} more" if len(rows) > SHOWN_ROWS else ""
        return _rows_have(rows, f"a text length outside [{low}, {high}]", f"{lengths}{more}")

    return [
        _PlannedCheck(
            "text_not_null",
            f"every row has a text in {text_column!r}",
            gxe.ExpectColumnValuesToNotBeNull(column=text_column),
            lambda result: _rows_have(result["unexpected_index_list"], "no text"),
        ),
        _PlannedCheck(
            "text_not_blank",
            "no text is blank (empty or whitespace only)",
            gxe.ExpectColumnValuesToNotMatchRegex(column=text_column, regex=r"^\s*$"),
            lambda result: _rows_have(result["unexpected_index_list"], "a blank text"),
        ),
        _PlannedCheck(
            "text_length_in_range",
            f"every text has between {low} and {high} characters",
            gxe.ExpectColumnValueLengthsToBeBetween(
                column=text_column, min_value=low, max_value=high
            ),
            explain_lengths,
        ),
    ]


def _label_checks(
    data: pd.DataFrame, label_column: str, settings: ValidationSettings
) -> list[_PlannedCheck]:
    """Checks on the labels (already text): present, declared, enough classes and examples."""
    import great_expectations.expectations as gxe

    labels = data[label_column]
    counts = labels.value_counts()
    frequency_column = _helper_column(data, "label_frequency")
    data[frequency_column] = labels.map(counts)

    def explain_undeclared(result: dict[str, Any]) -> str:
        rows = result["unexpected_index_list"]
        found = Counter(labels.iloc[rows]).most_common()
        shown = ", ".join(
            f"{_quote(label)} ({_plural(count, 'row')})" for label, count in found[:SHOWN_VALUES]
        )
        more = f" and {len(found) - SHOWN_VALUES} more" if len(found) > SHOWN_VALUES else ""
        undeclared = _rows_have(rows, "a label outside the declared set")
        return f"{undeclared}; the undeclared labels are {shown}{more}"

    def explain_classes(result: dict[str, Any]) -> str:
        if not result["observed_value"]:
            return "found no labels"
        found = _plural(result["observed_value"], "distinct label")
        return f"found {found} ({_values(counts.index)})"

    def explain_small_classes(result: dict[str, Any]) -> str:
        small = Counter(labels.iloc[result["unexpected_index_list"]])
        return "; ".join(
            f"class {_quote(label)} has {_plural(count, 'example')}, "
            f"fewer than {settings.min_examples_per_class}"
            for label, count in sorted(small.items(), key=lambda item: (item[1], item[0]))
        )

    planned = [
        _PlannedCheck(
            "label_not_null",
            f"every row has a label in {label_column!r}",
            gxe.ExpectColumnValuesToNotBeNull(column=label_column),
            lambda result: _rows_have(result["unexpected_index_list"], "no label"),
        )
    ]
    if settings.labels is not None:
        declared = [str(label) for label in settings.labels]
        planned.append(
            _PlannedCheck(
                "label_in_declared_set",
                f"every label is one of the declared labels ({_values(declared)})",
                gxe.ExpectColumnValuesToBeInSet(column=label_column, value_set=declared),
                explain_undeclared,
            )
        )
    return [
        *planned,
        _PlannedCheck(
            "enough_classes",
            f"there are at least {settings.min_classes} distinct labels",
            gxe.ExpectColumnUniqueValueCountToBeBetween(
                column=label_column, min_value=settings.min_classes
            ),
            explain_classes,
        ),
        _PlannedCheck(
            "enough_examples_per_class",
            f"every class has at least {settings.min_examples_per_class} examples",
            gxe.ExpectColumnValuesToBeBetween(
                column=frequency_column, min_value=settings.min_examples_per_class
            ),
            explain_small_classes,
        ),
    ]


def _split_check(data: pd.DataFrame, text_column: str, split_column: str) -> _PlannedCheck:
    """No text, stripped of surrounding whitespace, may occur in two different splits."""
    import great_expectations.expectations as gxe

    texts = data[text_column].map(lambda text: text if pd.isna(text) else str(text).strip())
    splits_column = _helper_column(data, "splits_per_text")
    data[splits_column] = data[split_column].groupby(texts).transform("nunique")

    def explain_overlap(result: dict[str, Any]) -> str:
        shared = texts.iloc[result["unexpected_index_list"]]
        count = shared.nunique()
        example = shared.iloc[0]
        rows = data.index[texts == example].tolist()
        splits = ", ".join(sorted({str(split) for split in data.loc[rows, split_column]}))
        return (
            f"{_plural(count, 'text')} {'appears' if count == 1 else 'appear'} in more than one "
            f"split, e.g. {_quote(example)} in {splits} ({_row_numbers(rows)})"
        )

    return _PlannedCheck(
        "no_text_in_two_splits",
        f"no text appears in more than one split (column {split_column!r})",
        gxe.ExpectColumnValuesToBeBetween(column=splits_column, max_value=1),
        explain_overlap,
    )


def _run_checks(data: pd.DataFrame, planned: list[_PlannedCheck]) -> list[CheckResult]:
    """Run all planned expectations as one suite on `data`, in an ephemeral GX context."""
    # Imported here: importing Great Expectations takes seconds, which only validation pays.
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    context = gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False),
        ),
    )
    batch_definition = (
        context.data_sources.add_pandas("raw_data")
        .add_dataframe_asset("frame")
        .add_batch_definition_whole_dataframe("whole_frame")
    )
    for check in planned:
        check.expectation.meta = {"check": check.name}
    suite = context.suites.add(
        gx.ExpectationSuite(
            name="text_dataset", expectations=[check.expectation for check in planned]
        )
    )
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="text_dataset", data=batch_definition, suite=suite)
    )
    run = definition.run(
        batch_parameters={"dataframe": data},
        result_format={"result_format": "COMPLETE", "return_unexpected_index_query": False},
    )
    # GX does not keep the suite's order in its results: match them by the check name.
    results = {result.expectation_config.meta["check"]: result for result in run.results}
    checks = []
    for check in planned:
        result = results[check.name]
        error = _exception_message(result.exception_info)
        if error:
            details = f"the check could not run: {error}"
        else:
            details = "" if result.success else check.explain(result.result)
        checks.append(
            CheckResult(
                name=check.name,
                description=check.description,
                success=bool(result.success),
                details=details,
                unexpected_count=result.result.get("unexpected_count"),
            )
        )
    return checks


def _exception_message(info: dict[str, Any] | None) -> str | None:
    """The message of an exception GX caught while running an expectation, if any."""
    if not info:
        return None
    # Either one record, or one record per metric keyed by the metric's id.
    records = [info] if "raised_exception" in info else list(info.values())
    for record in records:
        if record.get("raised_exception"):
            return str(record.get("exception_message"))
    return None


def _label_text(value: Any) -> str | None:
    """A label as text: 3 and 3.0 (an integer column with gaps) both become "3"."""
    if pd.isna(value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _helper_column(data: pd.DataFrame, stem: str) -> str:
    """A column name for a helper column that does not clash with the data's columns."""
    name = f"__{stem}__"
    while name in data.columns:
        name += "_"
    return name


def _quote(value: Any) -> str:
    """A value for a message: quoted, on one line, at most `VALUE_CHARS` characters."""
    text = str(value)
    if len(text) > VALUE_CHARS:
        text = text[: VALUE_CHARS - 1] + "…"
    return repr(text)


def _values(values: Iterable[Any]) -> str:
    """The first `SHOWN_VALUES` values, quoted, and how many more there are."""
    values = list(values)
    shown = ", ".join(_quote(value) for value in values[:SHOWN_VALUES])
    hidden = len(values) - SHOWN_VALUES
    return f"{shown} and {hidden} more" if hidden > 0 else shown


def _plural(count: int, noun: str) -> str:
    """The count and the noun, plural unless the count is 1: `1 row`, `3 rows`."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _rows_have(rows: list[int], what: str, listing: str | None = None) -> str:
    """`3 rows have <what> (rows 4, 17, 30)`; `listing` replaces the row numbers."""
    verb = "has" if len(rows) == 1 else "have"
    return f"{_plural(len(rows), 'row')} {verb} {what} ({listing or _row_numbers(rows)})"


def _row_numbers(rows: list[int]) -> str:
    """`row 4` or `rows 4, 17, 30`: at most `SHOWN_ROWS` 0-based positions, then how many more."""
    shown = ", ".join(str(row) for row in rows[:SHOWN_ROWS])
    hidden = len(rows) - SHOWN_ROWS
    more = f" and {hidden} more" if hidden > 0 else ""
    return f"{'row' if len(rows) == 1 else 'rows'} {shown}{more}"
