"""Command line entry point: run Stackport's pipelines on a ZenML stack."""

from __future__ import annotations

import copy
import json
import logging
import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

import click
import yaml

from stackport.core.offline import stay_offline

# Everything loads from local paths or installed packages: never reach for a model hub.
stay_offline()
# Great Expectations logs some 200 INFO lines while it loads (`Skipping registering function`,
# `Loading 'datasources'`); validate_data logs what matters. Keep GX's warnings and errors.
logging.getLogger("great_expectations").setLevel(logging.WARNING)

from stackport.core.tasks import task_names  # noqa: E402

if TYPE_CHECKING:
    from zenml.client import Client
    from zenml.models import PipelineRunResponse
    from zenml.pipelines.pipeline_definition import Pipeline

    from stackport.core.settings import DeploymentSettings, MonitorSettings
    from stackport.monitoring.drift import DriftSummary

REPO_ROOT = Path(__file__).resolve().parent
DEFAULT_CONFIGS = {
    "train": REPO_ROOT / "configs" / "train.yaml",
    "deploy": REPO_ROOT / "configs" / "deploy.yaml",
    "undeploy": REPO_ROOT / "configs" / "deploy.yaml",
    "monitor": REPO_ROOT / "configs" / "monitor.yaml",
}
STACK_CONFIGS_DIR = REPO_ROOT / "configs" / "stacks"
LOCAL_STACK = "local"


EXAMPLES = """\b
Examples:
  python run.py                      # bundled:rotten-tomatoes, MiniLM-L6
  python run.py --list-data          # the bundled data sets
  python run.py --config configs/bbc-news.yaml
  python run.py --data reviews.csv --text-column review --label-column stars
  python run.py --data train-validation-test-folder/ --summary out.json
  python run.py --task ner --data conll-folder/ \\
                --config configs/ner-conll2003.yaml
  python run.py --pipeline deploy    # the latest trained model's production version
  python run.py --pipeline deploy --model-name bbc-news-classifier --model-version latest
  python run.py --stack azure --image myregistry.azurecr.io/stackport:0.1.0
  python run.py --pipeline deploy --stack azure    # an AzureML online endpoint
  python run.py --pipeline undeploy --stack azure  # deletes it
  python run.py --pipeline monitor --summary drift.json
  python run.py --stack azure --schedule "0 3 * * 1"   # train every Monday, 03:00 UTC

\b
Docs: docs/index.md (`make docs` builds the site); every configuration
key: docs/configuration.md; errors and fixes: docs/troubleshooting.md.
"""


