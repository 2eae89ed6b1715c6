"""The `parameters` of a YAML run configuration, checked against the settings a pipeline takes.

Every parameter of a pipeline is a settings model on the strict base of
`stackport.core.settings`. A configuration may leave a section (or a key) out, which then takes
its default; an unknown section or key, or an invalid value, is refused with every problem
named, so that a typo never silently falls back to a default.
"""

from __future__ import annotations

from typing import Any, get_type_hints

from pydantic import BaseModel, ValidationError
from zenml.pipelines.pipeline_definition import Pipeline


def settings_models(pipeline: Pipeline) -> dict[str, type[BaseModel]]:
    """The pipeline's parameters that are settings models, by name, in signature order."""
    hints = get_type_hints(pipeline.entrypoint)
    return {
        name: hint
        for name, hint in hints.items()
        if isinstance(hint, type) and issubclass(hint, BaseModel)
    }


def validated_sections(
    models: dict[str, type[BaseModel]], parameters: dict[str, Any], owner: str
) -> dict[str, BaseModel]:
    """Each section of `parameters` validated by its model; a section left out takes defaults.

    Args:
        models: The settings model of each section.
        parameters: The `parameters` mapping of a run configuration.
        owner: What the sections belong to, for the message (e.g. the pipeline's name).

    Raises:
        ValueError: Naming every unknown section or key (`data.sourc: unknown key`) and
            every invalid value, with pydantic's message.
    """
    problems = [f"{name}: unknown section" for name in parameters if name not in models]
    validated = {}
    for name, model in models.items():
        try:
            validated[name] = model.model_validate(parameters.get(name) or {})
        except ValidationError as error:
            problems += [_problem(name, detail) for detail in error.errors()]
    if problems:
        raise ValueError(
            "Invalid configuration: "
            + "; ".join(problems)
            + f". The sections of {owner} are: {', '.join(models)}."
        )
    return validated


def validated_parameters(pipeline: Pipeline, parameters: dict[str, Any]) -> dict[str, BaseModel]:
    """Each settings parameter of `pipeline`, validated from its section of `parameters`."""
    return validated_sections(settings_models(pipeline), parameters, pipeline.name)


def _problem(section: str, detail: dict[str, Any]) -> str:
    """One pydantic error as `section.key: what is wrong`."""
    key = ".".join([section, *(str(part) for part in detail["loc"])])
    if detail["type"] == "extra_forbidden":
        return f"{key}: unknown key"
    return f"{key}: {detail['msg']}"
