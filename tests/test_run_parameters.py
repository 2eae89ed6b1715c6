"""Run configurations are checked against the training pipeline's settings."""

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from pipelines.run_parameters import validated_parameters
from pipelines.training import training_pipeline
from stackport.training.hpo import HpoSettings
from stackport.data.splitting import SplitSettings

CONFIGS = Path(__file__).parents[1] / "configs"
TRAINING_CONFIGS = [CONFIGS / "train.yaml", CONFIGS / "ner-conll2003.yaml"]


@pytest.mark.parametrize("path", TRAINING_CONFIGS, ids=lambda path: path.name)
def test_shipped_training_configs_are_valid(path):
    parameters = yaml.safe_load(path.read_text())["parameters"]
    validated = validated_parameters(training_pipeline, parameters)
    assert validated["data"].task.value == parameters["data"].get("task", "classification")


def test_sections_left_out_take_their_defaults():
    validated = validated_parameters(training_pipeline, {"split": {"max_rows": {"train": 10}}})
    assert validated["split"] == SplitSettings(max_rows={"train": 10})
    assert validated["hpo"] == HpoSettings()
    assert list(validated) == list(training_pipeline.entrypoint.__annotations__)[:-1]


def test_unknown_sections_and_keys_are_all_named():
    parameters = {
        "trainig": {},
        "training": {"learning_rte": 0.1},
        "hpo": {"search_space": {"learning_rate": {"low": 1e-5, "high": 1e-4}, "dropout": None}},
    }
    with pytest.raises(ValueError) as refused:
        validated_parameters(training_pipeline, parameters)
    message = str(refused.value)
    for name in ("trainig", "training.learning_rte", "hpo.search_space.dropout"):
        assert name in message
    assert "hpo.search_space.learning_rate" not in message


def test_an_invalid_value_names_its_field():
    with pytest.raises(ValidationError, match="validation_fraction"):
        validated_parameters(training_pipeline, {"split": {"validation_fraction": 2}})