@click.command(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXAMPLES,
)
@click.option(
    "--pipeline",
    "pipeline_name",
    type=click.Choice(sorted(DEFAULT_CONFIGS)),
    default="train",
    show_default=True,
    help="train: validate, search, fine-tune, evaluate, export, quantize, register and promote. "
    "deploy: serve the production (or --model-version) model with BentoML, or on an AzureML "
    "online endpoint (deployment.target: azureml, the azure stack's default). undeploy: "
    "delete that endpoint. monitor: test the served inputs for drift from the model "
    "version's training data.",
)
@click.option(
    "--stack",
    default=None,
    help="A stack defined under stacks/ (registered and activated if needed) or any registered "
    "ZenML stack. Default: the active stack, or the `local` stack when ZenML's bare `default` "
    "stack is active.",
)
@click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    show_default="config.env",
    help="KEY=VALUE settings of the stack (e.g. Azure's: see config.env.example) for variables "
    "the environment does not set. Ignored when absent.",
)
@click.option(
    "--image",
    default=None,
    help="Run the steps in this prebuilt container image instead of building one (stacks whose "
    "steps run in containers, e.g. azure; for machines without a Docker engine).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="YAML run configuration. Default: configs/<pipeline>.yaml.",
)
@click.option(
    "--data",
    default=None,
    metavar="PATH_OR_URI",
    help="bundled:<name> (see --list-data), or a CSV, JSONL or Parquet file or a folder with "
    "train/validation/test files, as a local path or an fsspec URI. Default: "
    "bundled:rotten-tomatoes.",
)
@click.option(
    "--task",
    type=click.Choice(task_names()),
    default=None,
    help="What to train. Default: from the config (classification).",
)
@click.option(
    "--text-column", default=None, help="Column holding the text (ner: tokens). Default: text."
)
@click.option(
    "--label-column",
    default=None,
    help="Column holding the label (multilabel: labels; ner: tags). Default: label.",
)
@click.option(
    "--model",
    "base_model",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Local Hugging Face model folder to fine-tune. Default: the bundled MiniLM-L6.",
)
@click.option(
    "--model-name",
    default=None,
    help="deploy, monitor: the Model Control Plane model to serve or monitor. Default: the "
    "model of the latest training run.",
)
@click.option(
    "--model-version",
    default=None,
    help="deploy, monitor: the model version, a number or a stage (production, staging, "
    "latest). Default: production.",
)
@click.option(
    "--schedule",
    metavar="CRON",
    default=None,
    help="train, monitor: register a schedule (a cron expression, UTC) with the stack's "
    "orchestrator instead of running now; an orchestrator that cannot schedule is an error.",
)
@click.option("--no-cache", is_flag=True, help="Run every step again instead of reusing results.")
@click.option(
    "--list-data",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=lambda context, _, value: list_data(context) if value else None,
    help="List the bundled data sets (size, labels, task, licence) and exit.",
)
@click.option(
    "--fetch-data",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=lambda context, _, value: fetch_data(context) if value else None,
    help="Fetch the bundled data sets that are not in the data cache yet (`make install` does "
    "this), and exit.",
)
@click.option(
    "--summary",
    "summary_file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write a JSON summary (run id, status, model version, test metrics, artifact URIs).",
)
def main(
    pipeline_name: str,
    stack: str | None,
    env_file: Path | None,
    image: str | None,
    config_file: Path | None,
    data: str | None,
    task: str | None,
    text_column: str | None,
    label_column: str | None,
    base_model: str | None,
    model_name: str | None,
    model_version: str | None,
    schedule: str | None,
    no_cache: bool,
    summary_file: Path | None,
) -> None:
    """Fine-tune, register and serve transformer text models with typed ZenML pipelines.

    \b
    --pipeline train: validate the data, split, tokenize, search hyper-
      parameters (Optuna), fine-tune, evaluate beside a TF-IDF baseline,
      export to ONNX, quantize to int8, benchmark, register the model
      version and promote it when its gates pass.
    --pipeline deploy: build a BentoML bento of a model version (by default
      the production version of the latest trained model) and serve it on
      this machine; with deployment.target azureml (the azure stack's
      default), roll it out to an AzureML managed online endpoint instead.
    --pipeline undeploy: delete that endpoint.
    --pipeline monitor: compare a window of the inputs the service logged
      with the model version's training data (Evidently data drift); with
      monitor.retrain_on_drift, drift starts the training pipeline.

    The log names each step as it runs and says what it did; the end of a
    run prints the test metrics, the model version, the promotion decision
    and where the artifacts are. `zenml login --local` opens the dashboard.
    """  # noqa: D301 - \b is click's no-rewrap marker, not an escape to keep
    config = yaml.safe_load((config_file or DEFAULT_CONFIGS[pipeline_name]).read_text())
    enable_cache = config.get("enable_cache", True) and not no_cache
    parameters = config.get("parameters", {})

    from zenml.client import Client

    from pipelines.run_parameters import validated_parameters
    from pipelines.run_summary import summarize_run
    from pipelines.training import training_pipeline
    from stacks.registration import (
        DEFAULT_ENV_FILE,
        MissingEnvironmentVariablesError,
        activate_stack,
        defined_stack_names,
        load_env_file,
    )

    if pipeline_name == "train":
        parameters = apply_overrides(
            parameters,
            {
                ("data", "source"): data,
                ("data", "task"): task,
                ("data", "text_column"): text_column,
                ("data", "label_column"): label_column,
                ("model", "base_model"): str(Path(base_model).resolve()) if base_model else None,
            },
        )
        try:
            parameters = validated_parameters(training_pipeline, parameters)
        except ValueError as invalid:
            raise click.ClickException(
                f"{config_file or DEFAULT_CONFIGS[pipeline_name]}: {invalid}"
            ) from None
    elif pipeline_name == "monitor":
        from pipelines.monitoring import monitoring_pipeline

        parameters = apply_overrides(
            parameters,
            {("monitor", "model_name"): model_name, ("monitor", "model_version"): model_version},
        )
        try:
            parameters = validated_parameters(monitoring_pipeline, parameters)
        except ValueError as invalid:
            raise click.ClickException(
                f"{config_file or DEFAULT_CONFIGS[pipeline_name]}: {invalid}"
            ) from None
    else:
        if schedule is not None:
            raise click.UsageError("--schedule: only the train and monitor pipelines run on one.")

        parameters = apply_overrides(
            parameters, {("model", "name"): model_name, ("model", "version"): model_version}
        )
        validated_deploy_parameters(parameters, config_file or DEFAULT_CONFIGS[pipeline_name])

    client = Client()
    if stack is None and client.active_stack_model.name == "default":
        stack = LOCAL_STACK
    if stack in defined_stack_names():
        env_file = env_file or DEFAULT_ENV_FILE
        try:
            if env_file.is_file():
                load_env_file(env_file)
            activate_stack(stack)
        except MissingEnvironmentVariablesError as missing:
            raise click.ClickException(
                f"{missing}\nSet them in the environment or in {env_file} "
                "(template: config.env.example)."
            ) from None
        except ValueError as invalid:
            raise click.ClickException(str(invalid)) from None
    elif stack is not None:
        client.activate_stack(stack)
    stack_name = client.active_stack_model.name
    click.echo(f"Stack: {stack_name}")
    run_options = stack_run_options(stack_name, image)
    if pipeline_name in ("deploy", "undeploy"):
        # The stack's deployment settings, under the configuration's.
        parameters = validated_deploy_parameters(
            merged(stack_deploy_parameters(stack_name), parameters),
            config_file or DEFAULT_CONFIGS[pipeline_name],
        )
        refuse_image_without_pipeline(image, parameters["deployment"])
        if pipeline_name == "undeploy":
            undeploy(parameters)
        deploy(parameters, enable_cache, run_options)
    if schedule is not None:
        pipeline = training_pipeline if pipeline_name == "train" else monitoring_pipeline
        register_schedule(client, pipeline, parameters, enable_cache, run_options, schedule)
    if pipeline_name == "monitor":
        monitor(client, parameters, enable_cache, run_options, summary_file)

    run, error = run_pipeline(client, training_pipeline, parameters, enable_cache, run_options)
    summary = summarize_run(run, error=error)
    report(summary)
    report_locations(client, summary)
    if summary_file:
        summary_file.write_text(json.dumps(summary, indent=2))
        click.echo(f"Summary written to {summary_file}")
    sys.exit(0 if error is None else 1)


