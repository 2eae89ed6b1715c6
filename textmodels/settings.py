"""Settings of a training run that are not owned by one library module."""

from __future__ import annotations

from pydantic import BaseModel, Field

from textmodels.tasks import Task


class DataSettings(BaseModel):
    """Where the labelled data is, what task it is for and which columns hold what.

    For `ner`, the text column holds each sentence's tokens and the label column its tags
    (CoNLL files are read into these two columns).
    """

    source: str | None = Field(
        None, description="Local path or fsspec URI of a file or folder; null: bundled BBC News."
    )
    task: Task = Task.CLASSIFICATION
    text_column: str = "text"
    label_column: str = "label"
    label_delimiter: str = Field(
        "|", min_length=1, description="multilabel: separates the labels of a text in a CSV cell."
    )


class ModelSettings(BaseModel):
    """The base model to fine-tune and the model it becomes in the Model Control Plane."""

    base_model: str | None = Field(
        None, description="Local Hugging Face model folder; null: the bundled MiniLM-L6."
    )
    max_length: int = Field(256, ge=8, le=512, description="Tokens per window of a text.")
    max_windows: int = Field(
        1,
        ge=1,
        le=64,
        description="classification, multilabel: a longer text is read as up to this many "
        "consecutive windows of max_length tokens (the rest is cut) and predicted by the mean "
        "of their logits; training draws one window per text per epoch. 1: truncate. "
        "ner always reads every window.",
    )
    name: str = Field("text-classifier", description="Model name in the Model Control Plane.")
    description: str = "Transformer text classifier fine-tuned by Stackport."
    tags: list[str] = Field(default_factory=lambda: ["stackport"])
