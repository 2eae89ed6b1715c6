"""Which checkpoint a killed training resumes from, how it goes on, and how they are stored."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, TrainerCallback
from zenml.io import fileio

from pipelines.checkpoints import CheckpointLocation, StoreCheckpoints
from stackport.core.settings import SplitSettings, TrainingSettings
from stackport.data.splitting import split_dataset
from stackport.data.tokenization import tokenize_dataset
from stackport.tasks import training_plugin
from stackport.training.trainer import fine_tune, last_checkpoint


def checkpoint(output_dir, step, state: str | None):
    folder = output_dir / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"weights")
    if state is not None:
        (folder / "trainer_state.json").write_text(state)
    return folder


def test_the_latest_complete_checkpoint_is_resumed_from(tmp_path):
    checkpoint(tmp_path, 12, json.dumps({"global_step": 12}))
    latest = checkpoint(tmp_path, 36, json.dumps({"global_step": 36}))
    checkpoint(tmp_path, 24, json.dumps({"global_step": 24}))
    (tmp_path / "checkpoint-notes").mkdir()

    assert last_checkpoint(tmp_path) == latest  # by step, not by name or age


def test_a_checkpoint_cut_off_by_a_kill_is_passed_over(tmp_path):
    complete = checkpoint(tmp_path, 12, json.dumps({"global_step": 12}))
    checkpoint(tmp_path, 24, None)  # killed before its trainer state was written
    checkpoint(tmp_path, 36, '{"global_step": 3')  # killed while writing it

    assert last_checkpoint(tmp_path) == complete


def test_no_checkpoint_means_a_training_from_the_start(tmp_path):
    assert last_checkpoint(tmp_path / "missing") is None
    checkpoint(tmp_path, 12, None)
    assert last_checkpoint(tmp_path) is None


class KilledCopy(Exception):
    """The process was killed while copying a checkpoint to the artifact store."""


def test_a_checkpoint_copy_cut_off_by_a_kill_is_passed_over_and_copied_again(tmp_path, monkeypatch):
    location = CheckpointLocation(local=tmp_path / "local", stored=str(tmp_path / "stored"))
    first = checkpoint(location.local, 12, json.dumps({"global_step": 12}))
    (first / "optimizer.pt").write_bytes(b"optimizer")
    callback = StoreCheckpoints(location)
    callback.on_save(None, None, None)
    second = checkpoint(location.local, 24, json.dumps({"global_step": 24}))
    (second / "optimizer.pt").write_bytes(b"optimizer")
    copy = fileio.copy
    copied = []

    def copy_until_killed(source, destination, overwrite=False):
        if len(copied) == 2:  # the second checkpoint's third file
            raise KilledCopy
        copied.append(source)
        copy(source, destination, overwrite)

    monkeypatch.setattr(fileio, "copy", copy_until_killed)
    with pytest.raises(KilledCopy):
        callback.on_save(None, None, None)

    assert last_checkpoint(Path(location.stored)) == Path(location.stored) / first.name
    monkeypatch.setattr(fileio, "copy", copy)
    callback.on_save(None, None, None)  # the resumed training's next save
    stored = Path(location.stored) / second.name
    assert last_checkpoint(Path(location.stored)) == stored
    assert {path.name for path in stored.iterdir()} == {
        "model.safetensors",
        "optimizer.pt",
        "trainer_state.json",
    }


def test_checkpoints_the_trainer_rotated_out_leave_the_artifact_store(tmp_path):
    location = CheckpointLocation(local=tmp_path / "local", stored=str(tmp_path / "stored"))
    old = checkpoint(location.local, 12, json.dumps({"global_step": 12}))
    callback = StoreCheckpoints(location)
    callback.on_save(None, None, None)
    checkpoint(location.local, 24, json.dumps({"global_step": 24}))
    shutil.rmtree(old)  # save_total_limit

    callback.on_save(None, None, None)

    assert sorted(path.name for path in Path(location.stored).iterdir()) == ["checkpoint-24"]


class KilledAt(TrainerCallback):
    """Stops a training as a kill would, once it has finished optimizer step `step`."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt(f"killed after step {self.step}")


def test_a_training_killed_inside_an_epoch_resumes_there_and_ends_as_one_never_killed(
    bbc_slice, tiny_bert_path, tmp_path
):
    classification = training_plugin("classification")
    splits = split_dataset(bbc_slice, "text", "label", SplitSettings(), classification)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_path)
    # Two windows per article: each epoch draws one of them, as the default data's long texts do.
    dataset = tokenize_dataset(
        splits, tokenizer, "classification", classification, max_length=32, max_windows=2
    )
    # 96 training articles: 6 steps an epoch, checkpoints at steps 4 and 8 besides 6 and 12.
    settings = TrainingSettings(
        epochs=2, batch_size=16, checkpoint_steps=4, learning_rate=1e-3, early_stopping_patience=2
    )
    assert len(dataset.splits["train"].column("example_id").unique()) == 96

    fine_tune(dataset, tiny_bert_path, settings, tmp_path / "never-killed")
    with pytest.raises(KeyboardInterrupt):
        fine_tune(dataset, tiny_bert_path, settings, tmp_path / "killed", callbacks=[KilledAt(10)])
    resume_from = last_checkpoint(tmp_path / "killed")
    assert resume_from is not None and resume_from.name == "checkpoint-8"  # epoch 2, step 2
    fine_tune(dataset, tiny_bert_path, settings, tmp_path / "killed", resume_from=resume_from)

    # The last step's weights: the same batches, windows and dropout as the run never killed.
    expected = load_file(tmp_path / "never-killed" / "checkpoint-12" / "model.safetensors")
    actual = load_file(tmp_path / "killed" / "checkpoint-12" / "model.safetensors")
    assert expected.keys() == actual.keys()
    for name, weights in expected.items():
        torch.testing.assert_close(actual[name], weights, rtol=0, atol=1e-6, msg=name)