def validated_deploy_parameters(parameters: dict, config_file: Path) -> dict:
    """The sections of a deployment configuration, validated.

    Raises:
        click.ClickException: Naming every problem and the configuration file.
    """
    from pipelines.deployment import DEPLOY_SECTIONS
    from pipelines.run_parameters import validated_sections

    try:
        return validated_sections(DEPLOY_SECTIONS, parameters, "deployment_pipeline")
    except ValueError as invalid:
        raise click.ClickException(f"{config_file}: {invalid}") from None


def undeploy(parameters: dict) -> None:
    """Delete the AzureML online endpoint of the chosen model, and exit."""
    from pipelines.azureml_endpoint import delete_online_endpoint
    from pipelines.deployment import choose_model

    settings = parameters["deployment"]
    if settings.target != "azureml":
        raise click.UsageError(
            f"undeploy deletes an AzureML online endpoint (deployment.target: azureml), and "
            f"the target is {settings.target}: use --stack azure or a --config that sets it."
        )
    try:
        name, chosen = choose_model(parameters["model"])
        click.echo(f"Model: {name} ({chosen})")
        click.echo(delete_online_endpoint(name, settings))
    except (LookupError, ValueError) as error:
        click.secho(str(error), fg="red", err=True)
        sys.exit(1)
    sys.exit(0)


