"""The docs say what the code does: commands, the configuration reference, the DAG diagrams.

Every shell command in a fenced `bash` block of README.md and docs/*.md is accounted for in
`COVERAGE`: run here (cheap commands), run by a named test, run by CI, or not run, with the
reason. A new command without an entry, or an entry no command uses, fails the test.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(bash|sh|shell|console)[ \t]*\n(.*?)^```", re.M | re.S)
PYTHON = ".venv/bin/python"


def shell_commands(text: str) -> list[str]:
    """The commands of the text's shell blocks: continuations joined, comments dropped."""
    commands = []
    for block in FENCE.finditer(text):
        for line in block.group(2).replace("\\\n", " ").splitlines():
            tokens = shlex.split(line, comments=True)
            if tokens:
                commands.append(shlex.join(tokens))
    return commands


def documented_commands() -> list[tuple[str, str]]:
    return [
        (page.relative_to(REPO_ROOT).as_posix(), command)
        for page in PAGES
        for command in shell_commands(page.read_text())
    ]


@dataclass(frozen=True)
class Coverage:
    """How the commands matching `pattern` (a regex, matched in full) are exercised.

    `how` is "here" (a test of this module runs it: `where` names the test), "test" (`where`
    names the tests, `path::function`), "ci" (`where` is `file: text the file contains`) or
    "not run" (`where` is the reason; `tests` names what covers the code path).
    """

    pattern: str
    how: str
    where: str
    tests: tuple[str, ...] = ()


TRAINING = "tests/test_training_pipeline.py::test_training_run_completes_and_writes_the_summary"
DEPLOY = "tests/test_deployment_pipeline.py"
AZURE_SIMULATION = (
    "tests/test_azure_simulation.py::test_training_pipeline_completes_on_the_azure_stack"
)
ONLINE_ENDPOINT = "tests/test_online_endpoint.py"
DASHBOARD = "tests/test_dashboard.py::test_dashboard_shows_the_completed_run_and_its_visualizations"
AZURE_CLI = (
    "Azure CLI against a real subscription (creates billed resources; no `az` and no network "
    "here). docs/azure.md's simulation runs the pipeline without them."
)

