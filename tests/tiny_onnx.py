"""Tiny random BERT classifiers exported to ONNX, for the serving and deployment tests."""

from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from textmodels.modeling import FineTunedModel
from textmodels.onnx_export import export_to_onnx
from textmodels.onnx_model import OnnxModel
from textmodels.tasks import Task

MAX_LENGTH = 64


def tiny_onnx_model(
    tiny_bert_path: Path, label_names: list[str], directory: Path, seed: int = 0
) -> OnnxModel:
    """The tiny BERT with a random classification head (seeded), exported to fp32 ONNX."""
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_bert_path,
        num_labels=len(label_names),
        id2label=dict(enumerate(label_names)),
        label2id={name: index for index, name in enumerate(label_names)},
    )
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_path)
    fine_tuned = FineTunedModel(model=model, tokenizer=tokenizer, task=Task.CLASSIFICATION)
    return export_to_onnx(fine_tuned, directory, MAX_LENGTH)
