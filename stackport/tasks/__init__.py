"""Tasks as plug-ins: one folder per task, found by its name.

`<task>/infer.py` defines `INFERENCE` (`stackport.core.plugins.TaskInference`: torch-free, so
that a bento can load it) and `<task>/train.py` defines `TRAINING` (`TaskTraining`). Adding a
task is adding a folder: the settings, the command line (`--task`), the pipelines, the ONNX
export and the service find it here. This module imports a task's modules only when asked for
them, so that the service never loads a training plug-in.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module

from stackport.core.plugins import TaskInference, TaskTraining
from stackport.core.tasks import known_task


@cache
def inference_plugin(task: str) -> TaskInference:
    """The inference plug-in of `task` (its `infer.py`'s `INFERENCE`).

    Raises:
        ValueError: No task folder has that name.
    """
    return import_module(f"{__name__}.{known_task(task)}.infer").INFERENCE


@cache
def training_plugin(task: str) -> TaskTraining:
    """The training plug-in of `task` (its `train.py`'s `TRAINING`).

    Raises:
        ValueError: No task folder has that name.
    """
    return import_module(f"{__name__}.{known_task(task)}.train").TRAINING
