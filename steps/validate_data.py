"""Validate step: Great Expectations checks that stop a bad dataset before training."""

from typing import Annotated

import pandas as pd
from zenml import save_artifact, step
from zenml.logger import get_logger

from pipelines.step_cache import code_cache_policy
from stackport.core.names import Artifact
from stackport.core.settings import DataSettings, ValidationSettings
from stackport.data.sources import LoadReport
from stackport.data.validation import DataValidationError, ValidationReport, validate_dataset
from stackport.tasks import training_plugin

logger = get_logger(__name__)


@step(cache_policy=code_cache_policy(__name__))
def validate_data(
    raw_dataset: pd.DataFrame,
    load_report: LoadReport,
    data: DataSettings,
    validation: ValidationSettings,
) -> Annotated[ValidationReport, Artifact.VALIDATION_REPORT]:
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
        data.text_column,
        data.label_column,
        validation,
        training_plugin(data.task),
        source_problems=load_report.problems,
    )
    if not report.success:
        save_artifact(report, name=Artifact.VALIDATION_REPORT)
        raise DataValidationError(report)
    logger.info("All %d validation checks passed.", len(report.checks))
    return report
