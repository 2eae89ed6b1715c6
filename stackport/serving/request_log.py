"""The served-input log: the features of every text the service predicts, as Parquet files.

Each worker of the service writes its own files into one folder (a local path or an fsspec
URI): `<worker>-<start time>.parquet`, append-only, one row per predicted text with the
columns of `LOG_SCHEMA`. A file is written as `<name>.part` and renamed when it is closed,
once it holds `max_file_bytes` or is `max_file_seconds` old, so that a reader sees only
complete files.

Nothing of this runs on a request's critical path: `RequestLog.record` only queues the batch
(texts and predictions); a background thread measures the texts with the model's tokenizer and
writes them. A full queue, or a path that cannot be written, drops the records and counts them
(`RequestLog.dropped`, and a warning in the service's log); it never fails or slows a request.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from fsspec import AbstractFileSystem
from fsspec.core import url_to_fs
from tokenizers import Tokenizer

from stackport.core.settings import RequestLogSettings
from stackport.tasks import inference_plugin

logger = logging.getLogger(__name__)

# pyarrow imports pandas (where it is installed) the first time it converts Python objects. Let
# that happen now, on import, before the service takes requests: in the writer thread it would
# race the service's threads, which may look pandas' DataFrame up while it is half imported.
pa.array([0])

LOG_SCHEMA = pa.schema(
    [
        pa.field("time", pa.timestamp("us", tz="UTC")),
        pa.field("model_name", pa.string()),
        pa.field("model_version", pa.string()),
        pa.field("worker", pa.string()),
        pa.field("chars", pa.int32()),
        pa.field("tokens", pa.int32()),
        pa.field("unknown_share", pa.float32()),
        pa.field("split_share", pa.float32()),
        pa.field("outcomes", pa.list_(pa.string())),
        pa.field("scores", pa.list_(pa.float32())),
        pa.field("text", pa.string()),
    ]
)
FILE_SUFFIX = ".parquet"
PART_SUFFIX = ".part"
# Rows buffered before they are written as one row group.
ROW_GROUP_ROWS = 1000
# How often the writer wakes up without records, to close a file that has grown old.
TICK_SECONDS = 1.0
# At most one warning about dropped records this often.
WARNING_INTERVAL_SECONDS = 60.0
_STOP = object()


class TextFeatures:
    """Measures texts with a model's tokenizer: their length in tokens, unknown and split tokens.

    The tokenizer is copied and neither truncates nor pads, so a text's token count is its
    whole length, as the model's tokenizer splits it, without special tokens.
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        """Copy `tokenizer` (e.g. `OnnxPredictor.tokenizer`) without truncation or padding."""
        self.tokenizer = Tokenizer.from_str(tokenizer.to_str())
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        unknown = getattr(self.tokenizer.model, "unk_token", None)
        self.unknown_id = self.tokenizer.token_to_id(unknown) if unknown else None

    def measure(self, texts: Sequence[str]) -> dict[str, list]:
        """Per text: `chars`, `tokens`, `unknown_share` and `split_share`.

        `unknown_share` is the share of its tokens that are the tokenizer's unknown token;
        `split_share` the share of its words that the tokenizer splits into several pieces.
        A text without tokens has shares of 0.
        """
        columns: dict[str, list] = {
            "chars": [],
            "tokens": [],
            "unknown_share": [],
            "split_share": [],
        }
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        for text, encoding in zip(texts, encodings, strict=True):
            tokens = len(encoding.ids)
            unknown = sum(1 for token in encoding.ids if token == self.unknown_id)
            pieces = Counter(word for word in encoding.word_ids if word is not None)
            split = sum(1 for count in pieces.values() if count > 1)
            columns["chars"].append(len(text))
            columns["tokens"].append(tokens)
            columns["unknown_share"].append(unknown / tokens if tokens else 0.0)
            columns["split_share"].append(split / len(pieces) if pieces else 0.0)
        return columns


