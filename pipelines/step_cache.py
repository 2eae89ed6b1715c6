"""Cache keys that follow the code a step runs, not only the step's own function.

ZenML's cache key holds a step's own source, its parameters and its inputs' content. A step
here is a few lines over library functions, so a changed trainer, exporter or service would
leave the key as it was and a re-run would reuse what the old code made. Each cacheable step
therefore lists the repository's files it runs as the policy's `file_dependencies`, whose
contents ZenML hashes into the key: a changed file re-runs the steps that run it.

The task registry (`stackport/tasks/__init__.py`) imports a task's plug-ins by name, not by
an import statement; a step that reaches it is taken to run every task's plug-ins (the
cache policy is fixed before the run knows its task). So a change to any task's code re-runs
the steps of every task, and a change to a module every step imports (the settings) re-runs
every step: never a stale result, at the cost of some re-runs.
"""

from pathlib import Path

from zenml.config import CachePolicy

from stackport.core.sources import LIBRARY_PACKAGE, local_sources
from stackport.core.tasks import task_names

# The repository's packages a step's imports are followed into.
REPOSITORY_PACKAGES = (LIBRARY_PACKAGE, "steps", "pipelines", "materializers")
TASK_REGISTRY = Path(LIBRARY_PACKAGE, "tasks", "__init__.py")
PLUG_IN_MODULES = ("infer", "train")


def step_sources(entry_modules: list[str]) -> list[Path]:
    """The repository's files that `entry_modules` run: imported, or loaded as task plug-ins."""
    sources = local_sources(entry_modules, REPOSITORY_PACKAGES)
    if TASK_REGISTRY not in sources:
        return sources
    plug_ins = [
        f"{LIBRARY_PACKAGE}.tasks.{task}.{half}"
        for task in task_names()
        for half in PLUG_IN_MODULES
    ]
    return sorted({*sources, *local_sources(plug_ins, REPOSITORY_PACKAGES)})


def code_cache_policy(step_module: str, *more_entry_modules: str) -> CachePolicy:
    """ZenML's default cache policy, plus the files `step_module` runs, transitively.

    Args:
        step_module: The step's module (`__name__` in it).
        more_entry_modules: Modules the step runs without importing them (e.g. a bento's
            service, which the bento build imports in a process of its own).
    """
    sources = step_sources([step_module, *more_entry_modules])
    return CachePolicy(file_dependencies=[path.as_posix() for path in sources])
