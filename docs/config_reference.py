"""Write docs/configuration.md from the settings models behind configs/train.yaml and deploy.yaml.

    .venv/bin/python docs/config_reference.py          # rewrite docs/configuration.md
    .venv/bin/python docs/config_reference.py --check  # exit 1 if it is out of date

The sections of `configs/train.yaml` are the settings parameters of `training_pipeline`
(`pipelines.run_parameters.settings_models`); those of `configs/deploy.yaml` are the models
`run_deployment` validates them with. A key's meaning is the field's `description`, else
`FALLBACK` below, else the comment on its line in the YAML file. tests/test_docs.py fails when
the page differs from what this script writes, so the reference follows every settings change.
"""

from __future__ import annotations

import enum
import re
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
TRAIN_CONFIG = REPO_ROOT / "configs" / "train.yaml"
DEPLOY_CONFIG = REPO_ROOT / "configs" / "deploy.yaml"

# Meanings of fields that have neither a description nor a comment in the YAML file.
FALLBACK = {
    "data.text_column": "Column holding the text (`ner`: the token list). `--text-column`.",
    "data.label_column": "Column holding the label (`multilabel`: labels; `ner`: tags).",
    "data.task": "What to train: `classification`, `multilabel` or `ner`. `--task`.",
    "validation.min_classes": "Fewest distinct labels (`ner`: entity types).",
    "validation.min_examples_per_class": "Fewest examples of each label (`ner`: mentions).",
    "validation.min_text_chars": "Shortest text, in characters (not for `ner`).",
    "validation.max_text_chars": "Longest text, in characters (not for `ner`).",
    "validation.labels": "The declared label set (`ner`: entity types); null: any labels.",
    "split.validation_fraction": "Share of the data carved out for validation.",
    "split.test_fraction": "Share of the data carved out for test.",
    "split.seed": "Seed of the split.",
    "model.description": "Description of the model in the Model Control Plane.",
    "model.tags": "Tags of the model in the Model Control Plane.",
    "training.learning_rate": "Peak learning rate (AdamW, linear decay after warm-up).",
    "training.batch_size": "Training batch size.",
    "training.epochs": "Most epochs; early stopping may end sooner.",
    "training.weight_decay": "AdamW weight decay.",
    "training.warmup_ratio": "Share of the steps spent warming the learning rate up.",
    "training.early_stopping_patience": "Epochs without a better selection metric before stopping.",
    "training.seed": "Seed of initialisation, shuffling and dropout.",
    "hpo.seed": "Seed of the TPE sampler (a resumed study adds its trial count).",
    "hpo.study_name": "Name of the Optuna study; a study of this name in `storage` resumes.",
    "hpo.pruner": "`hyperband`, `successive_halving`, `median`, `threshold` or `none`.",
    "hpo.search_space": "What the trials vary (below).",
    "hpo.search_space.learning_rate": "Range of `training.learning_rate`.",
    "hpo.search_space.batch_size": "Choices of `training.batch_size`.",
    "hpo.search_space.weight_decay": "Range of `training.weight_decay`.",
    "hpo.search_space.warmup_ratio": "Range of `training.warmup_ratio`.",
    "hpo.search_space.epochs": "Range of `training.epochs`; null: not searched.",
    "quantization.mode": "`dynamic-int8`, or `static-int8` calibrated on training texts.",
    "quantization.weight_type": "`QInt8` or `QUInt8` weights.",
    "service.batching": "Adaptive batching (below).",
    "service.limits": "Request limits (below).",
    "deployment.host": "Interface the local server listens on.",
    "deployment.port": "Port of the local server.",
}


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


def yaml_comments(path: Path) -> dict[str, str]:
    """The comment at the end of each key's line, by dotted key (`parameters.` left out)."""
    comments, stack = {}, []
    for line in path.read_text().splitlines():
        match = re.match(r"^(\s*)([A-Za-z_][\w-]*):(.*)$", line)
        if not match:
            continue
        indent, key, rest = len(match[1]), match[2], match[3]
        stack = [(level, name) for level, name in stack if level < indent]
        stack.append((indent, key))
        if " #" in rest and not rest.strip().startswith("#"):
            names = [name for _, name in stack]
            if names[0] == "parameters":
                names = names[1:]
            comments[".".join(names)] = rest.split(" #", 1)[1].strip()
    return comments


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