def run_pipeline(
    client: Client, pipeline: Pipeline, parameters: dict, enable_cache: bool, run_options: dict
) -> tuple[PipelineRunResponse, str | None]:
    """Run a pipeline on the active stack: its run, and the error that stopped it, if any.

    Raises:
        click.ClickException: No run was created (e.g. the image could not be built or the
            orchestrator refused the submission).
    """
    previous_run = latest_run(client, pipeline.name)
    error = None
    try:
        pipeline.with_options(enable_cache=enable_cache, **run_options)(**parameters)
    except Exception as exception:  # noqa: BLE001 - reported in the summary and the exit code
        error = f"{type(exception).__name__}: {exception}"
    run = latest_run(client, pipeline.name)
    if run is None or (previous_run is not None and run.id == previous_run.id):
        raise click.ClickException(f"No run was created. {error or ''}".strip())
    return run, error


def register_schedule(
    client: Client,
    pipeline: Pipeline,
    parameters: dict,
    enable_cache: bool,
    run_options: dict,
    cron: str,
) -> None:
    """Register a cron schedule of `pipeline` with the stack's orchestrator, and exit.

    Raises:
        click.ClickException: The stack's orchestrator cannot schedule runs, or refused it.
    """
    from zenml.config.schedule import Schedule

    orchestrator = client.active_stack.orchestrator
    if not orchestrator.config.is_schedulable:
        raise click.ClickException(
            f"--schedule: the orchestrator of stack '{client.active_stack.name}' "
            f"({orchestrator.flavor}) cannot schedule runs. Use a stack whose orchestrator "
            "can (e.g. --stack azure), or run `python run.py` from cron or a CI schedule."
        )
    name = f"{pipeline.name}-{cron}".replace(" ", "_").replace("*", "x").replace("/", "-")
    options = run_options | {"schedule": Schedule(name=name, cron_expression=cron)}
    try:
        pipeline.with_options(enable_cache=enable_cache, **options)(**parameters)
    except Exception as exception:  # noqa: BLE001 - the orchestrator's reason, said plainly
        raise click.ClickException(
            f"--schedule: registering the schedule failed: {type(exception).__name__}: {exception}"
        ) from None
    click.echo(
        f"Scheduled {pipeline.name} on stack {client.active_stack.name}: cron '{cron}' "
        f"(UTC), as schedule {name}; its orchestrator starts the runs."
    )
    sys.exit(0)


def monitor(
    client: Client,
    parameters: dict,
    enable_cache: bool,
    run_options: dict,
    summary_file: Path | None,
) -> None:
    """Run the monitoring pipeline, print its verdict, retrain on drift if asked to, and exit."""
    from pipelines.monitoring import monitoring_pipeline
    from pipelines.run_summary import summarize_run
    from stackport.core.names import Artifact, Step

    run, error = run_pipeline(client, monitoring_pipeline, parameters, enable_cache, run_options)
    run_summary = summarize_run(run, error=error)
    outputs = client.get_pipeline_run(run.id).steps.get(Step.DETECT_DRIFT)
    outputs = outputs.outputs.get(Artifact.DRIFT_SUMMARY) if outputs is not None else None
    drift = outputs[0].load() if outputs else None
    summary = {
        key: run_summary[key]
        for key in ("run_id", "run_name", "pipeline", "status", "stack", "seconds", "error")
    }
    summary |= {"model": None, "drift_detected": None, "drifted_features": [], "records": 0}
    summary |= {"window": None, "retrain": None}
    click.echo(f"\nRun {summary['run_name']}: {summary['status']} ({summary['seconds']} s)")
    if drift is None:
        click.secho(
            summary["error"] or "The monitoring run produced no verdict.", fg="red", err=True
        )
    else:
        summary |= {"model": {"name": drift.model_name, "version": drift.model_version}}
        summary |= drift.verdict_fields()
        click.echo(f"Model: {drift.model_name} version {drift.model_version}")
        click.echo(f"Drift: {drift.message}")
        monitor_settings = parameters["monitor"]
        if drift.drift_detected and monitor_settings.retrain_on_drift:
            summary["retrain"] = retrain(client, drift, run.name, monitor_settings, run_options)
    click.echo(
        "Report: the drift_report artifact of detect_drift in the dashboard (docs/monitoring.md)"
    )
    if summary_file:
        summary_file.write_text(json.dumps(summary, indent=2))
        click.echo(f"Summary written to {summary_file}")
    sys.exit(0 if summary["error"] is None else 1)


