"""Serving baseline: FastAPI and one ONNX Runtime session, one forward a request.

The approach of a FastAPI + ONNX Runtime text classifier: the request's texts are tokenized
with the model's `tokenizer.json` (truncating at its `max_length`), run through one
`InferenceSession` with ONNX Runtime's default CPU options, and answered with the softmax's
best label (a single-label classifier). FastAPI runs the endpoint in its thread pool, so
concurrent requests call the one session at once, each with its own forward pass.

    ONNX_MODEL_DIR=... uvicorn onnx_runtime_app:app --app-dir benchmarks

`benchmarks/serving.py` starts it beside the bento, on the ONNX variant the bento serves.
"""

import json
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI
from pydantic import BaseModel
from tokenizers import Tokenizer

from stackport.inference.predictor import ENCODING_FIELDS

model_directory = Path(os.environ["ONNX_MODEL_DIR"])
tokenizer = Tokenizer.from_file(str(model_directory / "tokenizer.json"))
session = ort.InferenceSession(
    str(model_directory / "model.onnx"), providers=["CPUExecutionProvider"]
)
input_names = [graph_input.name for graph_input in session.get_inputs()]
labels = json.loads((model_directory / "onnx_model.json").read_text())["label_names"]
app = FastAPI()


class PredictRequest(BaseModel):
    """The same body as the bento's `/predict`."""

    texts: list[str]


@app.post("/predict")
def predict(request: PredictRequest) -> list[dict]:
    """The label and score of each text."""
    encodings = tokenizer.encode_batch(request.texts)
    inputs = {
        name: np.array([getattr(row, ENCODING_FIELDS[name]) for row in encodings], dtype=np.int64)
        for name in input_names
    }
    logits = session.run(None, inputs)[0]
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    best = probabilities.argmax(axis=1)
    return [
        {"label": labels[index], "score": float(row[index])}
        for index, row in zip(best, probabilities, strict=True)
    ]
