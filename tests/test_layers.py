"""The library's layers, as docs/architecture.md draws them, checked on its import statements.

Every `import` of every module of `stackport/` is read from its syntax tree (imports under
`if TYPE_CHECKING:` are type annotations only and are left out). A layer may import the
layers below it and never one above; no module imports ZenML or the top-level packages
(steps, pipelines, materializers, stacks); the layers a bento and an AzureML scoring
environment run never import torch or transformers; and the module graph has no cycle.
"""

from __future__ import annotations

import graphlib
from pathlib import Path

import pytest

from stackport.core.sources import runtime_imports
from stackport.core.tasks import task_names
from stackport.tasks import inference_plugin, training_plugin

LIBRARY = Path(__file__).resolve().parents[1] / "stackport"
# Each layer and the layers it may import (besides itself). A task's modules form the layers
# "task infer" (the torch-free half) and "task train"; a task imports no other task.
ALLOWED = {
    "core": set(),
    "data": {"core"},
    "evaluation": {"core"},
    "tasks": {"core"},
    "task infer": {"core"},
    "inference": {"core", "tasks"},
    "task train": {"core", "data", "evaluation", "inference", "task infer"},
    "training": {"core", "data", "evaluation", "inference", "tasks"},
    "onnx": {"core", "data", "evaluation", "inference", "tasks", "training"},
    "release": {"core", "data", "evaluation", "inference", "tasks", "training", "onnx"},
    "serving": {"core", "inference", "tasks"},
    "monitoring": {"core", "inference", "tasks", "serving"},
}
TORCH_FREE = {"core", "tasks", "task infer", "inference", "serving"}
HEAVY = {"torch", "transformers", "optimum", "zenml"}
OUTSIDE = {"steps", "pipelines", "materializers", "stacks", "run", "zenml"}


def module_name(path: Path) -> str:
    parts = path.relative_to(LIBRARY.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    """The layer of a module of the library (`stackport.tasks.ner.infer` → `task infer`)."""
    parts = module.split(".")
    if len(parts) == 1:
        return "stackport"
    if parts[1] == "tasks" and len(parts) > 2:
        return "task train" if parts[-1] == "train" else "task infer"
    return parts[1]


MODULES = {module_name(path): path for path in sorted(LIBRARY.rglob("*.py"))}


def library_imports(module: str) -> set[str]:
    """The library's modules (not names inside them) that a module imports."""
    imported = runtime_imports(MODULES[module].read_text())
    return {name for name in imported if name in MODULES} - {module}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_layer_imports_only_the_layers_below_it(module):
    source = layer(module)
    for imported in library_imports(module):
        target = layer(imported)
        if target in ("stackport", source) and target != "task infer":
            continue
        assert target in ALLOWED.get(source, set()), f"{module} ({source}) imports {imported}"
        if {source, target} <= {"task infer", "task train"}:
            assert imported.split(".")[2] == module.split(".")[2], f"{module} imports {imported}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_the_library_imports_no_zenml_and_nothing_of_the_pipelines(module):
    roots = {name.split(".")[0] for name in runtime_imports(MODULES[module].read_text())}
    assert not roots & OUTSIDE, f"{module} imports {sorted(roots & OUTSIDE)}"


@pytest.mark.parametrize(
    "module", sorted(module for module in MODULES if layer(module) in TORCH_FREE)
)
def test_what_a_bento_runs_never_imports_torch_or_transformers(module):
    roots = {name.split(".")[0] for name in runtime_imports(MODULES[module].read_text())}
    assert not roots & HEAVY, f"{module} imports {sorted(roots & HEAVY)}"


def test_the_modules_import_each_other_without_a_cycle():
    graph = {module: library_imports(module) for module in MODULES}
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError naming the cycle


def test_a_task_is_one_folder_with_both_plug_ins_and_nothing_else_names_it():
    folders = sorted(
        path.name
        for path in (LIBRARY / "tasks").iterdir()
        if path.is_dir() and (path / "__init__.py").is_file()
    )
    assert task_names() == folders == ["classification", "multilabel", "ner"]
    for task in folders:
        assert inference_plugin(task).export_task
        assert training_plugin(task).selection_metric
    # Outside its folder, only the default and the bundled data sets (whose labels are of a
    # task) name a task.
    for module, path in MODULES.items():
        if layer(module) in ("task infer", "task train"):
            continue
        text = path.read_text()
        for task in folders:
            if f'"{task}"' in text:
                assert module in ("stackport.core.tasks", "stackport.data.bundled"), (module, task)
