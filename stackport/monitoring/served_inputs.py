"""Reading a window of the served-input log (`stackport.serving.request_log`).

The log is a folder of complete Parquet files (a worker's open file is named `.part` and is not
read). A window is the records of one model version: all of them, those from a time on, and of
those the newest `last_records`.
"""

from __future__ import annotations

import os
from datetime import datetime

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec import AbstractFileSystem
from fsspec.core import url_to_fs
from pydantic import BaseModel, Field

from stackport.serving.request_log import FILE_SUFFIX, LOG_SCHEMA


class ServedWindow(BaseModel):
    """Which served records a monitor run read."""

    path: str = Field(description="The log's folder.")
    files: int = Field(description="Complete log files read.")
    model_records: int = Field(description="Records of the model version in those files.")
    records: int = Field(description="Records in the window.")
    last_records: int | None = Field(description="The window's size limit; null: none.")
    since: datetime | None = Field(description="The window's start; null: none.")
    first: datetime | None = Field(description="The window's oldest record.")
    last: datetime | None = Field(description="The window's newest record.")


def log_files(
    path: str, filesystem: AbstractFileSystem | None = None
) -> tuple[AbstractFileSystem, list[str]]:
    """The log's filesystem and its complete files, sorted; none when the folder is missing."""
    if filesystem is None:
        filesystem, folder = url_to_fs(os.path.expanduser(path))
    else:
        folder = path
    if not filesystem.exists(folder):
        return filesystem, []
    return filesystem, sorted(filesystem.glob(f"{folder.rstrip('/')}/*{FILE_SUFFIX}"))


def read_window(
    path: str,
    model_name: str,
    model_version: str,
    last_records: int | None,
    since: datetime | None,
    filesystem: AbstractFileSystem | None = None,
) -> tuple[pd.DataFrame, ServedWindow]:
    """The window of a model version's served records, oldest first.

    Args:
        path: The log's folder: a local path (`~` expanded) or an fsspec URI.
        model_name: Only records of this model...
        model_version: ...and version.
        last_records: At most this many, the newest; None: all.
        since: Only records from this time on (a naive time is UTC); None: any.
        filesystem: The filesystem `path` is on (e.g. the artifact store's); None: from `path`.

    Returns:
        The records (the columns of `LOG_SCHEMA`) and what the window holds.
    """
    filesystem, files = log_files(path, filesystem)
    tables = []
    for file in files:
        with filesystem.open(file, "rb") as handle:
            tables.append(pq.read_table(handle, schema=LOG_SCHEMA))
    table = pa.concat_tables(tables) if tables else LOG_SCHEMA.empty_table()
    frame = table.to_pandas()
    frame = frame[(frame["model_name"] == model_name) & (frame["model_version"] == model_version)]
    model_records = len(frame)
    if since is not None:
        start = pd.Timestamp(since)
        frame = frame[
            frame["time"] >= (start.tz_localize("UTC") if start.tzinfo is None else start)
        ]
    frame = frame.sort_values("time", kind="stable")
    if last_records is not None:
        frame = frame.tail(last_records)
    frame = frame.reset_index(drop=True)
    window = ServedWindow(
        path=path,
        files=len(files),
        model_records=model_records,
        records=len(frame),
        last_records=last_records,
        since=since,
        first=frame["time"].iloc[0].to_pydatetime() if len(frame) else None,
        last=frame["time"].iloc[-1].to_pydatetime() if len(frame) else None,
    )
    return frame, window
