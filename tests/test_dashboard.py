"""The ZenML dashboard shows a training run: headless Chromium against `zenml login --local`.

One test, about two minutes: it starts the local ZenML server (with its dashboard) on a free
port of 127.0.0.1 with a ZenML config folder of its own, runs `run.py --pipeline train` on the
tiny BERT and 120 BBC articles against it, then drives the Debian `chromium` and
`chromium-driver` packages with Selenium through the first visit (the local server has no
password: the dashboard signs you in as `default` and asks for your name once), the run's DAG
and the confusion matrix of `model_evaluation`. Screenshots go to `STACKPORT_SCREENSHOTS_DIR`
when set, else to pytest's temporary folder.

With `STACKPORT_DASHBOARD_STORE` set to a ZenML config folder (`make screenshots` sets the
user's, after `make train`), the server runs on that folder's store instead (its config.yaml
is restored afterwards), and the test drives the dashboard over its latest training run whose
steps all ran (none cached): the pictures in docs/images/ are of a real default run, not of
the tiny model.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.helpers import tiny_config

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
REPO_ROOT = Path(__file__).resolve().parents[1]
ZENML = Path(sys.executable).with_name("zenml")
WAIT_S = 240  # the machine is shared: the dashboard can take a minute to render a page
USER_NAME = "Stackport CI"
STORE = os.environ.get("STACKPORT_DASHBOARD_STORE")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()),
        reason="needs Debian's chromium and chromium-driver (/usr/bin/chromium, "
        "/usr/bin/chromedriver): apt-get install -y chromium chromium-driver (.ci/run does)",
    ),
]

# Headless Chromium as root, without GPU and without reaching for the network. The three
# rasterizer flags keep it off SwiftShader: the dashboard's animations otherwise keep a GPU
# process busy and, on two shared cores, WebDriver commands take tens of seconds.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-software-rasterizer",
    "--disable-gpu-compositing",
    "--disable-gpu-rasterization",
    "--window-size=1400,1000",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def zenml_cli(env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ZENML), *arguments], env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def zenml_server(tmp_path_factory) -> Iterator[tuple[str, dict[str, str]]]:
    """`zenml login --local` in a ZenML config folder of its own; `zenml logout --local` after.

    Yields the dashboard's URL and the environment that points ZenML clients at the server.
    """
    # The local server reads artifacts only under its own config folder's local stores: over a
    # user's runs it runs in the user's folder, whose config.yaml is restored afterwards.
    config = Path(STORE).expanduser() if STORE else tmp_path_factory.mktemp("dashboard-zenml")
    client_config = (config / "config.yaml").read_text() if STORE else None
    port = free_port()
    env = os.environ | {
        "ZENML_CONFIG_PATH": str(config),
        "ZENML_AUTO_OPEN_DASHBOARD": "false",
        "ZENML_ANALYTICS_OPT_IN": "false",
        "ZENML_LOGGING_VERBOSITY": "INFO",
    }
    if STORE:  # the store's latest training run, read before the server takes it over
        env["STACKPORT_DASHBOARD_RUN"] = latest_run_that_ran(env)
    started = time.monotonic()
    login = zenml_cli(env, "login", "--local", "--ip-address", "127.0.0.1", "--port", str(port))
    print(f"zenml login --local took {time.monotonic() - started:.0f}s")
    pid_file = config / "zen_server" / "daemon" / "service.pid"
    pid = int(pid_file.read_text()) if pid_file.is_file() else None
    try:
        assert login.returncode == 0, login.stdout + login.stderr
        url = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{url}/api/v1/info", timeout=30) as response:
            info = json.load(response)
        assert info["deployment_type"] == "local"
        assert info["auth_scheme"] == "NO_AUTH"
        yield url, env
    finally:
        stopping = time.monotonic()
        logout = zenml_cli(env, "logout", "--local")
        print(f"zenml logout --local took {time.monotonic() - stopping:.0f}s")
        # The daemon may take a while to exit after `logout`; never leave it running.
        if pid is not None and psutil.pid_exists(pid):
            process = psutil.Process(pid)
            try:
                process.wait(timeout=60)
            except psutil.TimeoutExpired:
                process.kill()
        if client_config is not None:
            (config / "config.yaml").write_text(client_config)
        assert logout.returncode == 0, logout.stdout + logout.stderr


def latest_run_that_ran(env: dict[str, str]) -> str:
    """The ID of the store's latest training run whose steps all completed (none cached)."""
    script = """
from zenml.client import Client
runs = Client().list_pipeline_runs(pipeline_name="training_pipeline", sort_by="desc:created")
print(next(
    run.id for run in runs.items
    if run.steps and all(step.status == "completed" for step in run.steps.values())
))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, (
        f"no training run in {STORE} whose steps all ran: " + (result.stderr[-2000:])
    )
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def training_run(zenml_server, tmp_path_factory, bbc_slice, tiny_bert_path) -> dict:
    """`run.py --pipeline train` against the local server: its summary JSON.

    With `STACKPORT_DASHBOARD_STORE`, the copied store's latest training run instead.
    """
    _, env = zenml_server
    if STORE:
        return {"run_id": env["STACKPORT_DASHBOARD_RUN"]}
    folder = tmp_path_factory.mktemp("dashboard-run")
    bbc_slice.to_csv(folder / "bbc.csv", index=False)
    config = tiny_config(folder, "dashboard-bbc")
    summary_file = folder / "summary.json"
    command = [sys.executable, "run.py", "--pipeline", "train", "--data", str(folder / "bbc.csv")]
    command += ["--model", str(tiny_bert_path), "--config", str(config)]
    command += ["--summary", str(summary_file), "--no-cache"]
    result = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    (folder / "run.log").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(summary_file.read_text())
    assert summary["status"] == "completed"
    return summary


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    directory = os.environ.get("STACKPORT_SCREENSHOTS_DIR")
    path = Path(directory) if directory else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def browser() -> Iterator:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tempfile.mkdtemp(prefix="stackport-chromium-")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


def save(driver, directory: Path, name: str) -> Path:
    """A screenshot, as a 128-colour PNG (a few tens of kB) for the docs."""
    from PIL import Image

    path = directory / name
    driver.save_screenshot(str(path))
    Image.open(path).convert("RGB").quantize(colors=128).save(path, optimize=True)
    return path


def button(driver, label: str):
    from selenium.webdriver.common.by import By

    for element in driver.find_elements(By.TAG_NAME, "button"):
        if element.text.strip() == label and element.is_displayed() and element.is_enabled():
            return element
    return False


def complete_first_visit(driver, wait: Waiter) -> None:
    """The local server signs the browser in as `default`; the first visit asks for a name.

    The survey's pages: account details (name, email), role and infrastructure, the Slack
    invitation, a confirmation. Each is answered or skipped the way a new user would.
    """
    from selenium.webdriver.common.by import By

    wait.until(
        lambda d: "/survey" in d.current_url or USER_NAME in body_text(d),
        "the survey or the home page",
    )
    if "/survey" not in driver.current_url:
        return
    wait.until(lambda d: d.find_elements(By.NAME, "fullName"), "the account details form")
    driver.find_element(By.NAME, "fullName").send_keys(USER_NAME)
    driver.find_element(By.NAME, "email").send_keys("ci@example.com")
    wait.until(lambda d: button(d, "Continue"), "Continue (account details)").click()
    wait.until(lambda d: "What are you building?" in body_text(d), "the role question")
    for choice in ("ML Engineer", "My Laptop"):
        driver.find_element(By.XPATH, f"//label[contains(normalize-space(), '{choice}')]").click()
    wait.until(lambda d: button(d, "Continue"), "Continue (role)").click()
    wait.until(lambda d: button(d, "Skip this step"), "the Slack invitation").click()
    wait.until(lambda d: "Your ZenML account is now updated" in body_text(d), "the confirmation")
    link = "//*[self::a or self::button][normalize-space()='Go to Dashboard']"
    wait.until(lambda d: d.find_elements(By.XPATH, link), "Go to Dashboard")
    driver.find_element(By.XPATH, link).click()
    wait.until(lambda d: "/survey" not in d.current_url, "the end of the survey")


class Waiter:
    """`WebDriverWait.until` that, on a timeout, says what it waited for and where it was."""

    def __init__(self, driver, debug_dir: Path):
        from selenium.common.exceptions import (
            NoSuchElementException,
            StaleElementReferenceException,
        )
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver = driver
        self.debug_dir = debug_dir
        # React re-renders: an element found a moment ago may be gone; look again.
        ignored = (NoSuchElementException, StaleElementReferenceException)
        self.wait = WebDriverWait(driver, WAIT_S, poll_frequency=0.5, ignored_exceptions=ignored)

    def until(self, condition, what: str = "the page"):
        from selenium.common.exceptions import TimeoutException

        try:
            return self.wait.until(condition)
        except TimeoutException:
            shot = self.debug_dir / "timeout.png"
            self.driver.save_screenshot(str(shot))
            raise AssertionError(
                f"Waited {WAIT_S}s for {what} at {self.driver.current_url} (screenshot {shot}); "
                f"the page says: {body_text(self.driver)[:1500]!r}"
            ) from None


def body_text(driver) -> str:
    return driver.execute_script("return document.body.innerText")


def run_steps(url: str, run_id: str) -> dict[str, str]:
    """Each step run of the pipeline run and its status, from the server's REST API."""
    query = f"{url}/api/v1/steps?pipeline_run_id={run_id}&size=100"
    with urllib.request.urlopen(query, timeout=60) as response:
        page = json.load(response)
    return {item["name"]: item["body"]["status"] for item in page["items"]}


