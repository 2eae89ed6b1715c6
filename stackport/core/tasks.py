"""The tasks Stackport trains models for: one folder each under `stackport/tasks/`.

A task's name is its folder's name. This module only lists the folders, without importing
them, so that the settings and the command line can check a task name without loading torch;
`stackport.tasks` loads a task's plug-ins.
"""

from __future__ import annotations

import pkgutil
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator

TASKS_DIRECTORY = Path(__file__).resolve().parents[1] / "tasks"
DEFAULT_TASK = "classification"


def task_names() -> list[str]:
    """The tasks: the packages under `stackport/tasks/`, sorted."""
    return sorted(
        module.name for module in pkgutil.iter_modules([str(TASKS_DIRECTORY)]) if module.ispkg
    )


def known_task(name: str) -> str:
    """`name`, if it names a task.

    Raises:
        ValueError: No folder of `stackport/tasks/` has that name; the message lists them.
    """
    names = task_names()
    if name not in names:
        raise ValueError(f"unknown task {name!r}: the tasks are {', '.join(names)}")
    return name


Task = Annotated[str, AfterValidator(known_task)]
"""A task name, checked against the task folders."""
