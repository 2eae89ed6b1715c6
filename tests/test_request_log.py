"""The served-input log's parts without a server: features, files, rotation, drops, the window.

tests/test_monitoring.py has the log written by a real `bentoml serve` under load.
"""

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from tokenizers import Tokenizer

from stackport.core.settings import RequestLogSettings
from stackport.monitoring.served_inputs import read_window
from stackport.serving.request_log import LOG_SCHEMA, RequestLog, TextFeatures
from stackport.tasks.classification.infer import ClassPrediction


@pytest.fixture(scope="module")
def tokenizer(tiny_bert_path: Path) -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(tiny_bert_path / "tokenizer.json"))
    tokenizer.enable_truncation(8)  # as a predictor's: the log counts every token anyway
    return tokenizer


def predictions(count: int) -> list[ClassPrediction]:
    return [
        ClassPrediction(label=("business", "sport")[i % 2], score=0.5 + i % 5 / 10)
        for i in range(count)
    ]


def settings(path: Path, **changes) -> RequestLogSettings:
    return RequestLogSettings(path=str(path), **changes)


def test_features_count_every_token_unknown_ones_and_split_words(tokenizer):
    features = TextFeatures(tokenizer)
    long_text = "the market " * 40
    unknown = "☃ ☃ the"
    measured = features.measure([long_text, unknown, ""])

    assert measured["chars"] == [len(long_text), len(unknown), 0]
    assert measured["tokens"][0] >= 80  # not cut at the tokenizer's 8
    assert measured["tokens"][1] == 3 and measured["unknown_share"][1] == pytest.approx(2 / 3)
    assert measured["tokens"][2] == 0 and measured["unknown_share"][2] == 0.0
    split = features.measure(["unbelievablyxyzzy"])  # no such word piece: several pieces
    assert split["split_share"] == [1.0]
    assert features.measure(["the"])["split_share"] == [0.0]


def read_files(folder: Path) -> pd.DataFrame:
    files = sorted(folder.glob("*.parquet"))
    return pd.concat([pq.read_table(file).to_pandas() for file in files], ignore_index=True)


def test_records_are_written_in_order_with_the_schema_and_texts_can_be_left_out(
    tokenizer, tmp_path
):
    texts = [f"text number {index}" for index in range(50)]
    for keep, folder in ((True, tmp_path / "with"), (False, tmp_path / "without")):
        log = RequestLog(settings(folder, texts=keep), "tiny", "3", "classification", tokenizer)
        for start in range(0, 50, 10):
            log.record(texts[start : start + 10], predictions(50)[start : start + 10])
        log.close()
        assert (log.written, log.dropped) == (50, 0)
        (file,) = folder.glob("*.parquet")
        assert pq.read_schema(file).equals(LOG_SCHEMA)
        rows = read_files(folder)
        assert rows["text"].tolist() == (texts if keep else [None] * 50)
        assert rows["outcomes"].map(list).tolist() == [[p.label] for p in predictions(50)]
        scores = [score for row in rows["scores"] for score in row]
        assert scores == pytest.approx([p.score for p in predictions(50)])
        assert set(rows["model_name"]) == {"tiny"} and set(rows["model_version"]) == {"3"}
        assert not list(folder.glob("*.part"))


def test_files_rotate_by_size_and_by_age(tokenizer, tmp_path):
    by_size = RequestLog(
        settings(tmp_path / "size", max_file_bytes=1024), "m", "1", "classification", tokenizer
    )
    for _ in range(30):
        by_size.record(["a longer text of several words " * 5] * 10, predictions(10))
    by_size.close()
    assert len(list((tmp_path / "size").glob("*.parquet"))) > 3
    assert len(read_files(tmp_path / "size")) == by_size.written == 300

    by_age = RequestLog(
        settings(tmp_path / "age", max_file_seconds=0.3), "m", "1", "classification", tokenizer
    )
    by_age.record(["first"], predictions(1))
    deadline = time.monotonic() + 10
    while not list((tmp_path / "age").glob("*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(list((tmp_path / "age").glob("*.parquet"))) == 1  # closed while the log runs
    by_age.record(["second"], predictions(1))
    by_age.close()
    assert len(list((tmp_path / "age").glob("*.parquet"))) == 2


def test_an_unwritable_path_drops_and_counts_records_and_never_raises(tokenizer, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    log = RequestLog(
        settings(blocker / "log", max_file_seconds=0.1), "m", "1", "classification", tokenizer
    )
    for _ in range(5):
        log.record(["text"] * 4, predictions(4))
    log.close()
    assert (log.written, log.dropped) == (0, 20)


def test_a_full_queue_drops_batches_without_waiting(tokenizer, tmp_path):
    log = RequestLog(
        settings(tmp_path, max_queued_batches=1), "m", "1", "classification", tokenizer
    )
    log.record(["a long text " * 2000] * 200, predictions(200))  # keeps the writer busy
    start = time.perf_counter()
    for _ in range(50):
        log.record(["short"], predictions(1))
    queued_in = time.perf_counter() - start
    log.close()
    assert log.dropped >= 45
    assert log.written + log.dropped == 250
    assert queued_in < 0.5


def test_a_window_is_one_versions_newest_records_from_a_time_on(tokenizer, tmp_path):
    for version in ("1", "2"):
        log = RequestLog(
            settings(tmp_path, max_file_seconds=0.2), "m", version, "classification", tokenizer
        )
        log.record([f"early {version}"] * 3, predictions(3))
        time.sleep(0.4)
        middle = datetime.now(UTC)
        log.record([f"late {version}"] * 5, predictions(5))
        log.close()

    everything, window = read_window(str(tmp_path), "m", "2", None, None)
    assert everything["text"].tolist() == ["early 2"] * 3 + ["late 2"] * 5
    assert window.files >= 2 and (window.model_records, window.records) == (8, 8)
    newest, window = read_window(str(tmp_path), "m", "2", 6, middle)
    assert newest["text"].tolist() == ["late 2"] * 5 and window.records == 5
    assert window.first >= middle
    tail, _ = read_window(str(tmp_path), "m", "2", 2, middle - timedelta(days=1))
    assert tail["text"].tolist() == ["late 2"] * 2
    nothing, window = read_window(str(tmp_path / "missing"), "m", "2", None, None)
    assert nothing.empty and (window.files, window.records, window.first) == (0, 0, None)
