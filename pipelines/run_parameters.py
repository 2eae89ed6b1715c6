"""The `parameters` of a YAML run configuration, checked against the settings a pipeline takes.

Every parameter of a pipeline is a pydantic settings model. A configuration may leave a
section (or a key) out, which then takes its default; a key the settings do not know is
refused, so that a typo never silently falls back to a default.
"""

from __future__ import annotations

from typing import Any, get_type_hints

from pydantic import BaseModel
from zenml.pipelines.pipeline_definition import Pipeline


def settings_models(pipeline: Pipeline) -> dict[str, type[BaseModel]]:
    """The pipeline's parameters that are settings models, by name, in signature order."""
    hints = get_type_hints(pipeline.entrypoint)
    return {name: hint for name, hint in hints.items() if _is_settings_model(hint)}


def unknown_keys(model: type[BaseModel], values: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the keys of `values` (nested settings included) that `model` lacks."""
    unknown = []
    for key, value in values.items():
        field = model.model_fields.get(key)
        if field is None:
            unknown.append(f"{prefix}{key}")
        elif isinstance(value, dict) and _is_settings_model(field.annotation):
            unknown += unknown_keys(field.annotation, value, f"{prefix}{key}.")
    return unknown


def validated_parameters(pipeline: Pipeline, parameters: dict[str, Any]) -> dict[str, BaseModel]:
    """Each settings parameter of `pipeline`, validated from its section of `parameters`.

    Args:
        pipeline: The pipeline to run.
        parameters: The `parameters` mapping of a run configuration.

    Returns:
        One settings model per parameter; a section left out takes its defaults.

    Raises:
        ValueError: A section or key the settings do not know (all of them named), or an
            invalid value (pydantic's `ValidationError`, which names the field).
    """
    models = settings_models(pipeline)
    unknown = [name for name in parameters if name not in models]
    for name, values in parameters.items():
        if name in models and values:
            unknown += unknown_keys(models[name], values, f"{name}.")
    if unknown:
        raise ValueError(
            f"Unknown configuration keys: {', '.join(unknown)}. "
            f"The sections of {pipeline.name} are: {', '.join(models)}."
        )
    return {
        name: model.model_validate(parameters.get(name) or {}) for name, model in models.items()
    }


def _is_settings_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)
