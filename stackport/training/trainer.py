"""Fine-tuning a transformer for a task with the Hugging Face Trainer on CPU."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from transformers import (
    EarlyStoppingCallback,
    EvalPrediction,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_pt_utils import LengthGroupedSampler
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from stackport.core.names import EXAMPLE_ID_COLUMN
from stackport.core.settings import TrainingSettings
from stackport.data.tokenization import TokenizedDataset, by_length
from stackport.tasks import training_plugin
from stackport.training.model import FineTunedModel

EVALUATION_BATCH_SIZE = 64


class ArrowTorchDataset(torch.utils.data.Dataset):
    """Rows of a tokenized Arrow table as the dicts a data collator pads."""

    def __init__(self, table: pa.Table):
        self._rows = table.select(["input_ids", "attention_mask", "labels"]).to_pylist()

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index: int) -> dict:
        return self._rows[index]

    def lengths(self) -> list[int]:
        """The token count of each item."""
        return [len(row["input_ids"]) for row in self._rows]


class OneWindowPerExample(ArrowTorchDataset):
    """One item per example of a tokenized table: one of its rows (windows), drawn per epoch.

    An epoch thus sees every text once, through a window drawn anew at every epoch. The draw
    depends only on the seed, the epoch (Trainer calls `set_epoch`) and the example, so a
    training resumed in the middle of an epoch sees the windows the killed one would have.
    """

    def __init__(self, table: pa.Table, seed: int):
        super().__init__(table)
        examples: dict[int, list[int]] = {}
        for row, example in enumerate(table.column(EXAMPLE_ID_COLUMN).to_pylist()):
            examples.setdefault(example, []).append(row)
        self._example_rows = list(examples.values())
        self._seed = seed
        self._epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw the windows of this epoch."""
        self._epoch = epoch

    def __len__(self) -> int:
        return len(self._example_rows)

    def __getitem__(self, index: int) -> dict:
        draw = random.Random(f"{self._seed}:{self._epoch}:{index}")
        return self._rows[draw.choice(self._example_rows[index])]

    def lengths(self) -> list[int]:
        """The token count of each item: its example's longest window."""
        return [
            max(len(self._rows[row]["input_ids"]) for row in rows) for rows in self._example_rows
        ]


class LengthGroupedTrainer(Trainer):
    """A Trainer whose training batches hold texts of similar length; evaluation keeps order.

    Dynamic padding pads a batch to its longest text: batches of similar lengths pad little,
    which for short sentences nearly halves the time of a step on CPU. Batches are drawn as
    `LengthGroupedSampler` draws them (random megabatches of 50 batches, sorted by length
    inside). Transformers' own `group_by_length` also reorders evaluation, whose predictions
    then no longer line up with the table they are scored against, so it is not used.
    """

    def _get_train_sampler(self, train_dataset=None):  # noqa: D102
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        return EpochSeededLengthGroupedSampler(
            self.args.train_batch_size * self.args.gradient_accumulation_steps,
            lengths=dataset.lengths(),
            seed=self.args.data_seed,
        )


