"""The bundled MiniLM-L6 weights, offline (slow: real weights; `make test-all` runs it)."""

import tempfile
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from stackport.core.settings import SplitSettings, TrainingSettings
from stackport.data.splitting import split_dataset
from stackport.data.tokenization import tokenize_dataset
from stackport.evaluation.report import classification_report
from stackport.tasks import training_plugin
from stackport.training.model import resolve_base_model
from stackport.training.trainer import fine_tune

pytestmark = pytest.mark.slow


def test_minilm_fine_tunes_on_a_bbc_slice_offline(bbc_slice):
    base = resolve_base_model(None)
    assert (base / "model.safetensors").is_file()
    plugin = training_plugin("classification")
    splits = split_dataset(bbc_slice, "text", "label", SplitSettings(test_fraction=0.25), plugin)
    tokenizer = AutoTokenizer.from_pretrained(base)
    dataset = tokenize_dataset(splits, tokenizer, "classification", plugin, max_length=64)
    with tempfile.TemporaryDirectory() as workdir:
        model = fine_tune(
            dataset, base, TrainingSettings(epochs=2, batch_size=8), output_dir=Path(workdir)
        )
    assert model.model.num_parameters() > 22_000_000
    test = dataset.splits["test"]
    report = classification_report(
        "minilm",
        "test",
        model.label_names,
        test.column("labels").to_pylist(),
        model.predict_logits(test).argmax(-1).tolist(),
    )
    # Five balanced topics: chance is 0.2. Two epochs on 66 articles land far above it.
    assert report.metrics["accuracy"] > 0.5
