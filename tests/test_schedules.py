"""`run.py --schedule` where it cannot schedule (tests/test_azure_simulation.py: where it can)."""

from click.testing import CliRunner
from zenml.client import Client

import run


def test_an_orchestrator_that_cannot_schedule_is_refused_before_anything_runs():
    runs = Client().list_pipeline_runs(size=1).total
    arguments = ["--pipeline", "train", "--stack", "local", "--schedule", "0 3 * * 1"]

    result = CliRunner().invoke(run.main, arguments, catch_exceptions=False)

    assert result.exit_code == 1
    assert "--schedule: the orchestrator of stack 'local' (local) cannot schedule runs" in (
        result.output
    )
    assert "Traceback" not in result.output
    assert Client().list_pipeline_runs(size=1).total == runs


def test_the_deploy_pipeline_takes_no_schedule():
    arguments = ["--pipeline", "deploy", "--schedule", "0 3 * * 1"]

    result = CliRunner().invoke(run.main, arguments, catch_exceptions=False)

    assert result.exit_code == 2
    assert "only the train and monitor pipelines run on one" in result.output
