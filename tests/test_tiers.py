"""The fast tier starts no server and no browser: conftest refuses them outside `integration`."""

import shlex
from pathlib import Path

import pytest
from _pytest.mark.expression import Expression
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from stackport.serving import local
from tests import test_dashboard
from tests.azure_simulation import LocalServer, free_port

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_a_fast_test_that_starts_bentoml_serve_fails_naming_the_mark(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match=r"`bentoml serve`.*not marked integration"):
        local.start_server("no-such-bento:0", "127.0.0.1", free_port(), tmp_path, tmp_path / "log")


def test_a_fast_test_that_starts_a_local_server_fails_naming_the_mark(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match=r"server process.*not marked integration"):
        LocalServer("true", ["true"], "http://127.0.0.1:9/", tmp_path, {})


def test_a_fast_test_that_starts_chromium_fails_naming_the_mark() -> None:
    with pytest.raises(pytest.fail.Exception, match=r"Chromium.*not marked integration"):
        webdriver.Chrome(service=Service("/bin/false"))


def test_make_screenshots_selects_the_dashboard_test_despite_the_fast_tiers_default_marks():
    """pyproject's addopts deselect `integration`: the target must select it again."""
    recipe = (REPO_ROOT / "Makefile").read_text().split("\nscreenshots:", 1)[1].split("\n\n")[0]
    pytest_line = next(line for line in recipe.splitlines() if "-m pytest" in line)
    arguments = shlex.split(pytest_line.split("-m pytest", 1)[1])
    assert "tests/test_dashboard.py" in arguments
    # The last -m wins over addopts' (pytest reads addopts first).
    pairs = zip(arguments, arguments[1:], strict=False)
    expressions = [value for flag, value in pairs if flag == "-m"]
    assert expressions, f"no -m in the recipe: {pytest_line}"
    dashboard_marks = {mark.name for mark in test_dashboard.pytestmark}
    assert Expression.compile(expressions[-1]).evaluate(lambda name: name in dashboard_marks)
