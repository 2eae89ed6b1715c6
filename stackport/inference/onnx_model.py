"""The exported ONNX model artifact: graph, tokenizer and labels travel together, sha256-sealed.

This module needs only the standard library and `stackport.core`, so that a serving image can
load an `OnnxModel` with nothing but the service's packages installed (see
`stackport.inference.predictor`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from stackport.core.settings import OnnxVariant

MODEL_FILENAME = "model.onnx"
TOKENIZER_FILENAME = "tokenizer.json"
MANIFEST_FILENAME = "onnx_model.json"
HASH_CHUNK_BYTES = 1 << 20


class OnnxModelIntegrityError(ValueError):
    """A file of a saved ONNX model is missing or differs from the sha256 recorded for it."""


@dataclass
class OnnxModel:
    """An ONNX graph with the tokenizer and labels it predicts with, in one local directory.

    Attributes:
        directory: Holds `model.onnx` (plus its external data file when the graph is large),
            `tokenizer.json` (truncation and dynamic padding configured) and the manifest.
        task: The task the model was trained for.
        label_names: Label names in the order of the model's output logits.
        max_length: Texts are truncated to this many tokens, as in training.
        opset: The ONNX opset of the graph's default domain.
        variant: fp32, fp32-optimized, dynamic-int8 or static-int8 (`OnnxVariant`).
        inputs: Names of the graph's inputs, e.g. `input_ids`, `attention_mask`.
        outputs: Names of the graph's outputs, e.g. `logits`.
        file_sha256: sha256 of every file of the model but the manifest, by file name.
        thresholds: multilabel: the sigmoid probability each label needs to be predicted, in
            the order of `label_names`; None for other tasks.
        max_windows: classification and multilabel: a longer text is read as up to this many
            consecutive windows of `max_length` tokens, and its logits are their mean.
    """

    directory: Path
    task: str
    label_names: list[str]
    max_length: int
    opset: int
    variant: OnnxVariant
    inputs: list[str]
    outputs: list[str]
    file_sha256: dict[str, str]
    thresholds: list[float] | None = None
    max_windows: int = 1

    @property
    def model_path(self) -> Path:
        """The `.onnx` file."""
        return self.directory / MODEL_FILENAME

    @property
    def tokenizer_path(self) -> Path:
        """The `tokenizer.json` file (Hugging Face `tokenizers` format)."""
        return self.directory / TOKENIZER_FILENAME

    @property
    def graph_files(self) -> list[str]:
        """The `.onnx` file and its external data files, if any."""
        return [name for name in self.file_sha256 if name != TOKENIZER_FILENAME]

    @property
    def size_bytes(self) -> int:
        """Bytes on disk of the graph and its external data (the tokenizer not counted)."""
        return sum((self.directory / name).stat().st_size for name in self.graph_files)

    def manifest(self) -> dict:
        """Everything but the directory, as JSON-able values."""
        return {
            "task": self.task,
            "label_names": self.label_names,
            "max_length": self.max_length,
            "opset": self.opset,
            "variant": str(self.variant),
            "inputs": self.inputs,
            "outputs": self.outputs,
            "file_sha256": self.file_sha256,
            "thresholds": self.thresholds,
            "max_windows": self.max_windows,
        }

    def content_hash(self) -> str:
        """sha256 of the manifest, which holds the sha256 of every file of the model."""
        return hashlib.sha256(json.dumps(self.manifest(), sort_keys=True).encode()).hexdigest()

    def write_manifest(self) -> None:
        """Write `onnx_model.json` into the directory, which makes it loadable by `load`."""
        (self.directory / MANIFEST_FILENAME).write_text(json.dumps(self.manifest(), indent=2))

    @classmethod
    def load(cls, directory: str | Path) -> OnnxModel:
        """Read a model directory, refusing files that differ from their recorded sha256.

        Raises:
            OnnxModelIntegrityError: A file is missing or was modified after it was sealed.
        """
        directory = Path(directory)
        manifest = json.loads((directory / MANIFEST_FILENAME).read_text())
        model = cls(
            directory=directory,
            task=manifest["task"],
            label_names=manifest["label_names"],
            max_length=manifest["max_length"],
            opset=manifest["opset"],
            variant=OnnxVariant(manifest["variant"]),
            inputs=manifest["inputs"],
            outputs=manifest["outputs"],
            file_sha256=manifest["file_sha256"],
            thresholds=manifest["thresholds"],
            max_windows=manifest["max_windows"],
        )
        model.verify()
        return model

    def verify(self) -> None:
        """Check every file against its recorded sha256.

        Raises:
            OnnxModelIntegrityError: Naming the first missing or modified file.
        """
        for name, expected in self.file_sha256.items():
            path = self.directory / name
            if not path.is_file():
                raise OnnxModelIntegrityError(
                    f"ONNX model file {name} is missing from {self.directory}."
                )
            actual = file_sha256(path)
            if actual != expected:
                raise OnnxModelIntegrityError(
                    f"ONNX model file {name} has sha256 {actual}, but {expected} was recorded "
                    "when the model was saved: the file was modified or corrupted, so it is "
                    "refused. Export the model again."
                )


def file_sha256(path: Path) -> str:
    """The sha256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