class EpochSeededLengthGroupedSampler(LengthGroupedSampler):
    """`LengthGroupedSampler` whose order depends only on its seed and the epoch.

    Trainer calls `set_epoch` before every epoch. A training resumed in the middle of an
    epoch thus draws that epoch's batches in the order the killed one drew them, and skips
    the ones it had trained on, where the global random state would give another order.
    """

    def __init__(self, batch_size: int, lengths: list[int], seed: int):
        super().__init__(batch_size, lengths=lengths, generator=torch.Generator())
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Draw the order of this epoch."""
        self.generator.manual_seed(self.seed + epoch)


class CheckpointInsideEpochs(TrainerCallback):
    """Saves a checkpoint every `steps` optimizer steps between the ones at the epochs' ends.

    A training killed in the middle of an epoch then resumes at most `steps` steps back
    instead of at the epoch's start. These checkpoints are not evaluated: the best one,
    restored at the end, is still chosen among the evaluated ones at the epochs' ends.
    """

    def __init__(self, steps: int):
        self.steps = steps

    def on_step_end(self, args, state, control, **kwargs):  # noqa: D102
        steps_per_epoch = state.max_steps // math.ceil(args.num_train_epochs)
        inside_epoch = state.global_step % steps_per_epoch != 0
        if inside_epoch and state.global_step % self.steps == 0:
            control.should_save = True
        return control


def last_checkpoint(output_dir: Path) -> Path | None:
    """The latest complete checkpoint a training into `output_dir` saved, if any.

    Trainer writes a checkpoint's `trainer_state.json` after its weights, optimizer and RNG
    states: a checkpoint without a readable one was cut off by a kill and is passed over.
    """
    checkpoints = []
    for folder in output_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*") if output_dir.is_dir() else ():
        step = folder.name.removeprefix(f"{PREFIX_CHECKPOINT_DIR}-")
        if folder.is_dir() and step.isdigit():
            checkpoints.append((int(step), folder))
    for _, folder in sorted(checkpoints, reverse=True):
        try:
            json.loads((folder / TRAINER_STATE_NAME).read_text())
        except (OSError, ValueError):
            continue
        return folder
    return None


def fine_tune(
    dataset: TokenizedDataset,
    base_model: Path,
    settings: TrainingSettings,
    output_dir: Path,
    report_to: Sequence[str] = (),
    callbacks: Sequence[TrainerCallback] = (),
    resume_from: Path | None = None,
) -> FineTunedModel:
    """Fine-tune `base_model` for the dataset's task, early-stopping on its selection metric.

    Evaluates and checkpoints once per epoch, scoring the validation split as the task's
    evaluation does, and restores the best checkpoint at the end; `settings.checkpoint_steps`
    adds unevaluated checkpoints inside the epochs to resume from. A task that trains on one
    window per text (`train_one_window`) draws each text's window anew at every epoch. A task
    with per-label thresholds (multilabel) tunes them on the validation split, at every
    evaluation and once more for the restored model, which keeps them in
    `config.label_thresholds`. The model's `config.text_windows` records how its texts were
    tokenized (`max_length`, `max_windows`). `settings.num_layers` keeps the base model's
    first this many encoder layers.
    `report_to` names Trainer integrations to log to, e.g. `("mlflow",)`; `callbacks` are
    added to the Trainer's (a hyper-parameter search reports and prunes through one).
    `resume_from` is a checkpoint of `output_dir` (`last_checkpoint`) that a killed run of the
    same training left: training goes on from it (weights, optimizer, schedule, data order,
    random state and the early-stopping state) as if it had not been killed.
    """
    torch.manual_seed(settings.seed)
    spec = training_plugin(dataset.task)
    label_names = dataset.label_names
    validation = by_length(dataset.splits["validation"])  # evaluation pads little
    untrained = FineTunedModel.with_new_head(
        base_model, dataset.task, label_names, num_layers=settings.num_layers
    )
    tokenizer = untrained.tokenizer
    if settings.freeze_embeddings:
        untrained.model.get_input_embeddings().weight.requires_grad_(False)

    def thresholds(logits: np.ndarray) -> list[float] | None:
        return spec.tune_thresholds(logits, validation) if spec.tune_thresholds else None

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        logits = np.asarray(prediction.predictions)
        return spec.report(
            "", "validation", label_names, logits, validation, thresholds(logits)
        ).metrics

    arguments = TrainingArguments(
        output_dir=str(output_dir),
        learning_rate=settings.learning_rate,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=max(settings.batch_size, EVALUATION_BATCH_SIZE),
        num_train_epochs=settings.epochs,
        weight_decay=settings.weight_decay,
        warmup_ratio=settings.warmup_ratio,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model=spec.selection_metric,
        greater_is_better=True,
        logging_strategy="epoch",
        seed=settings.seed,
        data_seed=settings.seed,
        use_cpu=True,
        report_to=list(report_to),
        disable_tqdm=False,
        dataloader_num_workers=0,
    )
    train_dataset = (
        OneWindowPerExample(dataset.splits["train"], settings.seed)
        if spec.train_one_window
        else ArrowTorchDataset(dataset.splits["train"])
    )
    inside_epochs = (
        [CheckpointInsideEpochs(settings.checkpoint_steps)] if settings.checkpoint_steps else []
    )
    trainer = LengthGroupedTrainer(
        model=untrained.model,
        args=arguments,
        train_dataset=train_dataset,
        eval_dataset=ArrowTorchDataset(validation),
        data_collator=spec.make_collator(tokenizer, label_names),
        compute_metrics=compute_metrics,
        callbacks=[
            EarlyStoppingCallback(early_stopping_patience=settings.early_stopping_patience),
            *inside_epochs,
            *callbacks,
        ],
    )
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    trainer.model.eval()
    if spec.tune_thresholds is not None:
        logits = trainer.predict(ArrowTorchDataset(validation)).predictions
        trainer.model.config.label_thresholds = spec.tune_thresholds(logits, validation)
    trainer.model.config.text_windows = {
        "max_length": dataset.max_length,
        "max_windows": dataset.max_windows,
    }
    return FineTunedModel(model=trainer.model, tokenizer=tokenizer, task=dataset.task)