def meaning(key: str, field: FieldInfo, comments: dict[str, str]) -> str:
    """A key's meaning, escaped for a table cell."""
    text = field.description or FALLBACK.get(key) or comments.get(key, "")
    return text.replace("|", "\\|").replace("\n", " ")


def rows(
    model: type[BaseModel],
    prefix: str,
    configured: Any,
    comments: dict[str, str],
    config_name: str,
) -> tuple[list[str], list[tuple[str, type[BaseModel], Any]]]:
    """The table rows of a model's fields and the nested models to document after it."""
    lines = [
        f"| key | type | default | `{config_name}` | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    nested = []
    configured = configured if isinstance(configured, dict) else {}
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        kind = type_name(field.annotation)
        bounds = constraints(field)
        if bounds:
            kind += f", {bounds}"
        child = nested_model(field.annotation)
        if child is not None:
            nested.append((key, child, configured.get(name)))
            default = "see below"
        else:
            default = inline(default_of(field)) if not field.is_required() else "required"
        if name not in configured:
            value = "—"
        elif child is not None and isinstance(configured[name], dict):
            value = "see below"
        else:
            value = inline(configured[name])
        lines.append(
            f"| `{key}` | {kind} | {default} | {value} | {meaning(key, field, comments)} |"
        )
    return lines, nested


def section(
    heading: str,
    key: str,
    model: type[BaseModel],
    configured: Any,
    comments: dict[str, str],
    config_name: str,
) -> list[str]:
    """A heading, the model's first docstring paragraph, its table, then nested models."""
    doc = (model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    lines, nested = rows(model, f"{key}.", configured, comments, config_name)
    out = [f"{heading} `{key}`", "", f"{doc} (`{model.__module__}.{model.__name__}`)", "", *lines]
    for child_key, child, child_configured in nested:
        out += ["", *section("####", child_key, child, child_configured, comments, config_name)]
    return out


def unexplained() -> list[str]:
    """Keys whose meaning is nowhere: no description, no YAML comment, no fallback."""
    missing = []
    for path, sections in ((TRAIN_CONFIG, train_sections()), (DEPLOY_CONFIG, deploy_sections())):
        comments = yaml_comments(path)

        def visit(model: type[BaseModel], prefix: str, comments=comments, path=path) -> None:
            for name, field in model.model_fields.items():
                key = f"{prefix}{name}"
                if not meaning(key, field, comments):
                    missing.append(f"{path.name}: {key}")
                child = nested_model(field.annotation)
                if child is not None:
                    visit(child, f"{key}.")

        for name, model in sections.items():
            visit(model, f"{name}.")
    return missing


INTRO = """\
# Configuration reference

<!-- Generated by docs/config_reference.py from the settings models; do not edit by hand.
     Rewrite it with `.venv/bin/python docs/config_reference.py`; tests/test_docs.py checks it. -->

`run.py` reads a YAML run configuration: `configs/train.yaml` for `--pipeline train`,
`configs/deploy.yaml` for `--pipeline deploy`, or the file given with `--config`. Each section
of `parameters` is a pydantic settings model. A section or key left out takes the default
below; a key the settings do not know stops `run.py` before anything runs, naming it
(`Unknown configuration keys: data.sourc. The sections of training_pipeline are: ...`); an
invalid value stops it with pydantic's message naming the field.

`run.py` options override the keys they name: `--data` (`data.source`), `--task`
(`data.task`), `--text-column`, `--label-column`, `--model` (`model.base_model`) and
`--model-version` (deploy: `model.version`). `--no-cache` overrides `enable_cache`.

The *default* column is what a key left out gets; the next column is the value the shipped
file sets (— when it leaves the key out).

| key | type | default | meaning |
| --- | --- | --- | --- |
| `enable_cache` | bool | `true` | Reuse the outputs of steps whose inputs did not change \
(`load_data` never caches). |
| `parameters` | mapping | `{}` | The sections below. |
"""


def render() -> str:
    """The whole page."""
    out = [INTRO]
    for title, path, sections in (
        ("Training: `configs/train.yaml`", TRAIN_CONFIG, train_sections()),
        ("Deployment: `configs/deploy.yaml`", DEPLOY_CONFIG, deploy_sections()),
    ):
        parameters = yaml.safe_load(path.read_text()).get("parameters", {})
        comments = yaml_comments(path)
        out += [f"## {title}", ""]
        for name, model in sections.items():
            configured = parameters.get(name)
            out += [*section("###", name, model, configured, comments, path.name), ""]
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