COVERAGE = [
    Coverage(r"make test", "ci", ".ci/run: make test"),
    Coverage(r"make docs", "ci", "Makefile: test: $(INSTALLED) lint docs"),
    Coverage(
        r"make train",
        "not run",
        "fine-tunes MiniLM-L6 on the Rotten Tomatoes sentences (about 13 minutes on 2 "
        "cores); the same `run.py --pipeline train` runs in the tests on a tiny BERT, and "
        "test_make_targets_run_their_pipeline checks the target",
        (TRAINING,),
    ),
    Coverage(
        r"make serve",
        "not run",
        "needs the production version `make train` registers; the same `run.py --pipeline "
        "deploy` is tested on a tiny BERT's version",
        (f"{DEPLOY}::test_production_version_is_built_deployed_and_recorded",),
    ),
    Coverage(rf"{PYTHON} run\.py --help", "here", "test_run_py_help_lists_every_option"),
    Coverage(
        rf"{PYTHON} run\.py (--pipeline train )?--data \S+ --text-column \S+ --label-column \S+",
        "test",
        TRAINING,
    ),
    Coverage(
        rf"{PYTHON} run\.py --data \S+/ --model \S+ --summary \S+",
        "test",
        f"{TRAINING} tests/test_data_sources.py::test_a_folder_of_split_files_keeps_its_splits",
    ),
    Coverage(
        rf"{PYTHON} run\.py --task multilabel --data \S+ --text-column \S+ --label-column \S+",
        "test",
        "tests/test_tasks_pipeline.py::test_multilabel_run_completes_and_registers_the_model",
    ),
    Coverage(
        rf"{PYTHON} run\.py --task ner --data \S+",
        "test",
        "tests/test_tasks_pipeline.py::test_ner_run_completes_and_registers_the_model",
    ),
    Coverage(
        rf"{PYTHON} run\.py --config configs/ner-conll2003\.yaml --data \S+ --summary \S+",
        "test",
        "tests/test_tasks_pipeline.py::test_ner_run_completes_and_registers_the_model "
        "tests/test_docs.py::test_shipped_configurations_are_valid",
    ),
    Coverage(rf"{PYTHON} run\.py --pipeline train", "test", DASHBOARD),
    Coverage(
        rf"{PYTHON} run\.py --pipeline deploy",
        "test",
        f"{DEPLOY}::test_production_version_is_built_deployed_and_recorded "
        f"{DEPLOY}::test_no_production_version_says_why_and_what_to_run",
    ),
    Coverage(
        rf"{PYTHON} run\.py --pipeline deploy --model-version 3",
        "test",
        f"{DEPLOY}::test_another_version_replaces_the_earlier_deployment",
    ),
    Coverage(
        rf"{PYTHON} run\.py --pipeline deploy --model-version latest",
        "here",
        "test_model_version_latest_resolves_to_the_newest_version",
    ),
    Coverage(
        rf"{PYTHON} run\.py --pipeline deploy --stack azure --config \S+ --image \S+",
        "not run",
        "needs an AzureML workspace; the remote-build path (build there, serve here) is "
        "tested with the orchestrator taken as remote",
        (f"{DEPLOY}::test_after_a_remote_build_the_client_deploys",),
    ),
    Coverage(
        rf"{PYTHON} run\.py --pipeline train --stack azure (--image|--summary) \S+",
        "test",
        f"{AZURE_SIMULATION} (AzureML simulated, see docs/azure.md)",
    ),
    Coverage(
        rf"{PYTHON} run\.py --pipeline monitor --summary \S+",
        "test",
        "tests/test_monitoring.py::test_held_back_reviews_show_no_drift "
        "tests/test_monitoring.py::test_bbc_articles_drift_on_their_lengths_and_words",
    ),
    Coverage(
        rf"{PYTHON} run\.py --pipeline train --stack azure --schedule '.*'",
        "test",
        "tests/test_azure_simulation.py::"
        "test_schedule_registers_a_cron_job_schedule_of_the_training_pipeline "
        "(AzureML simulated at its MLClient)",
    ),
    Coverage(
        r"curl -s -X POST http://127\.0\.0\.1:3000/predict -H 'Content-Type: application/json' "
        r"-d '.*'|curl -s http://127\.0\.0\.1:3000/metadata",
        "test",
        f"{DEPLOY}::test_another_version_replaces_the_earlier_deployment "
        "(the same body to /predict and /metadata of a deployed server, through httpx)",
    ),
    Coverage(
        r"export 'BENTOML_HOME=\$\(\.venv/bin/python' -c '.*'",
        "here",
        "test_bentoml_home_one_liner_prints_the_store",
    ),
    Coverage(r"\.venv/bin/bentoml list", "here", "test_bentoml_list_runs"),
    Coverage(
        r"\.venv/bin/bentoml serve \S+ --port 3000",
        "test",
        f"{DEPLOY}::test_production_version_is_built_deployed_and_recorded "
        "(stackport.serving.local.start_server runs `bentoml serve <tag> --port`)",
    ),
    Coverage(
        r"\.venv/bin/bentoml import \S+\.bento\.tar",
        "test",
        f"{DEPLOY}::test_after_a_remote_build_the_client_deploys "
        "(stackport.serving.bento.import_bento runs `bentoml import`)",
    ),
    Coverage(
        r"\.venv/bin/bentoml containerize \S+",
        "not run",
        "needs a container engine and a registry to pull python:3.11-slim from; the refusal "
        "without an engine is tested",
        (f"{DEPLOY}::test_container_target_without_an_engine_names_each_and_the_command",),
    ),
    Coverage(
        r"cp config\.env\.example config\.env",
        "here",
        "test_config_env_example_names_every_azure_setting",
    ),
    Coverage(r"az .*|'(KEY|URI|PRINCIPAL)=\$\(az' ml online-endpoint .*", "not run", AZURE_CLI),
    Coverage(
        r"curl -s -X POST '\$URI' -H 'Authorization: Bearer \$KEY' .*",
        "not run",
        "needs a real endpoint and its key; the same body to /score of the deployment's code "
        "under the real AzureML inference server is tested",
        (
            f"{ONLINE_ENDPOINT}::test_online_endpoint_execute_predictions_equal_the_inference_module",
        ),
    ),
    Coverage(
        rf"{PYTHON} run\.py --pipeline deploy --stack azure",
        "test",
        "tests/test_azure_simulation.py::"
        "test_online_endpoint_deploy_on_the_azure_stack_registers_the_model_in_place "
        "(AzureML simulated, see docs/azure.md)",
    ),
    Coverage(
        rf"{PYTHON} run\.py --pipeline undeploy --stack azure",
        "test",
        f"{ONLINE_ENDPOINT}::test_online_endpoint_undeploy_deletes_the_endpoint (the same "
        "command with deployment.target azureml on the local stack, MLClient simulated)",
    ),
    Coverage(
        r"zenml login 'https://<your-zenml-server>'",
        "not run",
        "needs a remote ZenML server; the simulation logs in to one on 127.0.0.1",
        (AZURE_SIMULATION,),
    ),
    Coverage(
        rf"{PYTHON} -m stacks\.registration azure",
        "test",
        "tests/test_stacks.py::test_command_line_registers_and_activates "
        "tests/test_stacks.py::test_missing_environment_variables_are_listed_together "
        f"{AZURE_SIMULATION}",
    ),
    Coverage(
        r"zenml stack describe azure",
        "not run",
        "ZenML's own command; the azure stack it describes is registered by the simulation",
        (AZURE_SIMULATION,),
    ),
    Coverage(
        rf"{PYTHON} benchmarks/inference\.py (\S+|'\$\(.*\)') ?(--repeats \d+)?",
        "test",
        "tests/test_benchmark_script.py::test_script_exports_quantizes_and_prints_the_table",
    ),
    Coverage(
        rf"{PYTHON} benchmarks/inference\.py \S+ --variants",
        "not run",
        "needs a linear-probe MiniLM folder that is not in the repository and times 8 "
        "runtimes for about 10 minutes; the script without --variants is tested",
        ("tests/test_benchmark_script.py::test_script_exports_quantizes_and_prints_the_table",),
    ),
    Coverage(
        rf"{PYTHON} -m benchmarks\.serving --model-name \S+ .*--service .*",
        "not run",
        "serves a trained model's bentos with several service settings beside both baselines "
        "for minutes; how it reads --service is tested",
        (
            "tests/test_serving_benchmark.py::test_overrides_set_dotted_keys_over_the_defaults_"
            "without_a_request_log",
        ),
    ),
    Coverage(r"\.venv/bin/zenml (login|logout) --local", "test", DASHBOARD),
    Coverage(
        r"make screenshots",
        "not run",
        "needs the training run `make train` makes (13 minutes); the same test drives the "
        "dashboard over the tiny model's run in CI",
        (DASHBOARD,),
    ),
]


