"""Load step: read the configured source (a bundled data set, or files) as the task reads it."""

from typing import Annotated

import pandas as pd
from zenml import log_metadata, step
from zenml.logger import get_logger

from stackport.core.names import Artifact
from stackport.core.settings import DataSettings
from stackport.data.bundled import read_dataset
from stackport.data.sources import LoadReport
from stackport.tasks import training_plugin

logger = get_logger(__name__)


# A source can change under an unchanged name, so this step always reads it; its outputs'
# content hashes let every later step come from the cache when the content did not change.
@step(enable_cache=False)
def load_data(
    data: DataSettings,
) -> tuple[
    Annotated[pd.DataFrame, Artifact.RAW_DATASET], Annotated[LoadReport, Artifact.LOAD_REPORT]
]:
    """Read the configured source with the task's reader.

    Args:
        data: Where the data is, its task and columns.

    Returns:
        The rows as read, with their original columns, and a report of what was read.
    """
    frame, report = read_dataset(data, training_plugin(data.task).read)
    logger.info("Read %d rows from %s.", report.rows, report.source)
    for note in report.notes:
        logger.info("Reader: %s", note)
    for problem in report.problems:
        logger.warning("Source problem: %s", problem)
    log_metadata({"rows": report.rows, "source": report.source, "problems": len(report.problems)})
    return frame, report
