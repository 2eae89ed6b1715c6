"""Load step: read the labelled data as the task's reader reads it."""

from typing import Annotated

import pandas as pd
from zenml import log_metadata, step
from zenml.logger import get_logger

from textmodels.data_sources import LoadReport
from textmodels.settings import DataSettings
from textmodels.task_registry import task_spec

logger = get_logger(__name__)


# The source's content can change under an unchanged path, so this step never caches.
@step(enable_cache=False)
def load_data(
    data: DataSettings,
) -> tuple[Annotated[pd.DataFrame, "raw_dataset"], Annotated[LoadReport, "load_report"]]:
    """Read the configured source with the task's reader.

    Classification reads the bundled BBC News corpus when no source is set; multilabel labels
    are parsed into lists; ner also reads CoNLL files.

    Args:
        data: Where the data is, its task and columns.

    Returns:
        The rows as read, with their original columns, and a report of what was read.
    """
    frame, report = task_spec(data.task).read(data)
    logger.info("Read %d rows from %s.", report.rows, report.source)
    for note in report.notes:
        logger.info("Reader: %s", note)
    for problem in report.problems:
        logger.warning("Source problem: %s", problem)
    log_metadata({"rows": report.rows, "source": report.source, "problems": len(report.problems)})
    return frame, report
