"""Depth as a hyper-parameter: a base model cut to its first layers, and each depth's latency."""

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer

from stackport.core.settings import HpoSettings, SearchSpace, SplitSettings, TrainingSettings
from stackport.data.splitting import split_dataset
from stackport.data.tokenization import tokenize_dataset
from stackport.onnx.benchmark import depth_latencies
from stackport.onnx.export import export_to_onnx
from stackport.tasks import training_plugin
from stackport.training.hpo import apply_choice, choose_trial, run_study
from stackport.training.model import FineTunedModel
from stackport.training.trainer import fine_tune
from tests.helpers import MAX_LENGTH, onnx_layers

CLASSIFICATION = training_plugin("classification")
LABELS = ["business", "sport", "tech"]


@pytest.fixture(scope="module")
def tiny_dataset(bbc_slice, tiny_bert_path):
    splits = split_dataset(bbc_slice, "text", "label", SplitSettings(), CLASSIFICATION)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_path)
    return tokenize_dataset(splits, tokenizer, "classification", CLASSIFICATION, max_length=32)


def test_a_cut_model_keeps_the_base_models_first_layers_and_exports_only_them(
    tiny_bert_path, tmp_path
):
    base = load_file(tiny_bert_path / "model.safetensors")
    full = FineTunedModel.with_new_head(tiny_bert_path, "classification", LABELS)
    cut = FineTunedModel.with_new_head(tiny_bert_path, "classification", LABELS, num_layers=1)

    assert full.model.config.num_hidden_layers == 2 and len(full.model.bert.encoder.layer) == 2
    assert cut.model.config.num_hidden_layers == 1 and len(cut.model.bert.encoder.layer) == 1
    query = cut.model.bert.encoder.layer[0].attention.self.query.weight
    assert torch.equal(query, base["encoder.layer.0.attention.self.query.weight"])
    assert onnx_layers(export_to_onnx(full, tmp_path / "full", MAX_LENGTH).model_path) == {0, 1}
    assert onnx_layers(export_to_onnx(cut, tmp_path / "cut", MAX_LENGTH).model_path) == {0}


def test_more_layers_than_the_base_model_has_are_refused(tiny_bert_path):
    with pytest.raises(ValueError, match="has only 2 encoder layers"):
        FineTunedModel.with_new_head(tiny_bert_path, "classification", LABELS, num_layers=3)


def test_the_search_measures_each_depth_once_and_the_final_training_keeps_the_chosen_one(
    tiny_dataset, tiny_bert_path, tmp_path
):
    settings = HpoSettings(
        n_trials=3,
        storage=f"sqlite:///{tmp_path / 'optuna.db'}",
        pruner="none",
        trial_train_fraction=0.5,
        search_space=SearchSpace(
            learning_rate=None, weight_decay=None, warmup_ratio=None, num_layers=[2, 1]
        ),
    )
    base = TrainingSettings(batch_size=8, epochs=1)
    latencies = depth_latencies(tiny_bert_path, tiny_dataset, [2, 1], tmp_path / "latency")
    report = run_study(tiny_dataset, tiny_bert_path, base, settings, "depths", tmp_path, latencies)

    assert set(report.latency_ms_by_num_layers) == {1, 2}
    assert all(latency > 0 for latency in report.latency_ms_by_num_layers.values())
    completed = [trial for trial in report.trials if trial.state == "COMPLETE"]
    assert len(completed) == 3 and {trial.params["num_layers"] for trial in completed} <= {1, 2}

    choice = choose_trial(report, "fastest_within", epsilon=1.0)  # every trial is within 1.0
    assert choice.latency_ms == min(report.latency_ms(trial) for trial in completed)
    selected = apply_choice(choice, base)
    assert selected.num_layers == choice.params["num_layers"]

    model = fine_tune(tiny_dataset, tiny_bert_path, selected, output_dir=tmp_path / "final")
    model.save(tmp_path / "saved")
    saved_config = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert saved_config["num_hidden_layers"] == selected.num_layers
    loaded = FineTunedModel.load(tmp_path / "saved", "classification")
    assert len(loaded.model.bert.encoder.layer) == selected.num_layers
    exported = export_to_onnx(loaded, tmp_path / "onnx", 32)
    assert onnx_layers(exported.model_path) == set(range(selected.num_layers))