def retrain(
    client: Client,
    drift: DriftSummary,
    monitor_run: str,
    settings: MonitorSettings,
    run_options: dict,
) -> dict:
    """Start the training pipeline with `settings.train_config`, recording why on its run.

    Returns:
        The training run's summary (`summarize_run`).
    """
    from zenml import log_metadata

    from pipelines.monitoring import RETRAIN_REASON_KEY, RETRAIN_TAG, retrain_reason
    from pipelines.run_parameters import validated_parameters
    from pipelines.run_summary import summarize_run
    from pipelines.training import training_pipeline

    path = Path(settings.train_config)
    path = path if path.is_absolute() else REPO_ROOT / path
    config = yaml.safe_load(path.read_text())
    try:
        parameters = validated_parameters(training_pipeline, config.get("parameters", {}))
    except ValueError as invalid:
        raise click.ClickException(f"monitor.train_config {path}: {invalid}") from None
    click.echo(
        f"Drift detected: starting {training_pipeline.name} on {parameters['data'].source} "
        f"({path.name})"
    )
    enable_cache = config.get("enable_cache", True)
    options = run_options | {"tags": [RETRAIN_TAG]}
    run, error = run_pipeline(client, training_pipeline, parameters, enable_cache, options)
    log_metadata(
        {RETRAIN_REASON_KEY: retrain_reason(drift, monitor_run)}, run_id_name_or_prefix=run.id
    )
    summary = summarize_run(run, error=error)
    report(summary)
    return summary


def deploy(parameters: dict, enable_cache: bool, run_options: dict) -> None:
    """Choose the model version, run the deployment pipeline, print the deployment, and exit."""
    from pipelines.deployment import (
        DeploymentFailedError,
        choose_model,
        resolve_deployable,
        run_deployment,
    )
    from stackport.serving.deployment import EndpointDeployment, endpoint_usage, usage

    selection = parameters["model"]
    try:
        name, chosen = choose_model(selection)
        click.echo(f"Model: {name} ({chosen}), version {selection.version}")
        deployable = resolve_deployable(name, selection.version)
        deployment = run_deployment(
            deployable,
            parameters["service"],
            parameters["deployment"],
            enable_cache=enable_cache,
            run_options=run_options,
        )
    except (LookupError, DeploymentFailedError) as error:
        click.secho(str(error), fg="red", err=True)
        sys.exit(1)
    if isinstance(deployment, EndpointDeployment):
        click.echo(endpoint_usage(deployment))
    else:
        click.echo(usage(deployment))
    sys.exit(0)


