"""Write docs/configuration.md from the settings models (stackport/core/settings.py).

    .venv/bin/python docs/config_reference.py          # rewrite docs/configuration.md
    .venv/bin/python docs/config_reference.py --check  # exit 1 if it is out of date

The sections of a training configuration are the settings parameters of `training_pipeline`
(`pipelines.run_parameters.settings_models`); those of a deployment configuration are
`pipelines.deployment.DEPLOY_SECTIONS`. A key's meaning is its field's `description`, and
every field has one (`unexplained` lists those that do not). tests/test_docs.py fails when
the page differs from what this script writes, so the reference follows every settings change.
"""

from __future__ import annotations

import enum
import sys
import types
import typing
from pathlib import Path
from typing import Any

import annotated_types
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

REPO_ROOT = Path(__file__).resolve().parents[1]
PAGE = REPO_ROOT / "docs" / "configuration.md"


def train_sections() -> dict[str, type[BaseModel]]:
    """The sections of a training configuration: the settings parameters of the pipeline."""
    from pipelines.run_parameters import settings_models
    from pipelines.training import training_pipeline

    return settings_models(training_pipeline)


def deploy_sections() -> dict[str, type[BaseModel]]:
    """The sections of a deployment configuration, as `run_deployment` validates them."""
    from pipelines.deployment import ModelSelection
    from stackport.serving.local import DeploymentSettings
    from stackport.serving.served_model import ServiceSettings

    return {"model": ModelSelection, "service": ServiceSettings, "deployment": DeploymentSettings}


def monitor_sections() -> dict[str, type[BaseModel]]:
    """The sections of a monitoring configuration: the settings parameters of the pipeline."""
    from pipelines.monitoring import monitoring_pipeline
    from pipelines.run_parameters import settings_models

    return settings_models(monitoring_pipeline)


def nested_model(annotation: Any) -> type[BaseModel] | None:
    """The settings model a field holds (directly, not as one of a union), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


BOUNDS = {
    annotated_types.Ge: ("≥", "ge"),
    annotated_types.Gt: (">", "gt"),
    annotated_types.Le: ("≤", "le"),
    annotated_types.Lt: ("<", "lt"),
    annotated_types.MinLen: ("length ≥", "min_length"),
}


def type_name(annotation: Any) -> str:
    """A reader's name for a field's type."""
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        bounds = [
            f"{sign} {getattr(item, attribute)}"
            for item in annotation.__metadata__
            for kind, (sign, attribute) in BOUNDS.items()
            if isinstance(item, kind)
        ]
        return type_name(arguments[0]) + (f" ({', '.join(bounds)})" if bounds else "")
    if origin in (typing.Union, types.UnionType):
        names = [type_name(a) for a in arguments if a is not type(None)]
        return " or ".join(names) + (" or null" if type(None) in arguments else "")
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{getattr(a, 'value', a)}`" for a in arguments)
    if origin is list:
        return f"list of {type_name(arguments[0])}"
    if origin is dict:
        return f"mapping of {type_name(arguments[0])} to {type_name(arguments[1])}"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(f"`{member.value}`" for member in annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        fields = ", ".join(annotation.model_fields)
        return f"mapping ({fields})"
    return getattr(annotation, "__name__", str(annotation))


def constraints(field: FieldInfo) -> str:
    """The field's bounds, e.g. `≥ 1, ≤ 512`."""
    parts = []
    for item in field.metadata:
        for kind, (sign, attribute) in BOUNDS.items():
            if isinstance(item, kind):
                parts.append(f"{sign} {getattr(item, attribute)}")
    return ", ".join(parts)


