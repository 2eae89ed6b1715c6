"""Which epoch checkpoint a killed training resumes from."""

import json

from stackport.training.trainer import last_checkpoint


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
