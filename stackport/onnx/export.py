"""Exporting a fine-tuned model to ONNX with Optimum, and checking it against PyTorch."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import torch
from onnx.external_data_helper import uses_external_data
from tokenizers import Tokenizer
from tqdm.auto import tqdm
from transformers import BatchEncoding, PretrainedConfig, PreTrainedTokenizerBase

from stackport.core.plugins import WordSpans
from stackport.core.settings import OnnxVariant
from stackport.inference.onnx_model import (
    MODEL_FILENAME,
    TOKENIZER_FILENAME,
    OnnxModel,
    file_sha256,
)
from stackport.inference.predictor import OnnxPredictor, batches
from stackport.inference.words import Text, word_lists
from stackport.tasks import inference_plugin
from stackport.training.model import FineTunedModel

PARITY_BATCH_SIZE = 16
PARITY_SEED = 42
DEFAULT_DOMAINS = ("", "ai.onnx")


class OnnxParityError(ValueError):
    """The exported ONNX model's outputs differ from PyTorch's by more than the tolerance."""


def export_to_onnx(
    model: FineTunedModel,
    directory: Path,
    max_length: int,
    opset: int | None = None,
    max_windows: int = 1,
) -> OnnxModel:
    """Export the model with Optimum for its task, plus a tokenizer.json truncating as in training.

    Args:
        model: The fine-tuned model.
        directory: A local directory (created if missing) that receives the model's files.
        max_length: Tokens per text after truncation, as in training.
        opset: ONNX opset; `None` means Optimum's default for the architecture.
        max_windows: Windows of `max_length` tokens a long text is read as, as in training.

    Returns:
        The fp32 ONNX model, its files sealed with their sha256.
    """
    # Imported here: importing Optimum's exporters takes seconds, which only the export pays.
    from optimum.exporters.onnx import onnx_export_from_model

    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="stackport-export-") as export_dir:
        onnx_export_from_model(
            model.model,
            output=export_dir,
            task=inference_plugin(model.task).export_task,
            opset=opset,
            do_validation=False,  # check_parity compares on real texts instead
        )
        for name in graph_file_names(Path(export_dir) / MODEL_FILENAME):
            shutil.move(Path(export_dir) / name, directory / name)
    write_tokenizer(model.tokenizer, max_length, directory / TOKENIZER_FILENAME)
    return seal_onnx_model(
        directory,
        model.task,
        model.label_names,
        max_length,
        OnnxVariant.FP32,
        thresholds=model.label_thresholds,
        max_windows=max_windows,
    )


def optimize_onnx_model(
    model: OnnxModel, config: PretrainedConfig, directory: Path, level: int
) -> OnnxModel:
    """The fp32 model with ONNX Runtime's transformer fusions applied ahead of time.

    `ORTOptimizer` (Optimum) rewrites the graph for CPU: attention, layer normalization and
    GELU become fused ops, which ONNX Runtime does not all find by itself when it loads the
    plain graph. The result is the `fp32-optimized` variant, with `model`'s tokenizer, labels,
    thresholds and windows.

    Args:
        model: The fp32 model as exported.
        config: The Hugging Face config of the model (its architecture, for the fusions).
        directory: A local directory (created if missing) that receives the variant's files.
        level: 1 (graph fusions) or 2 (also the transformer fusions).
    """
    # Imported here: importing Optimum's ONNX Runtime tools takes seconds.
    from optimum.onnxruntime import ORTOptimizer
    from optimum.onnxruntime.configuration import OptimizationConfig

    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="stackport-optimize-") as work:
        ORTOptimizer([model.model_path], config).optimize(
            OptimizationConfig(optimization_level=level, optimize_for_gpu=False),
            work,
            file_suffix=None,
        )
        for name in graph_file_names(Path(work) / MODEL_FILENAME):
            shutil.move(Path(work) / name, directory / name)
    return seal_variant(model, directory, OnnxVariant.FP32_OPTIMIZED)


def seal_variant(source: OnnxModel, directory: Path, variant: OnnxVariant) -> OnnxModel:
    """Seal the graph in `directory` as `variant` of `source`, with its tokenizer and labels.

    The variant predicts as `source` does: the same task, labels, thresholds, `max_length`
    and windows.
    """
    shutil.copyfile(source.tokenizer_path, directory / TOKENIZER_FILENAME)
    return seal_onnx_model(
        directory,
        source.task,
        source.label_names,
        source.max_length,
        variant,
        thresholds=source.thresholds,
        max_windows=source.max_windows,
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
    task: str,
    label_names: Sequence[str],
    max_length: int,
    variant: OnnxVariant,
    thresholds: Sequence[float] | None = None,
    max_windows: int = 1,
) -> OnnxModel:
    """Describe the graph and tokenizer in `directory`, record their sha256, write the manifest.

    Args:
        directory: Holds `model.onnx` (and its external data) and `tokenizer.json`.
        task: The task the model was trained for.
        label_names: Label names in the order of the logits.
        max_length: Tokens per text after truncation.
        variant: Which form of the graph it is.
        thresholds: multilabel: each label's probability threshold.
        max_windows: Windows of `max_length` tokens a long text is read as.

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
        variant=variant,
        inputs=[graph_input.name for graph_input in graph.graph.input],
        outputs=[graph_output.name for graph_output in graph.graph.output],
        file_sha256={name: file_sha256(directory / name) for name in files},
        thresholds=None if thresholds is None else list(thresholds),
        max_windows=max_windows,
    )
    model.write_manifest()
    return model