def plain(value: Any) -> Any:
    """A value as YAML would hold it."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def inline(value: Any) -> str:
    """A value in YAML flow style, as a code span."""
    text = yaml.safe_dump(
        plain(value), default_flow_style=True, width=10_000, sort_keys=False
    ).strip()
    text = text.removesuffix("\n...").removesuffix("...").strip()
    return f"`{text}`"


def default_of(field: FieldInfo) -> Any:
    """What a key left out gets."""
    return field.get_default(call_default_factory=True)


def meaning(field: FieldInfo) -> str:
    """A key's meaning (its field's description), escaped for a table cell."""
    return (field.description or "").replace("|", "\\|").replace("\n", " ")


def rows(model: type[BaseModel], prefix: str) -> tuple[list[str], list[tuple[str, type]]]:
    """The table rows of a model's fields and the nested models to document after it."""
    lines = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    nested = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        kind = type_name(field.annotation)
        bounds = constraints(field)
        if bounds:
            kind += f", {bounds}"
        child = nested_model(field.annotation)
        if child is not None:
            nested.append((key, child))
            default = "see below"
        else:
            default = inline(default_of(field)) if not field.is_required() else "required"
        lines.append(f"| `{key}` | {kind} | {default} | {meaning(field)} |")
    return lines, nested


def section(heading: str, key: str, model: type[BaseModel]) -> list[str]:
    """A heading, the model's first docstring paragraph, its table, then nested models."""
    doc = (model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    lines, nested = rows(model, f"{key}.")
    out = [f"{heading} `{key}`", "", f"{doc} (`{model.__module__}.{model.__name__}`)", "", *lines]
    for child_key, child in nested:
        out += ["", *section("####", child_key, child)]
    return out


def unexplained() -> list[str]:
    """Keys without a meaning: fields with no description."""
    missing = []

    def visit(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            key = f"{prefix}{name}"
            if not meaning(field):
                missing.append(key)
            child = nested_model(field.annotation)
            if child is not None:
                visit(child, f"{key}.")

    for sections in (train_sections(), deploy_sections(), monitor_sections()):
        for name, model in sections.items():
            visit(model, f"{name}.")
    return missing


INTRO = """\
# Configuration reference

<!-- Generated by docs/config_reference.py from the settings models; do not edit by hand.
     Rewrite it with `.venv/bin/python docs/config_reference.py`; tests/test_docs.py checks it. -->

`run.py` reads a YAML run configuration: `configs/train.yaml` for `--pipeline train`,
`configs/deploy.yaml` for `--pipeline deploy`, `configs/monitor.yaml` for `--pipeline monitor`,
or the file given with `--config`. Each section of `parameters` is a settings model of
`stackport/core/settings.py`, and the defaults below are defined there and only there: the
shipped `train.yaml`, `deploy.yaml` and `monitor.yaml` set nothing (the
default runs are the defaults), `bbc-news.yaml` and `ner-conll2003.yaml` set only what differs.
A section or key left out takes its default; an unknown section or key, or an invalid value,
stops `run.py` before anything runs, naming each problem
(`Invalid configuration: data.sourc: unknown key; training.epochs: Input should be a valid
integer, ...`).

`run.py` options override the keys they name: `--data` (`data.source`), `--task`
(`data.task`), `--text-column`, `--label-column`, `--model` (`model.base_model`),
`--model-name` and `--model-version` (deploy: `model.name`, `model.version`; monitor:
`monitor.model_name`, `monitor.model_version`). `--no-cache` overrides `enable_cache`.

| key | type | default | meaning |
| --- | --- | --- | --- |
| `enable_cache` | bool | `true` | Reuse the outputs of steps whose inputs and code did not \
change (inputs by content: `load_data` always reads the source, and an unchanged source lets \
every later step come from the cache; code: the repository files each step runs). |
| `parameters` | mapping | `{}` | The sections below. |
"""


def render() -> str:
    """The whole page."""
    out = [INTRO]
    for title, sections in (
        ("Training: `--pipeline train`", train_sections()),
        ("Deployment: `--pipeline deploy`", deploy_sections()),
        ("Monitoring: `--pipeline monitor`", monitor_sections()),
    ):
        out += [f"## {title}", ""]
        for name, model in sections.items():
            out += [*section("###", name, model), ""]
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str]) -> int:
    """Write the page, or with `--check` only compare it."""
    sys.path.insert(0, str(REPO_ROOT))
    text = render()
    if "--check" in argv:
        if PAGE.read_text() != text:
            print(f"{PAGE} is out of date: run .venv/bin/python docs/config_reference.py")
            return 1
        return 0
    PAGE.write_text(text)
    print(f"Wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
