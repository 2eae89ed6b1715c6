"""Validation of a labelled text dataset with Great Expectations, before any training.

`validate_dataset` runs one Great Expectations suite over a copy of the raw frame and turns
every expectation result into a `CheckResult` whose details name what was found: rows, counts,
offending values. Problems met while reading the source become failed checks too, so that one
report, and the `DataValidationError` built from it, lists everything that is wrong.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import pydantic

from stackport.core.names import SPLIT_COLUMN
from stackport.core.plugins import TaskTraining
from stackport.core.settings import ValidationSettings
from stackport.data.checks import PlannedCheck, split_check

REPORT_STYLE = (
    "body{font-family:sans-serif;font-size:14px;margin:1em}"
    "table{border-collapse:collapse}"
    "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
    "tr.pass td.result{background:#e6f4ea;color:#137333}"
    "tr.fail td.result{background:#fce8e6;color:#a50e0e}"
    ".passed{color:#137333}.failed{color:#a50e0e}"
)


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


def validate_dataset(
    frame: pd.DataFrame,
    text_column: str,
    label_column: str,
    settings: ValidationSettings,
    plugin: TaskTraining,
    source_problems: Sequence[str] = (),
    split_column: str = SPLIT_COLUMN,
) -> ValidationReport:
    """Check a raw labelled text frame against `settings` and report every problem found.

    Args:
        frame: The raw data with its original column names, as the task's reader returned
            it; it is not modified.
        text_column: The column holding the texts (for `ner`, each sentence's tokens).
        label_column: The column holding the labels (for `multilabel`, each text's label
            list; for `ner`, each sentence's tags).
        settings: The thresholds and the declared label set.
        plugin: The task's training plug-in, which plans the checks of the text and label
            columns.
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
    planned = _plan_checks(data, text_column, label_column, settings, split_column, plugin)
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
    spec: TaskTraining,
) -> list[PlannedCheck]:
    """Build the expectations for `data`, adding the helper columns some of them need."""
    import great_expectations.expectations as gxe

    def missing_column(column: str) -> Callable[[dict[str, Any]], str]:
        present = ", ".join(repr(str(name)) for name in data.columns) or "none"
        return lambda _: f"column {column!r} not found (columns present: {present})"

    planned = [
        PlannedCheck(
            "text_column_exists",
            f"a text column {text_column!r} exists",
            gxe.ExpectColumnToExist(column=text_column),
            missing_column(text_column),
        ),
        PlannedCheck(
            "label_column_exists",
            f"a label column {label_column!r} exists",
            gxe.ExpectColumnToExist(column=label_column),
            missing_column(label_column),
        ),
        PlannedCheck(
            "has_rows",
            "the data has at least 1 row",
            gxe.ExpectTableRowCountToBeBetween(min_value=1),
            lambda result: f"the data has {result['observed_value']} rows",
        ),
    ]
    has_text = text_column in data.columns
    if has_text:
        planned += spec.text_checks(data, text_column, settings)
    if label_column in data.columns:
        planned += spec.label_checks(
            data, label_column, settings, text_column if has_text else None
        )
    if has_text and split_column in data.columns:
        planned.append(
            split_check(data, text_column, split_column, spec.text_key, settings.max_shared_texts)
        )
    return planned


def _run_checks(data: pd.DataFrame, planned: list[PlannedCheck]) -> list[CheckResult]:
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