def test_dashboard_shows_the_completed_run_and_its_visualizations(
    zenml_server, training_run, browser, screenshots, tmp_path
):
    from selenium.webdriver.common.by import By

    url, _ = zenml_server
    wait = Waiter(browser, tmp_path)
    steps = run_steps(url, training_run["run_id"])
    assert {"load_data", "train_model", "convert_model", "promote_model"} <= set(steps)
    assert set(steps.values()) == {"completed"}

    # First visit: no password on the local server, a name for the `default` user.
    browser.get(url)
    complete_first_visit(browser, wait)
    # Signed in as the user the survey named: "Hi, <name>" (onboarding) or "Welcome back, <name>".
    wait.until(lambda d: USER_NAME in body_text(d), "the greeting by name")

    # The latest run, from the run list, as a user would find it.
    browser.get(f"{url}/projects/default/runs")
    run_link = f"a[href$='/runs/{training_run['run_id']}']"
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, run_link), "the run in the run list")
    browser.find_element(By.CSS_SELECTOR, run_link).click()

    # Every step of the DAG is there and shows the green "completed" check.
    nodes = ".react-flow__node-step"
    checks = f"{nodes} svg.lucide-circle-check"
    wait.until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, checks)) == len(steps),
        f"{len(steps)} completed steps in the DAG",
    )
    shown = {
        node.get_attribute("data-id").removeprefix("step/"): node
        for node in browser.find_elements(By.CSS_SELECTOR, nodes)
    }
    assert set(shown) == set(steps)
    for name, node in shown.items():
        assert node.find_elements(By.CSS_SELECTOR, "button[data-failed='false']"), name
        badge = node.find_element(By.CSS_SELECTOR, "[data-slot='badge']")
        assert badge.get_attribute("data-variant") == "success", name
        assert node.find_elements(By.CSS_SELECTOR, "svg.lucide-circle-check"), name
    browser.set_window_size(1400, 1400)
    time.sleep(2)  # the DAG re-fits to the window
    save(browser, screenshots, "dashboard-run-dag.png")

    # The confusion matrix of the model_evaluation artifact (a PNG visualization) renders.
    artifact = "[data-id='evaluate_model/outputs/step_output/model_evaluation'] button"
    browser.find_element(By.CSS_SELECTOR, artifact).click()
    tab = "[role=dialog] button[role=tab]"
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, tab), "the artifact's tabs")
    tabs = browser.find_elements(By.CSS_SELECTOR, tab)
    next(tab for tab in tabs if tab.text.strip() == "Visualization").click()
    # The dashboard asks before it loads an artifact's visualization.
    wait.until(lambda d: button(d, "Load Preview"), "Load Preview").click()
    image = "[role=dialog] img[src^='data:image/png']"
    size = (
        "const i = document.querySelector(arguments[0]);"
        "return i && i.complete && i.naturalWidth ? [i.naturalWidth, i.naturalHeight] : null"
    )
    width, height = wait.until(lambda d: d.execute_script(size, image), "the confusion matrix")
    assert width > 300 and height > 300
    assert "confusion_matrix.png" in body_text(browser)
    browser.set_window_size(1400, 900)
    time.sleep(1)
    save(browser, screenshots, "dashboard-confusion-matrix.png")
