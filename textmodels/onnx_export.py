"""Exporting a fine-tuned model to ONNX with Optimum, and checking it against PyTorch."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
from onnx.external_data_helper import uses_external_data
from pydantic import BaseModel, Field
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerBase

from textmodels.inference import OnnxPredictor, batches
from textmodels.modeling import FineTunedModel
from textmodels.onnx_model import (
    MODEL_FILENAME,
    TOKENIZER_FILENAME,
    OnnxModel,
    QuantizationMode,
    file_sha256,
)
from textmodels.tasks import Task

# The Optimum (`optimum.exporters.tasks.TasksManager`) task each of our tasks exports as.
OPTIMUM_TASKS: dict[Task, str] = {Task.CLASSIFICATION: "text-classification"}
PARITY_BATCH_SIZE = 16
PARITY_SEED = 42
DEFAULT_DOMAINS = ("", "ai.onnx")


class ExportSettings(BaseModel):
    """How to export the fine-tuned model to ONNX and how closely it must match PyTorch."""

    opset: int | None = Field(
        None, ge=14, description="ONNX opset; null: Optimum's default for the architecture."
    )
    parity_tolerance: float = Field(
        1e-4, gt=0, description="Largest |ONNX - PyTorch| logit difference allowed."
    )
    parity_samples: int = Field(
        64, ge=1, description="Validation texts (a seeded sample) the parity check runs."
    )


class OnnxParityError(ValueError):
    """The exported ONNX model's outputs differ from PyTorch's by more than the tolerance."""


def export_to_onnx(
    model: FineTunedModel, directory: Path, max_length: int, opset: int | None = None
) -> OnnxModel:
    """Export the model with Optimum for its task, plus a tokenizer.json truncating as in training.

    Args:
        model: The fine-tuned model.
        directory: A local directory (created if missing) that receives the model's files.
        max_length: Tokens per text after truncation, as in training.
        opset: ONNX opset; `None` means Optimum's default for the architecture.

    Returns:
        The fp32 ONNX model, its files sealed with their sha256.
    """
    # Imported here: importing Optimum's exporters takes seconds, which only the export pays.
    from optimum.exporters.onnx import onnx_export_from_model

    if model.task not in OPTIMUM_TASKS:
        raise NotImplementedError(
            f"ONNX export is implemented for {', '.join(OPTIMUM_TASKS)}, not for {model.task}."
        )
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="stackport-export-") as export_dir:
        onnx_export_from_model(
            model.model,
            output=export_dir,
            task=OPTIMUM_TASKS[model.task],
            opset=opset,
            do_validation=False,  # check_parity compares on real texts instead
        )
        for name in graph_file_names(Path(export_dir) / MODEL_FILENAME):
            shutil.move(Path(export_dir) / name, directory / name)
    write_tokenizer(model.tokenizer, max_length, directory / TOKENIZER_FILENAME)
    return seal_onnx_model(
        directory, model.task, model.label_names, max_length, QuantizationMode.FP32
    )


def write_tokenizer(tokenizer: PreTrainedTokenizerBase, max_length: int, path: Path) -> None:
    """Save a fast tokenizer's `tokenizers` backend, truncating to `max_length` and padding.

    Padding is dynamic: a batch is padded to its longest text.
    """
    if not tokenizer.is_fast:
        raise ValueError(
            f"{type(tokenizer).__name__} is not a fast tokenizer: ONNX inference needs its "
            "tokenizer.json (Hugging Face `tokenizers`)."
        )
    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.enable_truncation(max_length, direction=tokenizer.truncation_side)
    backend.enable_padding(
        direction=tokenizer.padding_side,
        pad_id=tokenizer.pad_token_id,
        pad_type_id=tokenizer.pad_token_type_id,
        pad_token=tokenizer.pad_token,
    )
    backend.save(str(path))


def graph_file_names(model_path: Path) -> list[str]:
    """The `.onnx` file's name followed by the external data files it references."""
    graph = onnx.load(str(model_path), load_external_data=False)
    locations = {
        entry.value
        for tensor in _graph_tensors(graph)
        if uses_external_data(tensor)
        for entry in tensor.external_data
        if entry.key == "location"
    }
    return [model_path.name, *sorted(locations)]


def _graph_tensors(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    """Every tensor of the graph and its subgraphs, where external data can live."""
    tensors: list[onnx.TensorProto] = []
    graphs = [model.graph]
    while graphs:
        graph = graphs.pop()
        tensors.extend(graph.initializer)
        for node in graph.node:
            for attribute in node.attribute:
                tensors.extend([attribute.t] if attribute.HasField("t") else attribute.tensors)
                graphs.extend([attribute.g] if attribute.HasField("g") else attribute.graphs)
    return tensors


def seal_onnx_model(
    directory: Path,
    task: Task,
    label_names: Sequence[str],
    max_length: int,
    quantization: QuantizationMode,
) -> OnnxModel:
    """Describe the graph and tokenizer in `directory`, record their sha256, write the manifest.

    Args:
        directory: Holds `model.onnx` (and its external data) and `tokenizer.json`.
        task: The task the model was trained for.
        label_names: Label names in the order of the logits.
        max_length: Tokens per text after truncation.
        quantization: How the graph's weights are stored.

    Returns:
        The model, loadable from `directory` with `OnnxModel.load`.
    """
    model_path = directory / MODEL_FILENAME
    graph = onnx.load(str(model_path), load_external_data=False)
    files = [*graph_file_names(model_path), TOKENIZER_FILENAME]
    model = OnnxModel(
        directory=directory,
        task=task,
        label_names=list(label_names),
        max_length=max_length,
        opset=next(op.version for op in graph.opset_import if op.domain in DEFAULT_DOMAINS),
        quantization=quantization,
        inputs=[graph_input.name for graph_input in graph.graph.input],
        outputs=[graph_output.name for graph_output in graph.graph.output],
        file_sha256={name: file_sha256(directory / name) for name in files},
    )
    model.write_manifest()
    return model


def parity_texts(validation_set: pd.DataFrame, samples: int) -> list[str]:
    """A seeded sample of validation texts (splits often keep their source's label order)."""
    count = min(samples, len(validation_set))
    return validation_set["text"].sample(n=count, random_state=PARITY_SEED).tolist()


def max_logit_difference(
    model: FineTunedModel, onnx_model: OnnxModel, texts: Sequence[str]
) -> float:
    """Largest |ONNX - PyTorch| logit over `texts`, both run on the same padded batches."""
    predictor = OnnxPredictor(onnx_model)
    difference = 0.0
    for batch in batches(texts, PARITY_BATCH_SIZE):
        expected = model.predict_text_logits(batch, onnx_model.max_length)
        difference = max(difference, float(np.abs(predictor.logits(batch) - expected).max()))
    return difference


def check_parity(
    model: FineTunedModel, onnx_model: OnnxModel, texts: Sequence[str], tolerance: float
) -> float:
    """The max logit difference on `texts`; raises when it exceeds `tolerance`.

    Raises:
        OnnxParityError: Naming the difference and the tolerance.
    """
    difference = max_logit_difference(model, onnx_model, texts)
    if difference > tolerance:
        raise OnnxParityError(
            f"The ONNX export differs from the PyTorch model by up to {difference:.3g} in the "
            f"logits of {len(texts)} validation texts, more than the tolerance {tolerance:g}."
        )
    return difference
