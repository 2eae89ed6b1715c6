"""The bento's sources: what it copies, and the fingerprint that keeps its build step honest."""

import shutil
from pathlib import Path

import pytest

from stackport.serving import bento
from stackport.serving.bento import service_code_fingerprint, service_sources
from steps.build_bento import build_bento


@pytest.fixture
def repository_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the library, made the repository the bento's sources are read from."""
    shutil.copytree(bento.REPO_ROOT / "stackport", tmp_path / "stackport")
    monkeypatch.setattr(bento, "REPO_ROOT", tmp_path)
    return tmp_path


def test_the_fingerprint_follows_the_service_code_and_nothing_else(repository_copy: Path):
    before = service_code_fingerprint()
    assert service_code_fingerprint() == before
    (repository_copy / "stackport/training/trainer.py").write_text("# not served\n")
    assert service_code_fingerprint() == before
    served = repository_copy / "stackport/inference/runtime.py"
    assert Path("stackport/inference/runtime.py") in service_sources("classification")
    served.write_bytes(served.read_bytes() + b"\n")
    assert service_code_fingerprint() != before


def test_every_task_plug_in_is_part_of_the_fingerprint(repository_copy: Path):
    before = service_code_fingerprint()
    plug_in = repository_copy / "stackport/tasks/ner/infer.py"
    plug_in.write_bytes(plug_in.read_bytes() + b"\n")
    assert service_code_fingerprint() != before


def test_the_build_step_caches_on_the_service_code():
    cache_func = build_bento.configuration.cache_policy.cache_func
    assert cache_func.import_path == "stackport.serving.bento.service_code_fingerprint"
