"""Reading labelled text: a bundled data set by name, or user files (CSV, JSONL, Parquet).

Readers never raise on bad input. They return what they could read together with a
`LoadReport` whose `problems` the validation step turns into named failures, so that a bad
source stops the pipeline at validation with every problem listed.
"""

from __future__ import annotations

import io
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import fsspec
import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from stackport.core.names import SPLIT_COLUMN

SPLIT_FILE_STEMS = {
    "train": "train",
    "validation": "validation",
    "valid": "validation",
    "dev": "validation",
    "test": "test",
}


class LoadReport(BaseModel):
    """What a reader read, what it did to the data and what it could not read."""

    source: str
    files: list[str] = Field(default_factory=list)
    rows: int = 0
    problems: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class FileFormat:
    """How to parse one kind of data file.

    Attributes:
        name: The format's name in messages, e.g. `csv`.
        parse: Turns the file's bytes into rows; gets the path and the report so that it can
            record problems (such as invalid UTF-8) instead of raising.
    """

    name: str
    parse: Callable[[bytes, str, LoadReport], pd.DataFrame]


def parse_csv(raw: bytes, path: str, report: LoadReport) -> pd.DataFrame:
    """Comma-separated values with a header row; empty cells are missing values."""
    text = decode_utf8(raw, path, report)
    return pd.read_csv(io.StringIO(text), keep_default_na=False, na_values=[""])


def parse_jsonl(raw: bytes, path: str, report: LoadReport) -> pd.DataFrame:
    """One JSON object per line."""
    return pd.read_json(io.StringIO(decode_utf8(raw, path, report)), lines=True, dtype=False)


def parse_parquet(raw: bytes, path: str, report: LoadReport) -> pd.DataFrame:
    """A Parquet file."""
    return pd.read_parquet(io.BytesIO(raw))


CSV = FileFormat("csv", parse_csv)
JSONL = FileFormat("jsonl", parse_jsonl)
PARQUET = FileFormat("parquet", parse_parquet)
# The formats of tables with one example per row, by file extension.
TABLE_FORMATS: Mapping[str, FileFormat] = {
    ".csv": CSV,
    ".jsonl": JSONL,
    ".json": JSONL,
    ".parquet": PARQUET,
    ".pq": PARQUET,
}


def read_source(
    source: str, formats: Mapping[str, FileFormat] = TABLE_FORMATS
) -> tuple[pd.DataFrame, LoadReport]:
    """Read a data file or folder from a local path or an fsspec URI.

    A folder holding `train`/`validation`/`test` files (`valid` and `dev` also name the
    validation split) yields their rows with a `split` column; any other folder yields the rows
    of all its data files. Columns keep their original names.

    Args:
        source: The path or URI.
        formats: The file formats to read, by lower-case file extension.

    Returns:
        The rows read and the report of what was read.
    """
    report = LoadReport(source=source)
    fs, path = fsspec.core.url_to_fs(source)
    if not fs.exists(path):
        report.problems.append(f"path does not exist: {source}")
        return pd.DataFrame(), report
    if not fs.isdir(path):
        frame = _read_file(fs, path, formats, report)
        report.rows = len(frame)
        return frame, report

    files = sorted(p for p in fs.ls(path, detail=False) if _extension(p) in formats)
    if not files:
        report.problems.append(
            f"folder holds no data file ({', '.join(sorted(formats))}): {source}"
        )
        return pd.DataFrame(), report
    split_files = {p: SPLIT_FILE_STEMS.get(_stem(p)) for p in files}
    frames = []
    for file, split in split_files.items():
        frame = _read_file(fs, file, formats, report)
        if split is not None and all(split_files.values()):
            frame[SPLIT_COLUMN] = split
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if all(split_files.values()):
        report.notes.append(
            "using the splits given by the files: "
            + ", ".join(f"{posixpath.basename(p)} → {s}" for p, s in split_files.items())
        )
    report.rows = len(frame)
    return frame, report


def _extension(path: str) -> str:
    return posixpath.splitext(path)[1].lower()


def _stem(path: str) -> str:
    return posixpath.splitext(posixpath.basename(path))[0].lower()


def cell_list(value: Any) -> list | None:
    """A cell holding a list as a Python list (Parquet reads lists back as arrays); else None."""
    if isinstance(value, list | tuple | np.ndarray):
        return list(value)
    return None


def _read_file(
    fs: fsspec.AbstractFileSystem,
    path: str,
    formats: Mapping[str, FileFormat],
    report: LoadReport,
) -> pd.DataFrame:
    """Read one file, recording problems in `report` instead of raising."""
    report.files.append(path)
    file_format = formats.get(_extension(path))
    if file_format is None:
        report.problems.append(
            f"unsupported file type {_extension(path) or '(none)'}: {path} "
            f"(supported: {', '.join(sorted(formats))})"
        )
        return pd.DataFrame()
    with fs.open(path, "rb") as handle:
        raw = handle.read()
    if not raw.strip():
        report.problems.append(f"file is empty: {path}")
        return pd.DataFrame()
    try:
        return file_format.parse(raw, path, report)
    except Exception as error:  # noqa: BLE001 - any parser error is reported, not raised
        report.problems.append(f"cannot parse {path} as {file_format.name}: {error}")
        return pd.DataFrame()


def decode_utf8(raw: bytes, path: str, report: LoadReport) -> str:
    """Decode UTF-8; on invalid bytes record a problem naming the line, then decode leniently."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        report.problems.append(
            f"{path} is not valid UTF-8: byte 0x{raw[error.start]:02x} at line {line} "
            "(re-save the file as UTF-8)"
        )
        return raw.decode("utf-8", errors="replace")
