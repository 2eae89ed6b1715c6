"""Where `train_model` keeps its checkpoints: in the stack's artifact store.

A run killed during training and started again with the same inputs finds the checkpoints
of the first and resumes from the last one, on this machine as on a remote orchestrator whose
steps each run in a fresh container: the checkpoints live under the artifact store, at a
location named after what the training depends on (the tokenized data's content, the base
model, the settings). The Trainer writes to a local folder of the same name; on a remote
artifact store each new checkpoint is copied there as it is saved (its trainer state last,
so that a copy cut off by a kill is passed over), and copied back before a resumed run. The
model's materializer removes both once the trained model is stored.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from transformers import TrainerCallback
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from zenml.client import Client
from zenml.io import fileio
from zenml.utils import io_utils

from stackport.core.settings import TrainingSettings
from stackport.data.tokenization import TokenizedDataset

CHECKPOINTS_FOLDER = "stackport-checkpoints"
KEY_CHARS = 16


@dataclass(frozen=True)
class CheckpointLocation:
    """A training's checkpoint folder: where the Trainer writes, and where it is kept.

    Attributes:
        local: The folder the Trainer writes to.
        stored: The folder in the artifact store; `local` itself on a local artifact store.
    """

    local: Path
    stored: str

    @property
    def mirrored(self) -> bool:
        """Whether checkpoints are copied between a local folder and the artifact store."""
        return str(self.local) != self.stored

    def restore(self) -> None:
        """Copy the stored checkpoints of an earlier, killed run to the local folder."""
        if self.mirrored and fileio.exists(self.stored):
            io_utils.copy_dir(self.stored, str(self.local), overwrite=True)

    def locations(self) -> tuple[str, ...]:
        """Every folder to remove once the model is stored."""
        return (str(self.local), self.stored) if self.mirrored else (self.stored,)


def checkpoint_location(
    dataset: TokenizedDataset, base_model_fingerprint: str, training: TrainingSettings
) -> CheckpointLocation:
    """The checkpoint folder of this training: the same inputs find the same folder."""
    state = {
        "data": dataset.content_hash(),
        "base_model": base_model_fingerprint,
        "training": training.model_dump(mode="json"),
    }
    key = hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:KEY_CHARS]
    artifact_store = Client().active_stack.artifact_store
    stored = os.path.join(artifact_store.path, CHECKPOINTS_FOLDER, f"train_model-{key}")
    if artifact_store.flavor == "local":
        return CheckpointLocation(local=Path(stored), stored=stored)
    local = Path(tempfile.gettempdir()) / CHECKPOINTS_FOLDER / f"train_model-{key}"
    return CheckpointLocation(local=local, stored=stored)


class StoreCheckpoints(TrainerCallback):
    """Copies each new checkpoint to the artifact store as the Trainer saves it."""

    def __init__(self, location: CheckpointLocation):
        self.location = location

    def on_save(self, args, state, control, **kwargs):  # noqa: D102
        if not self.location.mirrored:
            return
        saved = {path.name for path in self.location.local.glob(f"{PREFIX_CHECKPOINT_DIR}-*")}
        fileio.makedirs(self.location.stored)
        for name in fileio.listdir(self.location.stored):
            if str(name).startswith(f"{PREFIX_CHECKPOINT_DIR}-") and str(name) not in saved:
                fileio.rmtree(os.path.join(self.location.stored, str(name)))  # rotated out
        for name in sorted(saved):
            stored = os.path.join(self.location.stored, name)
            if not fileio.exists(os.path.join(stored, TRAINER_STATE_NAME)):
                copy_checkpoint(self.location.local / name, stored)


def copy_checkpoint(source: Path, target: str) -> None:
    """Copy a checkpoint folder with its trainer state last, as the Trainer writes it.

    A copy cut off by a kill then lacks `trainer_state.json`, and a resumed training passes
    it over (`stackport.training.trainer.last_checkpoint`) for the previous complete one.
    """
    files = (path for path in source.rglob("*") if path.is_file())
    for path in sorted(files, key=lambda path: (path.name == TRAINER_STATE_NAME, path)):
        destination = os.path.join(target, *path.relative_to(source).parts)
        fileio.makedirs(os.path.dirname(destination))
        fileio.copy(str(path), destination, overwrite=True)
