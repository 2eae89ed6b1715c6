"""Register ZenML stacks defined in `stacks/<name>.yaml`, idempotently.

A definition names the stack and one component per type; it may also list custom flavors
(registered first), ZenML secrets (created from environment variables, never written in the
file) and groups of variables that are set together or not at all. Values reference
environment variables as `${NAME}` (required) or `${NAME:-default}` (optional); a key whose
value resolves to an empty string is left out.
"""

import argparse
import logging
import os
import re
from pathlib import Path
from typing import Any
from uuid import UUID

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from zenml.client import Client
from zenml.enums import StackComponentType
from zenml.models import ComponentResponse, FlavorUpdate
from zenml.stack import Flavor
from zenml.stack.utils import validate_stack_component_config
from zenml.utils import source_utils

STACKS_DIR = Path(__file__).resolve().parent
DEFAULT_ENV_FILE = STACKS_DIR.parent / "config.env"
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}")
_REQUIRED_TYPES = {StackComponentType.ORCHESTRATOR, StackComponentType.ARTIFACT_STORE}

logger = logging.getLogger(__name__)


class ComponentDefinition(BaseModel):
    """A stack component: its name, flavor and configuration."""

    model_config = ConfigDict(extra="forbid")

    name: str
    flavor: str
    configuration: dict[str, Any] = Field(default_factory=dict)


