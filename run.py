"""Command line entry point: run Stackport's pipelines on a ZenML stack."""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path

import click
import yaml

# Everything loads from local paths or installed packages: never reach for a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from textmodels.tasks import Task  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent
DEFAULT_CONFIGS = {"train": REPO_ROOT / "configs" / "train.yaml"}
LOCAL_STACK = "local"


EXAMPLES = """\b
Examples:
  python run.py --pipeline train
  python run.py --data reviews.csv --text-column review --label-column stars
  python run.py --data folder-with-train-validation-test/ --summary summary.json
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
    help="Which pipeline to run. train: load → validate → split → tokenize → train → "
    "evaluate → register.",
)
@click.option(
    "--stack",
    default=None,
    help="A stack defined under stacks/ (registered and activated if needed) or any registered "
    "ZenML stack. Default: the active stack, or the `local` stack when ZenML's bare `default` "
    "stack is active.",
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
    help="CSV, JSONL or Parquet file, or a folder with train/validation/test files; a local "
    "path or an fsspec URI. Default: the bundled BBC News corpus.",
)
@click.option(
    "--task",
    type=click.Choice([task.value for task in Task]),
    default=None,
    help="What to train. Default: from the config (classification).",
)
@click.option("--text-column", default=None, help="Column holding the text. Default: text.")
@click.option("--label-column", default=None, help="Column holding the label. Default: label.")
@click.option(
    "--model",
    "base_model",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Local Hugging Face model folder to fine-tune. Default: the bundled MiniLM-L6.",
)
@click.option("--no-cache", is_flag=True, help="Run every step again instead of reusing results.")
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
    config_file: Path | None,
    data: str | None,
    task: str | None,
    text_column: str | None,
    label_column: str | None,
    base_model: str | None,
    no_cache: bool,
    summary_file: Path | None,
) -> None:
    """Fine-tune a transformer text model with typed ZenML pipelines."""
    config = yaml.safe_load((config_file or DEFAULT_CONFIGS[pipeline_name]).read_text())
    parameters = apply_overrides(
        config.get("parameters", {}),
        {
            ("data", "source"): data,
            ("data", "task"): task,
            ("data", "text_column"): text_column,
            ("data", "label_column"): label_column,
            ("model", "base_model"): str(Path(base_model).resolve()) if base_model else None,
        },
    )
    enable_cache = config.get("enable_cache", True) and not no_cache

    from zenml.client import Client

    from pipelines.run_summary import summarize_run
    from pipelines.training import training_pipeline
    from stacks.registration import activate_stack, defined_stack_names

    client = Client()
    if stack is None and client.active_stack_model.name == "default":
        stack = LOCAL_STACK
    if stack in defined_stack_names():
        activate_stack(stack)
    elif stack is not None:
        client.activate_stack(stack)
    click.echo(f"Stack: {client.active_stack_model.name}")

    error = None
    try:
        training_pipeline.with_options(enable_cache=enable_cache)(**parameters)
    except Exception as exception:  # noqa: BLE001 - reported in the summary and the exit code
        error = f"{type(exception).__name__}: {exception}"
    run = client.get_pipeline("training_pipeline").last_run
    summary = summarize_run(run, error=error)
    report(summary)
    if summary_file:
        summary_file.write_text(json.dumps(summary, indent=2))
        click.echo(f"Summary written to {summary_file}")
    sys.exit(0 if error is None else 1)


def apply_overrides(parameters: dict, overrides: dict[tuple[str, str], object]) -> dict:
    """Copy of `parameters` with each non-None override set at its (section, key)."""
    merged = copy.deepcopy(parameters)
    for (section, key), value in overrides.items():
        if value is not None:
            merged.setdefault(section, {})[key] = value
    return merged


def report(summary: dict) -> None:
    """Print the end of a run: status, model version, metrics beside the baseline."""
    click.echo(f"\nRun {summary['run_name']}: {summary['status']}")
    if summary["error"]:
        click.secho(summary["error"], fg="red", err=True)
        return
    model = summary["model"]
    click.echo(f"Model: {model['name']} version {model['version']}")
    for name, value in summary["metrics"].items():
        baseline = summary["baseline_metrics"].get(name)
        click.echo(f"  test {name}: {value:.4f}   (TF-IDF baseline: {baseline:.4f})")


if __name__ == "__main__":
    main()
