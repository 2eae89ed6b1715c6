"""Tiny random BERT models of every task exported to ONNX (ONNX, serving, deployment tests)."""

from pathlib import Path

import torch

from stackport.training.model import FineTunedModel
from stackport.onnx.export import export_to_onnx
from stackport.inference.onnx_model import OnnxModel
from textmodels.task_registry import task_spec
from stackport.core.tasks import Task

MAX_LENGTH = 64
# Thresholds around 0.5: a random head's probabilities are close to it, so texts get 0 to 5 labels.
MULTILABEL_THRESHOLDS = [0.45, 0.5, 0.55, 0.48, 0.52]


def tiny_model(
    tiny_bert_path: Path, label_names: list[str], seed: int = 0, task: Task = Task.CLASSIFICATION
) -> FineTunedModel:
    """The tiny BERT with a random head for `task` (seeded); multilabel: with thresholds."""
    torch.manual_seed(seed)
    model = FineTunedModel.with_new_head(tiny_bert_path, task, label_names)
    if task_spec(task).tune_thresholds is not None:
        model.model.config.label_thresholds = MULTILABEL_THRESHOLDS[: len(label_names)]
    return model


def tiny_onnx_model(
    tiny_bert_path: Path,
    label_names: list[str],
    directory: Path,
    seed: int = 0,
    task: Task = Task.CLASSIFICATION,
) -> OnnxModel:
    """`tiny_model` exported to fp32 ONNX."""
    return export_to_onnx(
        tiny_model(tiny_bert_path, label_names, seed, task), directory, MAX_LENGTH
    )
