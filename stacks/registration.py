"""Register ZenML stacks defined in `stacks/<name>.yaml`, idempotently."""

import argparse
import logging
import os
import re
from pathlib import Path
from typing import Any
from uuid import UUID

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from zenml.client import Client
from zenml.enums import StackComponentType
from zenml.models import ComponentResponse
from zenml.stack.utils import validate_stack_component_config

STACKS_DIR = Path(__file__).resolve().parent
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_REQUIRED_TYPES = {StackComponentType.ORCHESTRATOR, StackComponentType.ARTIFACT_STORE}

logger = logging.getLogger(__name__)


class ComponentDefinition(BaseModel):
    """A stack component: its name, flavor and configuration."""

    model_config = ConfigDict(extra="forbid")

    name: str
    flavor: str
    configuration: dict[str, Any] = Field(default_factory=dict)


class StackDefinition(BaseModel):
    """A stack: its name and one component per component type."""

    model_config = ConfigDict(extra="forbid")

    name: str
    components: dict[StackComponentType, ComponentDefinition]

    @model_validator(mode="after")
    def _has_required_components(self) -> "StackDefinition":
        missing = sorted(str(kind) for kind in _REQUIRED_TYPES - set(self.components))
        if missing:
            raise ValueError(f"stack '{self.name}' has no {' and no '.join(missing)}")
        return self


class MissingEnvironmentVariablesError(ValueError):
    """A stack definition references environment variables that are unset or empty."""

    def __init__(self, source: Path, names: list[str]) -> None:
        self.names = names
        super().__init__(
            f"{source} references environment variables that are unset or empty: "
            + ", ".join(names)
        )


class FlavorChangeError(ValueError):
    """A registered component has another flavor than its definition."""


def defined_stack_names() -> list[str]:
    """Names of the stacks defined under `stacks/`."""
    return sorted(path.stem for path in STACKS_DIR.glob("*.yaml"))


def _definition_path(name_or_path: str | Path) -> Path:
    if isinstance(name_or_path, Path) or name_or_path.endswith((".yaml", ".yml")):
        return Path(name_or_path)
    path = STACKS_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(defined_stack_names())
        raise FileNotFoundError(f"No stack definition {path} (known stacks: {known}).")
    return path


def _substitute(value: Any, missing: set[str]) -> Any:
    if isinstance(value, dict):
        return {key: _substitute(item, missing) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, missing) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        resolved = os.environ.get(match.group(1))
        if not resolved:
            missing.add(match.group(1))
            return match.group(0)
        return resolved

    return _ENV_REFERENCE.sub(replace, value)


def load_stack_definition(name_or_path: str | Path) -> StackDefinition:
    """Load a stack definition, substituting `${VAR}` in component configurations.

    Args:
        name_or_path: A stack name, resolved to `stacks/<name>.yaml`, or a path to a YAML file.

    Returns:
        The definition, with every environment variable reference resolved.

    Raises:
        MissingEnvironmentVariablesError: Listing every referenced variable unset or empty.
    """
    path = _definition_path(name_or_path)
    definition = StackDefinition.model_validate(yaml.safe_load(path.read_text()))
    missing: set[str] = set()
    for component in definition.components.values():
        component.configuration = _substitute(component.configuration, missing)
    if missing:
        raise MissingEnvironmentVariablesError(path, sorted(missing))
    return definition


def _find_component(
    client: Client, component_type: StackComponentType, name: str
) -> ComponentResponse | None:
    try:
        return client.get_stack_component(component_type, name, allow_name_prefix_match=False)
    except KeyError:
        return None


def _stored_configuration(
    component_type: StackComponentType, component: ComponentDefinition
) -> dict[str, Any]:
    """The configuration as ZenML would store it: validated, JSON-typed, unset keys dropped."""
    config = validate_stack_component_config(
        component.configuration, flavor=component.flavor, component_type=component_type
    )
    return config.model_dump(mode="json", exclude_unset=True)


def register_stack(definition: StackDefinition) -> str:
    """Create or update the stack and its components so that they match the definition.

    Components whose flavor and configuration already match are left untouched. Every
    component is validated before anything is written.

    Args:
        definition: The stack to register.

    Returns:
        The stack name.

    Raises:
        FlavorChangeError: If a registered component has another flavor than its definition.
    """
    client = Client()
    plans = []
    for component_type, component in definition.components.items():
        configuration = _stored_configuration(component_type, component)
        existing = _find_component(client, component_type, component.name)
        if existing is not None and existing.flavor_name != component.flavor:
            raise FlavorChangeError(
                f"{component_type} '{component.name}' is registered with flavor "
                f"'{existing.flavor_name}', not '{component.flavor}'. ZenML cannot change a "
                "component's flavor: rename the component in the definition, or delete it "
                f"(`zenml {component_type.value.replace('_', '-')} delete {component.name}`)."
            )
        plans.append((component_type, component, configuration, existing))

    changed = False
    component_ids: dict[StackComponentType, UUID] = {}
    for component_type, component, configuration, existing in plans:
        if existing is None:
            existing = client.create_stack_component(
                component.name, component.flavor, component_type, configuration
            )
            action = "Created"
        elif existing.configuration == configuration:
            action = "Unchanged"
        else:
            # ZenML merges updates into the stored configuration; `None` deletes a key.
            dropped = {key: None for key in existing.configuration if key not in configuration}
            existing = client.update_stack_component(
                existing.id, component_type, configuration={**dropped, **configuration}
            )
            action = "Updated"
        changed |= action != "Unchanged"
        component_ids[component_type] = existing.id
        logger.info("%s %s '%s' (%s).", action, component_type, component.name, component.flavor)

    try:
        stack = client.get_stack(definition.name, allow_name_prefix_match=False)
    except KeyError:
        client.create_stack(definition.name, components=component_ids)
        action = "Created"
    else:
        current = {kind: [c.id for c in found] for kind, found in stack.components.items() if found}
        if current == {kind: [id_] for kind, id_ in component_ids.items()} and not changed:
            action = "Unchanged"
        else:
            # Also after a component-only change: ZenML caches stacks in-process by the stack's
            # `updated` timestamp, which a component update does not touch.
            removed = {kind: [] for kind in current if kind not in component_ids}
            client.update_stack(stack.id, component_updates={**removed, **component_ids})
            action = "Updated"
    logger.info("%s stack '%s'.", action, definition.name)
    return definition.name


def activate_stack(name_or_path: str | Path) -> str:
    """Register a stack definition and make it the active stack.

    Args:
        name_or_path: A stack name, resolved to `stacks/<name>.yaml`, or a path to a YAML file.

    Returns:
        The stack name.
    """
    name = register_stack(load_stack_definition(name_or_path))
    Client().activate_stack(name)
    return name


def main(argv: list[str] | None = None) -> None:
    """Register and activate a stack from the command line.

    Args:
        argv: Command-line arguments; `sys.argv` when None.
    """
    parser = argparse.ArgumentParser(
        prog="python -m stacks.registration", description="Register and activate a stack."
    )
    parser.add_argument(
        "stack", nargs="?", default="local", help="stack name (stacks/<name>.yaml) or YAML path"
    )
    args = parser.parse_args(argv)
    logger.setLevel(logging.INFO)
    try:
        print(f"Active stack: {activate_stack(args.stack)}")
    except (FileNotFoundError, ValueError) as error:
        parser.exit(1, f"error: {error}\n")


if __name__ == "__main__":
    main()
