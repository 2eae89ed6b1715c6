"""Predicting with an exported `OnnxModel`: needs only onnxruntime, tokenizers and numpy.

Texts are tokenized with the model's `tokenizer.json` (truncation to the training
`max_length`, dynamic padding to the longest text of the batch), run through an ONNX Runtime
session tuned for this machine's cores, and post-processed by the post-processor of the model's
task. The ONNX evaluation, the benchmark and the serving code all predict through this module.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Encoding, Tokenizer

from textmodels.onnx_model import OnnxModel
from textmodels.tasks import Task

# Graph input name → the `tokenizers.Encoding` attribute that feeds it.
ENCODING_FIELDS = {
    "input_ids": "ids",
    "attention_mask": "attention_mask",
    "token_type_ids": "type_ids",
}


@dataclass(frozen=True)
class ClassPrediction:
    """The predicted label of a text and its softmax probability."""

    label: str
    score: float


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def classify(
    logits: np.ndarray, encodings: Sequence[Encoding], model: OnnxModel
) -> list[ClassPrediction]:
    """Single-label classification: the most probable label of each text and its probability."""
    probabilities = softmax(logits)
    best = probabilities.argmax(axis=-1)
    return [
        ClassPrediction(label=model.label_names[index], score=float(probabilities[row, index]))
        for row, index in enumerate(best)
    ]


# A post-processor turns a batch's raw outputs into one prediction per text. It receives the
# encodings too: token classification maps token logits back to character spans through their
# offsets, and multi-label classification reads `model.thresholds`.
PostProcessor = Callable[[np.ndarray, Sequence[Encoding], OnnxModel], list[Any]]
POST_PROCESSORS: dict[Task, PostProcessor] = {Task.CLASSIFICATION: classify}


def batches(texts: Sequence[str], size: int) -> list[Sequence[str]]:
    """Consecutive batches of at most `size` texts, in order."""
    return [texts[start : start + size] for start in range(0, len(texts), size)]


def available_cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """Session options for CPU inference: all graph optimizations, one intra-op thread per core.

    Args:
        threads: Intra-op threads; `None` means one per available core.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads or available_cores()
    options.inter_op_num_threads = 1
    return options


class OnnxPredictor:
    """Tokenizes texts, runs an ONNX Runtime session and post-processes its outputs."""

    def __init__(self, model: OnnxModel, threads: int | None = None):
        """Open the model's tokenizer and an ONNX Runtime CPU session on its graph.

        Args:
            model: The model to predict with.
            threads: Intra-op threads; `None` means one per available core.
        """
        if model.task not in POST_PROCESSORS:
            raise NotImplementedError(
                f"ONNX inference is implemented for {', '.join(POST_PROCESSORS)}, "
                f"not for {model.task}."
            )
        self.model = model
        self.tokenizer = Tokenizer.from_file(str(model.tokenizer_path))
        self.session = ort.InferenceSession(
            str(model.model_path),
            sess_options=session_options(threads),
            providers=["CPUExecutionProvider"],
        )
        self.input_names = [graph_input.name for graph_input in self.session.get_inputs()]
        unknown = set(self.input_names) - set(ENCODING_FIELDS)
        if unknown:
            raise ValueError(f"The ONNX graph takes inputs no tokenizer gives: {sorted(unknown)}")

    def encode(self, texts: Sequence[str]) -> tuple[list[Encoding], dict[str, np.ndarray]]:
        """Tokenize a batch: its encodings and the graph's int64 inputs, padded to the longest."""
        encodings = self.tokenizer.encode_batch(list(texts))
        inputs = {
            name: np.array(
                [getattr(encoding, ENCODING_FIELDS[name]) for encoding in encodings],
                dtype=np.int64,
            )
            for name in self.input_names
        }
        return encodings, inputs

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """The model's raw first output (logits) for a batch of texts."""
        _, inputs = self.encode(texts)
        return self.session.run(None, inputs)[0]

    def batch_logits(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        """Logits of many texts, run `batch_size` texts at a time, in order."""
        return np.concatenate([self.logits(batch) for batch in batches(texts, batch_size)])

    def predict(self, texts: Sequence[str]) -> list[Any]:
        """One prediction per text, post-processed for the model's task."""
        encodings, inputs = self.encode(texts)
        logits = self.session.run(None, inputs)[0]
        return POST_PROCESSORS[self.model.task](logits, encodings, self.model)