def log_records(
    texts: Sequence[str],
    predictions: Sequence[Any],
    times: Sequence[datetime],
    features: TextFeatures,
    outcomes: Callable[[Any], tuple[list[str], list[float]]],
    identity: dict[str, str],
    keep_texts: bool,
) -> pa.Table:
    """The log's rows (`LOG_SCHEMA`) of predicted texts.

    Args:
        texts: The texts.
        predictions: Their predictions, in order.
        times: When each was predicted.
        features: Measures the texts.
        outcomes: A prediction's labels (or entity types) and their scores (the task's).
        identity: `model_name`, `model_version` and `worker` of every row.
        keep_texts: Keep the texts themselves; else the `text` column is null.
    """
    decided = [outcomes(prediction) for prediction in predictions]
    columns: dict[str, list] = {
        "time": list(times),
        **{name: [value] * len(texts) for name, value in identity.items()},
        **features.measure(texts),
        "outcomes": [labels for labels, _ in decided],
        "scores": [scores for _, scores in decided],
        "text": list(texts) if keep_texts else [None] * len(texts),
    }
    return pa.Table.from_pydict(columns, schema=LOG_SCHEMA)


def log_destination(settings: RequestLogSettings) -> str | None:
    """Where records are written: the log's path, or None when it is off or has no path."""
    return settings.path if settings.enabled else None


def worker_name() -> str:
    """This process's name in the log's file names: host and process id."""
    return f"{socket.gethostname()}-{os.getpid()}"


class RollingParquetFile:
    """The log files of one worker: rows are appended to the open file until it is rotated.

    Args:
        filesystem: The fsspec filesystem of the folder.
        folder: The folder (a path on `filesystem`).
        worker: Names the files.
        max_bytes: Rotate once the file holds this many bytes (its rows still in memory
            counted at their Arrow size).
        max_seconds: Rotate once the file's first row is this old.
    """

    def __init__(
        self,
        filesystem: AbstractFileSystem,
        folder: str,
        worker: str,
        max_bytes: int,
        max_seconds: float,
    ) -> None:
        self.filesystem = filesystem
        self.folder = folder.rstrip("/")
        self.worker = worker
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self._rows: list[pa.Table] = []
        self._buffered = 0
        self._buffered_bytes = 0
        self.pending_rows = 0
        self._file: Any = None
        self._writer: pq.ParquetWriter | None = None
        self._path = ""
        self._started = 0.0
        self.closed_files: list[str] = []

    def append(self, rows: pa.Table) -> int:
        """Buffer rows; write them as a row group once enough are buffered.

        Returns:
            The rows of the file this closed (0 while it stays open).
        """
        if not self.pending_rows:
            self._started = time.monotonic()
        self._rows.append(rows)
        self._buffered += rows.num_rows
        self._buffered_bytes += rows.nbytes
        self.pending_rows += rows.num_rows
        if self._buffered >= ROW_GROUP_ROWS:
            self._write_buffer()
        written = self._file.tell() if self._file is not None else 0
        if written + self._buffered_bytes >= self.max_bytes:
            return self.close()
        return 0

    def rotate_if_old(self) -> int:
        """Close the file once its first row is `max_seconds` old; the rows it closed."""
        if self.pending_rows and time.monotonic() - self._started >= self.max_seconds:
            return self.close()
        return 0

    def close(self) -> int:
        """Write what is buffered, close the file and give it its final name; its rows."""
        if self._rows:
            self._write_buffer()
        if self._writer is None:
            return 0
        writer, file, path = self._writer, self._file, self._path
        self._writer, self._file = None, None
        writer.close()
        file.close()
        final = path.removesuffix(PART_SUFFIX)
        self.filesystem.mv(path, final)
        self.closed_files.append(final)
        rows, self.pending_rows = self.pending_rows, 0
        return rows

    def discard(self) -> None:
        """Forget the open file and the buffer after a failed write (their rows are lost)."""
        self._rows, self._buffered, self._buffered_bytes, self.pending_rows = [], 0, 0, 0
        writer, file = self._writer, self._file
        self._writer, self._file = None, None
        for closing in (writer, file):
            try:
                if closing is not None:
                    closing.close()
            except Exception:  # noqa: BLE001 - the file is being given up anyway
                pass

    def _make_folder(self) -> None:
        """Create the folder, and on blob storage its container (`makedirs` is a no-op there)."""
        if not self.filesystem.exists(self.folder):
            with contextlib.suppress(FileExistsError):  # another worker made it meanwhile
                self.filesystem.mkdir(self.folder, create_parents=True)

    def _write_buffer(self) -> None:
        if self._writer is None:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            self._make_folder()
            self._path = f"{self.folder}/{self.worker}-{stamp}{FILE_SUFFIX}{PART_SUFFIX}"
            self._file = self.filesystem.open(self._path, "wb")
            self._writer = pq.ParquetWriter(self._file, LOG_SCHEMA)
        self._writer.write_table(pa.concat_tables(self._rows))
        self._rows, self._buffered, self._buffered_bytes = [], 0, 0