def list_data(context: click.Context) -> None:
    """Print the bundled data sets and exit (`--list-data`)."""
    from stackport.data.bundled import data_cache, dataset_table

    columns = ["data set", "task", "size", "labels", "licence", "here"]
    rows = [columns, *dataset_table()]
    widths = [max(len(row[index]) for row in rows) for index in range(len(columns))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo("  ".join(cells).rstrip())
    click.echo(f"Data cache: {data_cache()} (STACKPORT_DATA_CACHE)")
    context.exit(0)


def fetch_data(context: click.Context) -> None:
    """Fetch the bundled data sets into the data cache and exit (`--fetch-data`)."""
    from stackport.data.bundled import DataFetchError, DataIntegrityError, fetch_bundled

    try:
        for line in fetch_bundled():
            click.echo(line)
    except (DataFetchError, DataIntegrityError) as error:
        raise click.ClickException(str(error)) from None
    context.exit(0)


def latest_run(client: Client, pipeline_name: str) -> PipelineRunResponse | None:
    """The pipeline's newest run, or None if it has none."""
    runs = client.list_pipeline_runs(pipeline_name=pipeline_name, sort_by="desc:created", size=1)
    return runs.items[0] if runs.items else None


def apply_overrides(parameters: dict, overrides: dict[tuple[str, str], object]) -> dict:
    """Copy of `parameters` with each non-None override set at its (section, key)."""
    merged = copy.deepcopy(parameters)
    for (section, key), value in overrides.items():
        if value is not None:
            merged.setdefault(section, {})[key] = value
    return merged


def stack_config(stack_name: str) -> dict:
    """`configs/stacks/<stack>.yaml`, or nothing when the stack has none."""
    path = STACK_CONFIGS_DIR / f"{stack_name}.yaml"
    return yaml.safe_load(path.read_text()) if path.is_file() else {}


def stack_deploy_parameters(stack_name: str) -> dict:
    """The deployment settings a stack's configuration sets (its `deploy` section)."""
    return stack_config(stack_name).get("deploy", {})


def merged(base: dict, override: dict) -> dict:
    """`base` with `override`'s keys set over it, nested mappings merged key by key."""
    result = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def refuse_image_without_pipeline(image: str | None, settings: DeploymentSettings) -> None:
    """`--image` names the image the deployment pipeline's steps run in; azureml runs none.

    Raises:
        click.UsageError: `image` is given and `deployment.target` is azureml.
    """
    if image and settings.target == "azureml":
        raise click.UsageError(
            "--image: deployment.target azureml runs no pipeline (the endpoint's environment "
            "is deployment.azureml.base_image with the scoring packages). To build the bento "
            "on the stack in that image and serve it here, pass a --config that sets "
            "deployment.target: local (or container)."
        )


def stack_run_options(stack_name: str, image: str | None) -> dict:
    """Pipeline options for runs on a stack, from `configs/stacks/<stack>.yaml` if it exists.

    When the options hold Docker settings (the steps run in containers), the image's
    requirements are pyproject.toml's dependencies, and `image` replaces the build.

    Args:
        stack_name: The active stack.
        image: A prebuilt image to run the steps in, or None to build one.

    Returns:
        Keyword arguments of `Pipeline.with_options`.

    Raises:
        click.UsageError: If `image` is given for a stack whose steps run in no container.
    """
    options = stack_config(stack_name)
    options.pop("deploy", None)
    docker = options.get("settings", {}).get("docker")
    if docker is None:
        if image:
            raise click.UsageError(
                f"--image: the steps of stack '{stack_name}' run in no container."
            )
        return options
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    docker["requirements"] = pyproject["project"]["dependencies"]
    if image:
        docker.update(parent_image=image, skip_build=True)
    return options


def report_locations(client: Client, summary: dict) -> None:
    """Where the run's artifacts went and how to look at the run in the dashboard."""
    from zenml.enums import StoreType

    click.echo(f"Artifacts: {client.active_stack.artifact_store.path} (URIs: --summary)")
    if client.zen_store.type == StoreType.REST:
        click.echo(f"Dashboard: {client.zen_store.url} (run {summary['run_name']})")
    else:
        click.echo("Dashboard: run `zenml login --local` and open the run (docs/dashboard.md)")


def report(summary: dict) -> None:
    """Print the end of a run: status, model version, metrics beside the baseline."""
    click.echo(f"\nRun {summary['run_name']}: {summary['status']} ({summary['seconds']} s)")
    for name, timing in summary["steps"].items():
        took = "cached" if timing["cached"] else f"{timing['seconds']} s, {timing['status']}"
        click.echo(f"  {name}: {took}")
    if summary["error"]:
        click.secho(summary["error"], fg="red", err=True)
        return
    model = summary["model"]
    click.echo(f"Model: {model['name']} version {model['version']}")
    for name, value in summary["metrics"].items():
        baseline = summary["baseline_metrics"].get(name)
        beside = f"   (baseline: {baseline:.4f})" if baseline is not None else ""
        click.echo(f"  test {name}: {value:.4f}{beside}")
    promotion = summary.get("promotion")
    if promotion is not None:
        verdict = f"promoted to {promotion['stage']}" if promotion["promoted"] else "not promoted"
        click.echo(f"Promotion: {verdict} ({promotion['reason']})")
        if promotion["promoted"]:
            click.echo("Next: python run.py --pipeline deploy")
        else:
            click.echo(
                f"Next: python run.py --pipeline deploy --model-name {model['name']} "
                f"--model-version {model['version']}   (serves it anyway)"
            )


if __name__ == "__main__":
    main()
