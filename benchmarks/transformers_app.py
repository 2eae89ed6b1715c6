"""Serving baseline: FastAPI and a transformers pipeline in PyTorch fp32, one forward a request.

    TRANSFORMERS_MODEL_DIR=... uvicorn transformers_app:app --app-dir benchmarks

`benchmarks/serving.py` starts it beside the bento, with the same model and `max_length`.
"""

import os

from fastapi import FastAPI
from pydantic import BaseModel
from transformers import pipeline

classifier = pipeline(
    "text-classification", model=os.environ["TRANSFORMERS_MODEL_DIR"], device="cpu"
)
max_length = int(os.environ.get("TRANSFORMERS_MAX_LENGTH", "128"))
app = FastAPI()


class PredictRequest(BaseModel):
    """The same body as the bento's `/predict`."""

    texts: list[str]


@app.post("/predict")
def predict(request: PredictRequest) -> list[dict]:
    """The label and score of each text."""
    return classifier(request.texts, truncation=True, max_length=max_length)