def coverage_of(command: str) -> list[Coverage]:
    return [entry for entry in COVERAGE if re.fullmatch(entry.pattern, command)]


def test_every_documented_command_is_accounted_for():
    commands = documented_commands()
    assert len(commands) > 30
    unaccounted = [f"{page}: {command}" for page, command in commands if not coverage_of(command)]
    assert not unaccounted, "Commands with no COVERAGE entry:\n" + "\n".join(unaccounted)
    ambiguous = [command for _, command in commands if len(coverage_of(command)) > 1]
    assert not ambiguous, f"Commands matching more than one entry: {ambiguous}"
    used = {entry for _, command in commands for entry in coverage_of(command)}
    unused = [entry.pattern for entry in COVERAGE if entry not in used]
    assert not unused, f"COVERAGE entries no documented command uses: {unused}"


def defined_test(node: str) -> bool:
    path, _, function = node.partition("::")
    source = REPO_ROOT / path
    return source.is_file() and re.search(rf"^def {function}\(", source.read_text(), re.M)


@pytest.mark.parametrize("entry", COVERAGE, ids=lambda entry: entry.pattern[:60])
def test_coverage_names_real_tests_ci_steps_and_reasons(entry: Coverage):
    nodes = [word for word in entry.where.split() if "::" in word] + list(entry.tests)
    for node in nodes:
        assert defined_test(node), f"{node} does not exist"
    if entry.how == "here":
        assert callable(globals().get(entry.where)), entry.where
    elif entry.how == "test":
        assert nodes, entry
    elif entry.how == "ci":
        file, _, text = entry.where.partition(": ")
        assert text in (REPO_ROOT / file).read_text(), entry.where
    else:
        assert entry.how == "not run" and len(entry.where) > 40, entry


