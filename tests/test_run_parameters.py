"""Run configurations are checked against the training pipeline's settings."""

from pathlib import Path

import pytest
import yaml

from pipelines.deployment import DEPLOY_SECTIONS
from pipelines.run_parameters import validated_parameters, validated_sections
from pipelines.training import training_pipeline
from stackport.core.settings import HpoSettings, SplitSettings

CONFIGS = Path(__file__).parents[1] / "configs"
TRAINING_CONFIGS = [
    CONFIGS / "train.yaml",
    CONFIGS / "bbc-news.yaml",
    CONFIGS / "ner-conll2003.yaml",
]


def is_section(value: object) -> bool:
    """A settings model whose every field has a default: a config may set some of its keys."""
    fields = getattr(type(value), "model_fields", {})
    return bool(fields) and not any(field.is_required() for field in fields.values())


def defaults_restated(values: dict, model: object, prefix: str) -> list[str]:
    """Dotted keys of `values` that set their field to the value it has anyway."""
    restated = []
    for key, value in values.items():
        current = getattr(model, key)
        if isinstance(value, dict) and is_section(current):
            restated += defaults_restated(value, current, f"{prefix}{key}.")
        elif type(model)(**{**model.model_dump(), key: value}) == model:
            restated.append(f"{prefix}{key}")
    return restated


@pytest.mark.parametrize("path", TRAINING_CONFIGS, ids=lambda path: path.name)
def test_shipped_training_configs_are_valid_and_set_only_what_differs_from_the_defaults(path):
    parameters = yaml.safe_load(path.read_text())["parameters"]
    validated_parameters(training_pipeline, parameters)
    defaults = validated_parameters(training_pipeline, {})
    restated = [
        key
        for name, values in parameters.items()
        for key in defaults_restated(values, defaults[name], f"{name}.")
    ]
    assert restated == []  # a default is defined once, in stackport/core/settings.py


def test_the_shipped_deploy_config_is_valid_and_all_defaults():
    parameters = yaml.safe_load((CONFIGS / "deploy.yaml").read_text())["parameters"]
    validated = validated_sections(DEPLOY_SECTIONS, parameters, "deployment_pipeline")
    assert validated == validated_sections(DEPLOY_SECTIONS, {}, "deployment_pipeline")


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
    for problem in (
        "trainig: unknown section",
        "training.learning_rte: unknown key",
        "hpo.search_space.dropout: unknown key",
    ):
        assert problem in message
    assert "hpo.search_space.learning_rate" not in message


def test_an_invalid_value_names_its_field():
    with pytest.raises(ValueError, match="split.validation_fraction: Input should be less than 1"):
        validated_parameters(training_pipeline, {"split": {"validation_fraction": 2}})
