"""Validate step: Great Expectations checks that stop a bad dataset before training."""

from typing import Annotated

import pandas as pd
from zenml import save_artifact, step
from zenml.logger import get_logger

from textmodels.data_sources import LoadReport
from textmodels.settings import DataSettings
from textmodels.validation import (
    DataValidationError,
    ValidationReport,
    ValidationSettings,
    validate_dataset,
)

logger = get_logger(__name__)


@step
def validate_data(
    raw_dataset: pd.DataFrame,
    load_report: LoadReport,
    data: DataSettings,
    validation: ValidationSettings,
) -> Annotated[ValidationReport, "validation_report"]:
    """Run the expectation suite of the task over the raw rows and the reader's findings.

    Args:
        raw_dataset: The rows as read.
        load_report: What the reader could not read.
        data: The task, and which columns hold text and label.
        validation: Thresholds and the declared label set.

    Returns:
        The validation report, when every check passed.

    Raises:
        DataValidationError: Naming every failed check. The report is saved as the
            `validation_report` artifact first, so it can be read in the dashboard.
    """
    report = validate_dataset(
        raw_dataset,
        text_column=data.text_column,
        label_column=data.label_column,
        settings=validation,
        source_problems=load_report.problems,
        task=data.task,
    )
    if not report.success:
        save_artifact(report, name="validation_report")
        raise DataValidationError(report)
    logger.info("All %d validation checks passed.", len(report.checks))
    return report
