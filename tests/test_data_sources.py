"""Readers of user files in every supported format, and of the bundled BBC News corpus."""

import json
from pathlib import Path

import fsspec
import pandas as pd
import pytest

from stackport.core.names import SPLIT_COLUMN
from stackport.data.bundled import read_bbc_news
from stackport.data.sources import read_source


def test_bbc_news_is_deduplicated_decoded_and_sorted_by_topic():
    frame, report = read_bbc_news()
    assert list(frame.columns) == ["text", "label"]
    assert len(frame) == 2225 - 98
    assert not frame["text"].duplicated().any()
    assert sorted(frame["label"].unique()) == [
        "business",
        "entertainment",
        "politics",
        "sports",
        "tech",
    ]
    assert any("dropped 98 exact duplicate" in note for note in report.notes)
    assert any("not valid UTF-8" in note for note in report.notes)
    assert report.problems == []
    assert report.rows == len(frame)


ROWS = [{"text": "first text", "label": "a"}, {"text": "second text", "label": "b"}]


def _write(path: Path) -> None:
    frame = pd.DataFrame(ROWS)
    match path.suffix:
        case ".csv":
            frame.to_csv(path, index=False)
        case ".jsonl":
            path.write_text("\n".join(json.dumps(row) for row in ROWS) + "\n")
        case ".parquet":
            frame.to_parquet(path)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_each_format_reads_the_same_rows(tmp_path, suffix):
    path = tmp_path / f"data{suffix}"
    _write(path)
    frame, report = read_source(str(path))
    assert frame.to_dict("records") == ROWS
    assert report.problems == []
    assert report.rows == 2


def test_a_folder_of_split_files_keeps_its_splits(tmp_path):
    for name in ("train", "dev", "test"):
        _write(tmp_path / f"{name}.csv")
    frame, report = read_source(str(tmp_path))
    assert sorted(frame[SPLIT_COLUMN].unique()) == ["test", "train", "validation"]
    assert len(frame) == 6
    assert any("dev.csv → validation" in note for note in report.notes)


def test_a_folder_without_split_files_is_concatenated(tmp_path):
    _write(tmp_path / "part-1.csv")
    _write(tmp_path / "part-2.jsonl")
    frame, report = read_source(str(tmp_path))
    assert len(frame) == 4
    assert SPLIT_COLUMN not in frame.columns
    assert report.problems == []


def test_fsspec_uris_are_read():
    with fsspec.open("memory://stackport/data.jsonl", "w") as handle:
        handle.write("\n".join(json.dumps(row) for row in ROWS))
    frame, report = read_source("memory://stackport/data.jsonl")
    assert frame.to_dict("records") == ROWS
    assert report.files == ["/stackport/data.jsonl"]


def test_problems_are_reported_not_raised(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "latin1.csv").write_bytes(b"text,label\ncaf\xe9,a\n")
    (tmp_path / "broken.jsonl").write_text("{not json\n")

    _, missing = read_source(str(tmp_path / "nope.csv"))
    _, empty = read_source(str(tmp_path / "empty.csv"))
    latin1, not_utf8 = read_source(str(tmp_path / "latin1.csv"))
    _, broken = read_source(str(tmp_path / "broken.jsonl"))

    assert missing.problems == [f"path does not exist: {tmp_path / 'nope.csv'}"]
    assert empty.problems == [f"file is empty: {tmp_path / 'empty.csv'}"]
    assert "is not valid UTF-8: byte 0xe9 at line 2" in not_utf8.problems[0]
    assert latin1["text"].tolist() == ["caf\ufffd"]  # read on, so other checks still run
    assert "cannot parse" in broken.problems[0]