def click_options(command: click.Command) -> dict[str, click.Parameter]:
    parameters = command.get_params(click.Context(command))  # --help included
    return {name: param for param in parameters for name in param.opts}


@pytest.mark.parametrize(
    "command",
    sorted({c for _, c in documented_commands() if re.match(rf"{PYTHON} run\.py", c)}),
)
def test_documented_run_py_options_exist(command):
    import run

    options = click_options(run.main)
    arguments = shlex.split(command)[2:]
    for position, word in enumerate(arguments):
        if not word.startswith("--"):
            continue
        assert word in options, f"run.py has no option {word}"
        kind = options[word].type
        if isinstance(kind, click.Choice):
            assert arguments[position + 1] in kind.choices, (word, arguments[position + 1])


def test_run_py_help_lists_every_option():
    result = subprocess.run(
        [sys.executable, "run.py", "--help"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    import run

    for name in click_options(run.main):
        if name.startswith("--"):
            assert name in result.stdout, name
    assert "Examples:" in result.stdout
    assert "python run.py --pipeline deploy" in result.stdout


def test_bentoml_list_runs(tmp_path):
    bentoml = Path(sys.executable).with_name("bentoml")
    env = os.environ | {"BENTOML_HOME": str(tmp_path), "BENTOML_DO_NOT_TRACK": "true"}
    result = subprocess.run(
        [str(bentoml), "list"], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "Tag" in result.stdout or "No Bentos" in result.stdout + result.stderr


def test_bentoml_home_one_liner_prints_the_store():
    (command,) = {c for _, c in documented_commands() if c.startswith("export 'BENTOML_HOME=")}
    code = shlex.split(command)[3].removesuffix(")")  # the token holds the `$(...)`'s `)`
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == Path(os.environ["ZENML_CONFIG_PATH"]) / "bentoml"


def test_config_env_example_names_every_azure_setting():
    from stacks.registration import DEFAULT_ENV_FILE

    example = (REPO_ROOT / "config.env.example").read_text()
    assert DEFAULT_ENV_FILE == REPO_ROOT / "config.env"
    referenced = set(re.findall(r"\$\{(\w+)", (REPO_ROOT / "stacks" / "azure.yaml").read_text()))
    assert referenced
    for name in referenced:
        assert re.search(rf"^#?\s*{name}=", example, re.M), name


def test_model_version_latest_resolves_to_the_newest_version():
    from zenml.client import Client

    from pipelines.deployment import find_model_version

    client = Client()
    client.create_model(name="docs-latest")
    for _ in range(2):
        client.create_model_version("docs-latest")
    assert find_model_version("docs-latest", "latest").name == "2"
    with pytest.raises(LookupError, match="--model-version latest"):
        find_model_version("docs-latest", "production")


@pytest.mark.parametrize("target, pipeline", [("train", "train"), ("serve", "deploy")])
def test_make_targets_run_their_pipeline(target: str, pipeline: str):
    makefile = (REPO_ROOT / "Makefile").read_text()
    recipe = makefile.split(f"\n{target}:", 1)[1].split("\n\n", 1)[0]
    assert f"run.py --pipeline {pipeline}" in recipe


# The configuration reference and the configurations.


def config_reference():
    spec = importlib.util.spec_from_file_location(
        "config_reference", REPO_ROOT / "docs" / "config_reference.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configuration_reference_is_generated_from_the_settings():
    reference = config_reference()
    assert reference.PAGE.read_text() == reference.render(), (
        "docs/configuration.md is out of date: run .venv/bin/python docs/config_reference.py"
    )
    assert reference.unexplained() == []


def test_shipped_configurations_are_valid():
    from pipelines.deployment import DEPLOY_SECTIONS
    from pipelines.monitoring import monitoring_pipeline
    from pipelines.run_parameters import validated_parameters, validated_sections
    from pipelines.training import training_pipeline

    for path in sorted((REPO_ROOT / "configs").glob("*.yaml")):
        parameters = yaml.safe_load(path.read_text())["parameters"]
        if path.name == "deploy.yaml":
            validated_sections(DEPLOY_SECTIONS, parameters, "deployment_pipeline")
        elif path.name == "monitor.yaml":
            validated_parameters(monitoring_pipeline, parameters)
        else:
            validated_parameters(training_pipeline, parameters)


def test_every_key_of_the_configurations_is_in_the_reference():
    page = (REPO_ROOT / "docs" / "configuration.md").read_text()

    def keys(values: dict, prefix: str = "") -> list[str]:
        found = []
        for key, value in values.items():
            found.append(f"{prefix}{key}")
            if isinstance(value, dict):
                found += keys(value, f"{prefix}{key}.")
        return found

    for path in sorted((REPO_ROOT / "configs").glob("*.yaml")):
        name = path.name
        config = yaml.safe_load(path.read_text())
        for key in keys(config["parameters"]):
            # Values of a mapping-typed key (a search range's low/high/log) have no row.
            if not re.search(r"\.(low|high|log)$|^split\.max_rows\.", key):
                assert f"`{key}`" in page, f"{name}: {key} is not in docs/configuration.md"


# The pipeline diagrams.


def mermaid_edges(page: str) -> list[set[tuple[str, str]]]:
    """The arrows of each mermaid block of a docs page, chains split into pairs."""
    text = (REPO_ROOT / "docs" / page).read_text()
    blocks = re.findall(r"^```mermaid\n(.*?)^```", text, re.M | re.S)
    edges = []
    for block in blocks:
        pairs = set()
        for line in block.splitlines():
            nodes = [re.sub(r"[\[(].*", "", part).strip() for part in line.split("-->")]
            pairs |= set(zip(nodes, nodes[1:], strict=False)) if len(nodes) > 1 else set()
        edges.append(pairs)
    return edges


@pytest.fixture(scope="module")
def training_dag() -> set[tuple[str, str]]:
    """(upstream, downstream) of every step of `training_pipeline`, from ZenML's own DAG."""
    from pipelines.run_parameters import validated_parameters
    from pipelines.training import training_pipeline

    config = yaml.safe_load((REPO_ROOT / "configs" / "train.yaml").read_text())
    training_pipeline.prepare(**validated_parameters(training_pipeline, config["parameters"]))
    return {
        (upstream, name)
        for name, invocation in training_pipeline.invocations.items()
        for upstream in set(invocation.upstream_steps)
        | {artifact.invocation_id for artifact in invocation.input_artifacts.values()}
    }


def test_architecture_diagram_is_the_training_pipeline(training_dag):
    diagrams = mermaid_edges("architecture.md")
    (training,) = [edges for edges in diagrams if ("load_data", "validate_data") in edges]
    assert training == training_dag
    assert any(("build_bento", "deploy_bento") in edges for edges in diagrams)


def test_monitoring_diagram_is_the_monitoring_pipeline():
    from pipelines.monitoring import monitoring_pipeline
    from pipelines.run_parameters import validated_parameters

    config = yaml.safe_load((REPO_ROOT / "configs" / "monitor.yaml").read_text())
    monitoring_pipeline.prepare(**validated_parameters(monitoring_pipeline, config["parameters"]))
    dag = {
        (upstream, name)
        for name, invocation in monitoring_pipeline.invocations.items()
        for upstream in set(invocation.upstream_steps)
        | {artifact.invocation_id for artifact in invocation.input_artifacts.values()}
    }
    (drawn,) = mermaid_edges("monitoring.md")
    assert drawn == dag


@pytest.mark.parametrize("page", ["hpo.md", "onnx.md"])
def test_other_diagrams_draw_only_real_dependencies(page, training_dag):
    steps = {step for edge in training_dag for step in edge}
    for edges in mermaid_edges(page):
        drawn = {(a, b) for a, b in edges if a in steps and b in steps}
        assert drawn
        # An arrow may skip steps in between: it must follow the DAG's paths.
        for upstream, downstream in drawn:
            assert reaches(training_dag, upstream, downstream), (page, upstream, downstream)


def reaches(edges: set[tuple[str, str]], start: str, end: str) -> bool:
    frontier, seen = [start], set()
    while frontier:
        node = frontier.pop()
        for a, b in edges:
            if a == node and b not in seen:
                if b == end:
                    return True
                seen.add(b)
                frontier.append(b)
    return False
