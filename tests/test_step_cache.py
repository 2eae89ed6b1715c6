"""Cache keys that follow the code a step runs: ZenML's own key function over our policies."""

import importlib
import shutil
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from zenml.orchestrators import cache_utils

from pipelines.step_cache import REPOSITORY_PACKAGES
from stackport.core.sources import REPO_ROOT, local_sources

STEPS = {
    path.stem: getattr(importlib.import_module(f"steps.{path.stem}"), path.stem)
    for path in sorted((REPO_ROOT / "steps").glob("*.py"))
    if path.stem != "__init__"
}
CACHED = sorted(
    name for name, step in STEPS.items() if step.configuration.enable_cache is not False
)


def cache_keys(root: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Each cacheable step's key with the repository at `root`, no inputs or parameters.

    ZenML computes the key from the compiled step; only the parts of it that these steps'
    keys read are given here.
    """
    monkeypatch.setattr(cache_utils.source_utils, "get_source_root", lambda: str(root))
    store = SimpleNamespace(id=uuid.UUID(int=1), path="/artifacts", custom_cache_key=None)
    keys = {}
    for name in CACHED:
        config = STEPS[name].configuration
        step = SimpleNamespace(
            config=SimpleNamespace(
                cache_policy=config.cache_policy,
                parameters={},
                outputs={},
                caching_parameters={},
                environment={},
                secrets=[],
            ),
            spec=SimpleNamespace(source=SimpleNamespace(import_path=f"steps.{name}.{name}")),
        )
        keys[name] = cache_utils.generate_cache_key(step, {}, store, uuid.UUID(int=2))
    return keys


@pytest.fixture
def repository_copy(tmp_path: Path) -> Path:
    for package in REPOSITORY_PACKAGES:
        shutil.copytree(
            REPO_ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return tmp_path


def changed_steps(root: Path, edited: str, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The steps whose keys change when a byte is appended to the file `edited`."""
    before = cache_keys(root, monkeypatch)
    assert cache_keys(root, monkeypatch) == before
    path = root / edited
    path.write_bytes(path.read_bytes() + b"\n")
    after = cache_keys(root, monkeypatch)
    return {name for name in CACHED if after[name] != before[name]}


def test_every_step_caches_on_the_files_it_runs_or_never_caches():
    assert {"train_model", "build_bento", "split_data"} <= set(CACHED)
    assert {"load_data", "register_model", "promote_model", "deploy_bento"}.isdisjoint(CACHED)
    for name in CACHED:
        files = STEPS[name].configuration.cache_policy.file_dependencies
        assert f"steps/{name}.py" in files, name
        assert all((REPO_ROOT / file).is_file() for file in files), name


def test_a_changed_trainer_re_runs_the_steps_that_train_and_no_others(
    repository_copy: Path, monkeypatch: pytest.MonkeyPatch
):
    changed = changed_steps(repository_copy, "stackport/training/trainer.py", monkeypatch)
    assert {"search_hyperparameters", "train_model"} <= changed
    assert changed.isdisjoint({"validate_data", "split_data", "tokenize_data", "build_bento"})


def test_changed_service_code_re_runs_only_the_bento_build(
    repository_copy: Path, monkeypatch: pytest.MonkeyPatch
):
    changed = changed_steps(repository_copy, "stackport/serving/service.py", monkeypatch)
    assert changed == {"build_bento"}


def test_a_task_plug_in_loaded_by_name_counts_for_the_steps_that_reach_the_registry(
    repository_copy: Path, monkeypatch: pytest.MonkeyPatch
):
    changed = changed_steps(repository_copy, "stackport/tasks/ner/infer.py", monkeypatch)
    assert {"split_data", "train_model", "convert_model", "build_bento"} <= changed


def test_the_walk_follows_imports_but_not_annotations_nor_other_packages(tmp_path: Path):
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "sub" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "entry.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "import json\n"
        "from pkg.sub import deep\n"
        "if TYPE_CHECKING:\n"
        "    from pkg import annotations\n"
    )
    (tmp_path / "pkg" / "sub" / "deep.py").write_text("import pkg.leaf\nimport other.thing\n")
    (tmp_path / "pkg" / "leaf.py").write_text("")
    (tmp_path / "pkg" / "annotations.py").write_text("")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "thing.py").write_text("")

    assert local_sources(["pkg.entry"], ["pkg"], tmp_path) == [
        Path("pkg/__init__.py"),
        Path("pkg/entry.py"),
        Path("pkg/leaf.py"),
        Path("pkg/sub/__init__.py"),
        Path("pkg/sub/deep.py"),
    ]