def parity_texts(validation_set: pd.DataFrame, samples: int) -> list[Text]:
    """A seeded sample of validation texts (NER: word lists; splits keep their source's order)."""
    count = min(samples, len(validation_set))
    return validation_set["text"].sample(n=count, random_state=PARITY_SEED).tolist()


def transformers_batch(
    model: FineTunedModel, texts: Sequence[str], words: Sequence[WordSpans] | None, max_length: int
) -> BatchEncoding:
    """Texts tokenized by the model's `transformers` tokenizer, as the ONNX model's tokenizer does.

    Truncated to `max_length`, padded to the longest text; a word-level model's texts word by
    word (`words`: the spans of each text's words), as in training.
    """
    return model.tokenizer(
        list(texts) if words is None else word_lists(texts, words),
        is_split_into_words=words is not None,
        truncation=True,
        max_length=max_length,
        padding=True,
        return_tensors="pt",
    )


@torch.inference_mode()
def pytorch_logits(model: FineTunedModel, batch: BatchEncoding) -> np.ndarray:
    """The PyTorch model's logits for a tokenized batch."""
    model.model.eval()
    return model.model(**batch).logits.float().numpy()


def max_logit_difference(
    model: FineTunedModel, onnx_model: OnnxModel, texts: Sequence[Text]
) -> float:
    """Largest |ONNX - PyTorch| logit over `texts`, both run on the same padded batches.

    Each side tokenizes with its own tokenizer; token logits are compared at real tokens only.

    Raises:
        OnnxParityError: The two tokenizers give batches of different shapes.
    """
    predictor = OnnxPredictor(onnx_model)
    difference = 0.0
    text_batches = batches(texts, PARITY_BATCH_SIZE)
    for texts_batch in tqdm(text_batches, desc="ONNX parity check", unit="batch"):
        batch = predictor.encode(texts_batch)
        actual = predictor.session.run(None, batch.inputs)[0]
        expected = pytorch_logits(
            model, transformers_batch(model, batch.texts, batch.words, onnx_model.max_length)
        )
        if actual.shape != expected.shape:
            raise OnnxParityError(
                f"The ONNX model's tokenizer gives logits of shape {actual.shape}, the PyTorch "
                f"model's {expected.shape}: the tokenizers differ."
            )
        gap = np.abs(actual - expected)
        if gap.ndim == 3:  # token logits: padding positions do not count
            gap = gap * batch.inputs["attention_mask"][..., None]
        difference = max(difference, float(gap.max()))
    return difference


def check_parity(
    model: FineTunedModel, onnx_model: OnnxModel, texts: Sequence[Text], tolerance: float
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
