"""Load step: read the labelled data."""

from typing import Annotated

import pandas as pd
from zenml import log_metadata, step
from zenml.logger import get_logger

from textmodels.data_sources import LoadReport, read_bbc_news, read_source
from textmodels.settings import DataSettings

logger = get_logger(__name__)


# The source's content can change under an unchanged path, so this step never caches.
@step(enable_cache=False)
def load_data(
    data: DataSettings,
) -> tuple[Annotated[pd.DataFrame, "raw_dataset"], Annotated[LoadReport, "load_report"]]:
    """Read the configured source, or the bundled BBC News corpus when none is set.

    Args:
        data: Where the data is.

    Returns:
        The rows as read, with their original columns, and a report of what was read.
    """
    frame, report = read_bbc_news() if data.source is None else read_source(data.source)
    logger.info("Read %d rows from %s.", report.rows, report.source)
    for note in report.notes:
        logger.info("Reader: %s", note)
    for problem in report.problems:
        logger.warning("Source problem: %s", problem)
    log_metadata({"rows": report.rows, "source": report.source, "problems": len(report.problems)})
    return frame, report
