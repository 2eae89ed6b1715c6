"""The fast tier starts no server and no browser: conftest refuses them outside `integration`."""

from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from stackport.serving import local
from tests.azure_simulation import LocalServer, free_port


def test_a_fast_test_that_starts_bentoml_serve_fails_naming_the_mark(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match=r"`bentoml serve`.*not marked integration"):
        local.start_server("no-such-bento:0", "127.0.0.1", free_port(), tmp_path, tmp_path / "log")


def test_a_fast_test_that_starts_a_local_server_fails_naming_the_mark(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match=r"server process.*not marked integration"):
        LocalServer("true", ["true"], "http://127.0.0.1:9/", tmp_path, {})


def test_a_fast_test_that_starts_chromium_fails_naming_the_mark() -> None:
    with pytest.raises(pytest.fail.Exception, match=r"Chromium.*not marked integration"):
        webdriver.Chrome(service=Service("/bin/false"))