class StackDefinition(BaseModel):
    """A stack: its name, one component per component type and what the components need.

    Attributes:
        name: The stack's name.
        flavors: Source paths of custom flavor classes, registered before the components.
        secrets: ZenML secrets by name, each a mapping of keys to values.
        set_together: Groups of environment variables that are all set or all unset.
        components: The components by type.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    flavors: list[str] = Field(default_factory=list)
    secrets: dict[str, dict[str, str]] = Field(default_factory=dict)
    set_together: list[list[str]] = Field(default_factory=list)
    components: dict[StackComponentType, ComponentDefinition]

    @model_validator(mode="after")
    def _has_required_components(self) -> "StackDefinition":
        missing = sorted(str(kind) for kind in _REQUIRED_TYPES - set(self.components))
        if missing:
            raise ValueError(f"stack '{self.name}' has no {' and no '.join(missing)}")
        return self


class MissingEnvironmentVariablesError(ValueError):
    """A stack definition references environment variables that are unset or empty."""

    def __init__(self, source: Path, names: list[str], groups: list[list[str]]) -> None:
        self.names = names
        message = f"{source} references environment variables that are unset or empty: "
        message += ", ".join(names)
        message += "".join(f"\n  ({', '.join(group)}: all or none)" for group in groups)
        super().__init__(message)


class InvalidComponentsError(ValueError):
    """Stack component configurations that ZenML refuses."""


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
        resolved = {key: _substitute(item, missing) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item != ""}
    if isinstance(value, list):
        return [_substitute(item, missing) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        name, optional, default = match.groups()
        resolved = os.environ.get(name)
        if resolved:
            return resolved
        if optional is not None:
            return default
        missing.add(name)
        return match.group(0)

    return _ENV_REFERENCE.sub(replace, value)


def _incomplete_groups(groups: list[list[str]]) -> list[list[str]]:
    """The groups of which some variables are set and others are not."""
    return [group for group in groups if len({bool(os.environ.get(name)) for name in group}) > 1]


def load_env_file(path: Path) -> None:
    """Set the `KEY=VALUE` lines of a settings file as environment variables.

    Variables the environment already sets keep their values; an empty value sets nothing.
    Blank lines and `#` comments are skipped; a value may be quoted.

    Args:
        path: The settings file, e.g. `config.env`.
    """
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, separator, value = line.removeprefix("export ").partition("=")
        if not separator or not key.strip():
            raise ValueError(f"{path}:{number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) > 1 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if value:
            os.environ.setdefault(key.strip(), value)


def load_stack_definition(name_or_path: str | Path) -> StackDefinition:
    """Load a stack definition, substituting environment variables in configurations and secrets.

    Args:
        name_or_path: A stack name, resolved to `stacks/<name>.yaml`, or a path to a YAML file.

    Returns:
        The definition, with every environment variable reference resolved.

    Raises:
        MissingEnvironmentVariablesError: Listing every required variable unset or empty and
            every variable missing from a group of which some are set.
    """
    path = _definition_path(name_or_path)
    definition = StackDefinition.model_validate(yaml.safe_load(path.read_text()))
    missing: set[str] = set()
    for component in definition.components.values():
        component.configuration = _substitute(component.configuration, missing)
    definition.secrets = _substitute(definition.secrets, missing)
    incomplete = _incomplete_groups(definition.set_together)
    missing.update(name for group in incomplete for name in group if not os.environ.get(name))
    if missing:
        raise MissingEnvironmentVariablesError(path, sorted(missing), incomplete)
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


def _reason(error: ValueError) -> str:
    """The messages of a validation error, without the input values pydantic repeats."""
    if isinstance(error, ValidationError):
        return "; ".join(detail["msg"] for detail in error.errors())
    return str(error)


def register_flavor(source: str) -> str:
    """Create or update a custom flavor so that it matches its class.

    Args:
        source: Import path of the flavor class, e.g.
            `stacks.azureml_mlflow.AzureMLMLflowTrackerFlavor`.

    Returns:
        The flavor name.

    Raises:
        FlavorChangeError: If a built-in flavor of the same type has the name.
    """
    flavor: Flavor = source_utils.load(source)()
    request = flavor.to_model(integration="custom", is_custom=True)
    client = Client()
    registered = client.list_flavors(name=flavor.name, type=flavor.type).items
    if any(not found.is_custom for found in registered):
        raise FlavorChangeError(f"{flavor.type} flavor '{flavor.name}' is a built-in flavor.")
    if not registered:
        client.create_flavor(source=source, component_type=flavor.type)
        action = "Created"
    elif (registered[0].source, registered[0].config_schema) == (
        request.source,
        request.config_schema,
    ):
        action = "Unchanged"
    else:
        update = FlavorUpdate(**request.model_dump(include=set(FlavorUpdate.model_fields)))
        client.zen_store.update_flavor(registered[0].id, update)
        action = "Updated"
    logger.info("%s %s flavor '%s'.", action, flavor.type, flavor.name)
    return flavor.name


def register_secret(name: str, values: dict[str, str]) -> str:
    """Create or update a ZenML secret so that it holds exactly these values.

    Args:
        name: The secret's name.
        values: Its keys and values; only the keys are logged.

    Returns:
        The secret name.
    """
    client = Client()
    try:
        existing = client.get_secret(
            name, allow_partial_name_match=False, allow_partial_id_match=False
        )
    except KeyError:
        client.create_secret(name, values)
        action = "Created"
    else:
        if existing.secret_values == values:
            action = "Unchanged"
        else:
            removed = [key for key in existing.secret_values if key not in values]
            client.update_secret(existing.id, add_or_update_values=values, remove_values=removed)
            action = "Updated"
    logger.info("%s secret '%s' (keys: %s).", action, name, ", ".join(sorted(values)))
    return name


def register_stack(definition: StackDefinition) -> str:
    """Create or update the stack, its flavors, secrets and components to match the definition.

    Custom flavors are registered first, as the components' validation needs them. Every
    component is validated before a secret, component or the stack is written; those that
    already match are left untouched.

    Args:
        definition: The stack to register.

    Returns:
        The stack name.

    Raises:
        FlavorChangeError: If a registered component has another flavor than its definition.
        InvalidComponentsError: Listing every component whose configuration ZenML refuses.
    """
    for source in definition.flavors:
        register_flavor(source)
    client = Client()
    plans = []
    invalid = []
    for component_type, component in definition.components.items():
        try:
            configuration = _stored_configuration(component_type, component)
        except ValueError as error:
            invalid.append(f"{component_type} '{component.name}': {_reason(error)}")
            continue
        existing = _find_component(client, component_type, component.name)
        if existing is not None and existing.flavor_name != component.flavor:
            raise FlavorChangeError(
                f"{component_type} '{component.name}' is registered with flavor "
                f"'{existing.flavor_name}', not '{component.flavor}'. ZenML cannot change a "
                "component's flavor: rename the component in the definition, or delete it "
                f"(`zenml {component_type.value.replace('_', '-')} delete {component.name}`)."
            )
        plans.append((component_type, component, configuration, existing))
    if invalid:
        raise InvalidComponentsError(
            f"Stack '{definition.name}' has invalid components:\n  " + "\n  ".join(invalid)
        )

    for name, values in definition.secrets.items():
        register_secret(name, values)

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
    parser.add_argument(
        "--env-file",
        type=Path,
        default=DEFAULT_ENV_FILE,
        help="KEY=VALUE settings for variables the environment does not set; ignored when "
        "absent (default: config.env)",
    )
    args = parser.parse_args(argv)
    logger.setLevel(logging.INFO)
    try:
        if args.env_file.is_file():
            load_env_file(args.env_file)
        print(f"Active stack: {activate_stack(args.stack)}")
    except (FileNotFoundError, ValueError) as error:
        parser.exit(1, f"error: {error}\n")


if __name__ == "__main__":
    main()