class RequestLog:
    """Records predicted texts in the background; `record` never blocks and never raises.

    Args:
        settings: Path (required), texts kept or not, rotation and queue size.
        model_name: The served model, recorded in every row.
        model_version: Its version.
        task: Its task (whose plug-in says what a prediction decided).
        tokenizer: The model's tokenizer (`OnnxPredictor.tokenizer`), copied.
        worker: Names this worker's files; default: host and process id.
    """

    def __init__(
        self,
        settings: RequestLogSettings,
        model_name: str,
        model_version: str,
        task: str,
        tokenizer: Tokenizer,
        worker: str | None = None,
    ) -> None:
        if settings.path is None:
            raise ValueError("The request log has no path (service.request_log.path).")
        self.settings = settings
        self.identity = {
            "model_name": model_name,
            "model_version": model_version,
            "worker": worker or worker_name(),
        }
        self.features = TextFeatures(tokenizer)
        self.outcomes = inference_plugin(task).outcomes
        self.written = 0
        self.dropped = 0
        self._count_lock = threading.Lock()
        self._last_warning = float("-inf")
        self._queue: queue.Queue = queue.Queue(maxsize=settings.max_queued_batches)
        self._files: RollingParquetFile | None = None
        self._thread = threading.Thread(target=self._run, name="request-log", daemon=True)
        self._thread.start()

    def record(self, texts: Sequence[str], predictions: Sequence[Any]) -> None:
        """Queue a predicted batch to be logged; a full queue drops it (counted)."""
        try:
            self._queue.put_nowait((datetime.now(UTC), list(texts), list(predictions)))
        except queue.Full:
            self._drop(len(texts), "the queue is full")

    def close(self, timeout_s: float = 30) -> None:
        """Write what is queued, close the open file and stop the thread."""
        try:
            self._queue.put(_STOP, timeout=timeout_s)
        except queue.Full:
            logger.warning("Request log: the queue did not drain; its records are lost.")
            return
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=TICK_SECONDS)
            except queue.Empty:
                item = None
            if item is _STOP:
                self._guarded(0, RollingParquetFile.close)
                return
            if item is not None:
                predicted_at, texts, predictions = item
                rows = log_records(
                    texts,
                    predictions,
                    [predicted_at] * len(texts),
                    self.features,
                    self.outcomes,
                    self.identity,
                    self.settings.texts,
                )
                self._guarded(rows.num_rows, lambda files, rows=rows: files.append(rows))
            self._guarded(0, RollingParquetFile.rotate_if_old)

    def _guarded(self, records: int, action: Callable[[RollingParquetFile], int]) -> None:
        """Run a file action, counting the rows of a file it closed as written.

        A failure drops `records` and the rows of the open file (counted).
        """
        try:
            if self._files is None:
                filesystem, folder = url_to_fs(os.path.expanduser(self.settings.path))
                self._files = RollingParquetFile(
                    filesystem,
                    folder,
                    self.identity["worker"],
                    self.settings.max_file_bytes,
                    self.settings.max_file_seconds,
                )
            self.written += action(self._files)
        except Exception as error:  # noqa: BLE001 - a failing log must never fail the service
            lost = records
            if self._files is not None:
                lost = max(lost, self._files.pending_rows)
                self._files.discard()
            self._drop(lost, f"writing to {self.settings.path} failed ({error})")

    def _drop(self, records: int, why: str) -> None:
        with self._count_lock:
            self.dropped += records
        now = time.monotonic()
        if records and now - self._last_warning >= WARNING_INTERVAL_SECONDS:
            self._last_warning = now
            logger.warning(
                "Request log: dropped %d records: %s; %d dropped in all, %d written.",
                records,
                why,
                self.dropped,
                self.written,
            )
