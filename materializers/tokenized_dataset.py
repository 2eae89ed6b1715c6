"""ZenML materializer for `TokenizedDataset`: one Arrow IPC file per split and a JSON manifest."""

from __future__ import annotations

import html
import json
import os
import re
from typing import Any, ClassVar

from pyarrow import feather
from zenml.enums import ArtifactType, VisualizationType
from zenml.io import fileio
from zenml.metadata.metadata_types import MetadataType
from zenml.utils import io_utils

from materializers.base import StackportMaterializer
from materializers.html_summary import TEXT_TABLE_STYLE
from stackport.data.tokenization import TokenizedDataset

MANIFEST_FILENAME = "dataset.json"
PREVIEW_FILENAME = "preview.html"
PREVIEW_ROWS = 5
PREVIEW_TOKENS = 12
# Split names become file names, so they must not carry path separators or dots.
SPLIT_NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]+")


def split_filename(split: str) -> str:
    """The Arrow IPC (Feather v2) file name of one split."""
    if not SPLIT_NAME_PATTERN.fullmatch(split):
        raise ValueError(f"Split name {split!r} is not a valid file name stem.")
    return f"{split}.arrow"


class TokenizedDatasetMaterializer(StackportMaterializer):
    """Stores each split as `<split>.arrow` (zstd-compressed Feather v2) and `dataset.json`."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (TokenizedDataset,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA

    def save(self, data: TokenizedDataset) -> None:
        """Write the splits and the manifest locally, then copy them to the artifact URI."""
        manifest = {
            "splits": list(data.splits),
            "label_names": data.label_names,
            "tokenizer_fingerprint": data.tokenizer_fingerprint,
            "max_length": data.max_length,
            "task": data.task,
            "max_windows": data.max_windows,
        }
        with self.get_temporary_directory(delete_at_exit=True) as temp_dir:
            for split, table in data.splits.items():
                local_path = os.path.join(temp_dir, split_filename(split))
                feather.write_feather(table, local_path, compression="zstd")
            with open(os.path.join(temp_dir, MANIFEST_FILENAME), "w") as file:
                json.dump(manifest, file, indent=2)
            io_utils.copy_dir(temp_dir, self.uri)

    def read(self, data_type: type[Any]) -> TokenizedDataset:
        """Read the manifest, then copy each split file to a local directory and read it."""
        with self.artifact_store.open(os.path.join(self.uri, MANIFEST_FILENAME), "r") as file:
            manifest = json.load(file)
        splits = {}
        with self.get_temporary_directory(delete_at_exit=True) as temp_dir:
            for split in manifest["splits"]:
                filename = split_filename(split)
                local_path = os.path.join(temp_dir, filename)
                fileio.copy(os.path.join(self.uri, filename), local_path)
                splits[split] = feather.read_table(local_path, memory_map=False)
        return TokenizedDataset(
            splits=splits,
            label_names=manifest["label_names"],
            tokenizer_fingerprint=manifest["tokenizer_fingerprint"],
            max_length=manifest["max_length"],
            task=manifest["task"],
            max_windows=manifest["max_windows"],
        )

    def compute_content_hash(self, data: TokenizedDataset) -> str:
        """The dataset's content hash (every split's values, labels and settings)."""
        return data.content_hash()

    def extract_metadata(self, data: TokenizedDataset) -> dict[str, MetadataType]:
        """Rows, examples, label counts, truncation rate per split; the windows, the labels."""
        metadata: dict[str, MetadataType] = {
            "max_length": data.max_length,
            "max_windows": data.max_windows,
            "task": data.task,
            "label_names": data.label_names,
        }
        for split, table in data.splits.items():
            metadata[f"{split}_rows"] = table.num_rows
            metadata[f"{split}_examples"] = data.example_count(split)
            metadata[f"{split}_truncation_rate"] = data.truncation_rate(split)
            metadata[f"{split}_label_counts"] = data.label_counts(split)
        return metadata

    def save_visualizations(self, data: TokenizedDataset) -> dict[str, VisualizationType]:
        """Write a self-contained HTML preview of every split."""
        uri = self.write_visualization(PREVIEW_FILENAME, preview_html(data))
        return {uri: VisualizationType.HTML}


def preview_html(data: TokenizedDataset) -> str:
    """Per split: row count, truncation rate, label counts and the first rows' labels and ids."""
    sections = [
        f"<p>Task <b>{html.escape(str(data.task))}</b>, max_length {data.max_length}, "
        f"tokenizer <code>{html.escape(data.tokenizer_fingerprint[:12])}</code></p>"
    ]
    for split, table in data.splits.items():
        label_counts = "".join(
            f"<tr><td>{html.escape(name)}</td><td>{count}</td></tr>"
            for name, count in data.label_counts(split).items()
        )
        head = table.slice(0, PREVIEW_ROWS).to_pylist()
        rows = "".join(
            f"<tr><td>{html.escape(shortened(data.row_label_names(row['labels'])))}</td>"
            f"<td>{row['num_tokens']}</td><td><code>{shortened(row['input_ids'])}</code></td></tr>"
            for row in head
        )
        sections.append(
            f"<h2>{html.escape(split)}</h2>"
            f"<p>{data.example_count(split)} examples in {table.num_rows} rows, "
            f"truncation rate {data.truncation_rate(split):.1%}</p>"
            f"<table><tr><th>label</th><th>occurrences</th></tr>{label_counts}</table>"
            "<table><tr><th>labels</th><th>tokens before truncation</th><th>input_ids</th></tr>"
            f"{rows}</table>"
        )
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Tokenized dataset</title>'
        f"<style>{TEXT_TABLE_STYLE}</style></head><body>{''.join(sections)}</body></html>"
    )


def shortened(values: list) -> str:
    """The first `PREVIEW_TOKENS` values (ids, tags), and how many were left out."""
    shown = " ".join(str(value) for value in values[:PREVIEW_TOKENS])
    hidden = len(values) - PREVIEW_TOKENS
    return f"{shown} … (+{hidden})" if hidden > 0 else shown
