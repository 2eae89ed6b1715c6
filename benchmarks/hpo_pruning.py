"""Measure what pruning saves: the same Optuna budget with and without a pruner.

Runs one study per pruner on the bundled BBC News data and MiniLM-L6 (or `--model`), with the
same seed, trials and search space, and prints a markdown table: trials completed and pruned,
epochs trained, wall time spent in trials, best validation macro-F1.

    .venv/bin/python benchmarks/hpo_pruning.py --trials 6
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import click

from stackport.core.offline import stay_offline  # noqa: E402

# Everything loads from local paths or installed packages: never reach for a model hub.
stay_offline()

from transformers import AutoTokenizer  # noqa: E402

from stackport.core.settings import (  # noqa: E402
    HpoSettings,
    IntRange,
    SearchSpace,
    SplitSettings,  # noqa: E402
    TrainingSettings,  # noqa: E402
)
from stackport.data.bundled import read_bbc_news  # noqa: E402
from stackport.data.splitting import split_dataset  # noqa: E402
from stackport.data.tokenization import tokenize_dataset  # noqa: E402
from stackport.training.hpo import run_study  # noqa: E402
from stackport.training.model import resolve_base_model  # noqa: E402


@click.command()
@click.option("--trials", default=6, show_default=True, help="Trials per study.")
@click.option("--max-epochs", default=3, show_default=True, help="Epochs a trial may sample.")
@click.option("--max-length", default=64, show_default=True, help="Tokens per article.")
@click.option("--train-fraction", default=0.3, show_default=True, help="Share of train/trial.")
@click.option("--pruners", default="hyperband,none", show_default=True, help="Comma-separated.")
@click.option("--model", "model_path", default=None, help="Local HF model folder (default MiniLM).")
def main(
    trials: int,
    max_epochs: int,
    max_length: int,
    train_fraction: float,
    pruners: str,
    model_path: str | None,
) -> None:
    """Run one study per pruner on the same data and budget and print the comparison."""
    base_model = resolve_base_model(model_path)
    frame, _ = read_bbc_news()
    splits = split_dataset(frame, "text", "label", SplitSettings())
    dataset = tokenize_dataset(splits, AutoTokenizer.from_pretrained(base_model), max_length)
    rows = []
    for pruner in pruners.split(","):
        with tempfile.TemporaryDirectory() as workdir:
            settings = HpoSettings(
                n_trials=trials,
                study_name=f"pruning-{pruner}",
                storage=f"sqlite:///{Path(workdir) / 'optuna.db'}",
                pruner=pruner,
                trial_train_fraction=train_fraction,
                search_space=SearchSpace(epochs=IntRange(low=1, high=max_epochs)),
            )
            started = time.monotonic()
            report = run_study(dataset, base_model, TrainingSettings(), settings, Path(workdir))
            seconds = time.monotonic() - started
        counts = report.counts()
        epochs = sum(len(trial.intermediate_values) for trial in report.trials)
        rows.append(
            f"| {pruner} | {counts.get('COMPLETE', 0)} | {counts.get('PRUNED', 0)} | {epochs} "
            f"| {seconds:.0f} | {report.best_value or float('nan'):.4f} |"
        )
    click.echo(
        f"\n{trials} trials, epochs 1-{max_epochs}, {max_length} tokens, "
        f"{train_fraction:.0%} of {len(splits['train'])} training articles per trial\n"
    )
    click.echo("| pruner | completed | pruned | epochs trained | seconds | best val macro-F1 |")
    click.echo("| --- | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        click.echo(row)


if __name__ == "__main__":
    main()
