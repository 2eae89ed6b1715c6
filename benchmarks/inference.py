"""Benchmark a saved model outside ZenML: export every ONNX variant, gate, time, print a table.

Uses the same functions as the pipeline's convert, quantize and benchmark steps, on the test
split of the task's data (the pipeline's default split): `--data` as `run.py --data` takes it
(default: the default run's `bundled:rotten-tomatoes`). The model folder is a
`FineTunedModel.save()` folder or any Hugging Face model folder; a folder whose labels are not
the data's gets a randomly initialised head for the task (seeded), which is fine for speed and
size but makes the metric meaningless.

    .venv/bin/python benchmarks/inference.py MODEL_DIR [--variants] [--repeats 3]
    .venv/bin/python benchmarks/inference.py MODEL_DIR --task ner --data sentences.conll
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

from stackport.core.offline import stay_offline

# Everything loads from local paths or installed packages: never reach for a model hub.
stay_offline()

import click  # noqa: E402
import torch  # noqa: E402

from stackport.core.settings import (  # noqa: E402
    BenchmarkSettings,
    DataSettings,
    ExportSettings,
    OnnxVariant,
    QuantizationSettings,
    SplitSettings,
)
from stackport.core.tasks import DEFAULT_TASK, task_names  # noqa: E402
from stackport.data.bundled import read_dataset  # noqa: E402
from stackport.data.splitting import split_dataset  # noqa: E402
from stackport.inference.predictor import available_cores  # noqa: E402
from stackport.onnx.benchmark import model_runtimes, onnx_runtime, run_benchmark  # noqa: E402
from stackport.onnx.export import (  # noqa: E402
    check_parity,
    export_to_onnx,
    optimize_onnx_model,
    parity_texts,
)
from stackport.onnx.quantization import gate_variants, quantize_onnx_model  # noqa: E402
from stackport.tasks import training_plugin  # noqa: E402
from stackport.training.model import FineTunedModel  # noqa: E402

HEAD_SEED = 0


def load_model(folder: Path, task: str, label_names: list[str]) -> tuple[FineTunedModel, bool]:
    """The model in `folder` for `task`, and whether its head had to be made up.

    A folder whose labels differ from `label_names` gets a new, seeded random head (and, for
    multilabel, no tuned thresholds: 0.5 for every label).
    """
    model = FineTunedModel.load(folder, task)
    if model.label_names == label_names:
        return model, False
    torch.manual_seed(HEAD_SEED)
    new_head = FineTunedModel.with_new_head(folder, task, label_names, ignore_mismatched_sizes=True)
    new_head.model.config.label_thresholds = None
    return new_head, True


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--task", type=click.Choice(task_names()), default=DEFAULT_TASK, show_default=True)
@click.option("--data", default=DataSettings().source, show_default=True, help="The task's data.")
@click.option("--text-column", default="text", show_default=True)
@click.option("--label-column", default="label", show_default=True)
@click.option("--max-length", default=128, show_default=True, help="Tokens per window.")
@click.option(
    "--max-windows",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Windows of a long text a classifier reads (the model's `model.max_windows`).",
)
@click.option("--texts", default=256, show_default=True, help="Test texts sampled (at most).")
@click.option("--latency-texts", default=64, show_default=True, help="Timed at batch 1.")
@click.option("--batch-size", default=32, show_default=True)
@click.option("--repeats", default=3, show_default=True)
@click.option("--threads", type=int, default=None, help="Default: all cores.")
@click.option(
    "--variants",
    is_flag=True,
    help="Also time dynamic int8 with every per-channel/weight-type combination.",
)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the ONNX models here. Default: a temporary directory.",
)
def main(
    model_dir: Path,
    task: str,
    data: str,
    text_column: str,
    label_column: str,
    max_length: int,
    max_windows: int,
    texts: int,
    latency_texts: int,
    batch_size: int,
    repeats: int,
    threads: int | None,
    variants: bool,
    output: Path | None,
) -> None:
    """Export MODEL_DIR to ONNX with every variant; time them and PyTorch fp32; gate them."""
    plugin = training_plugin(task)
    settings = DataSettings(
        source=data, task=task, text_column=text_column, label_column=label_column
    )
    frame, load_report = read_dataset(settings, plugin.read)
    if load_report.problems:
        raise click.ClickException("; ".join(load_report.problems))
    splits = split_dataset(frame, text_column, label_column, SplitSettings(), plugin)
    label_names = plugin.label_names([split["label"] for split in splits.values()])
    model, random_head = load_model(model_dir, task, label_names)
    if random_head:
        click.echo(f"{model_dir} has no head for {data}: using a random one (seed {HEAD_SEED}).")
    workdir = output or Path(tempfile.mkdtemp(prefix="stackport-benchmark-"))
    export = ExportSettings()
    quantization = QuantizationSettings()
    benchmark = BenchmarkSettings(
        max_texts=texts,
        latency_texts=latency_texts,
        batch_size=batch_size,
        repeats=repeats,
        threads=threads,
    )
    train_texts = splits["train"]["text"].tolist()

    fp32 = export_to_onnx(model, workdir / "fp32", max_length, export.opset, max_windows)
    validation_texts = parity_texts(splits["validation"], export.parity_samples)
    difference = check_parity(model, fp32, validation_texts, export.parity_tolerance)
    click.echo(f"ONNX opset {fp32.opset} export: max |logit difference| {difference:.3g}")
    built = [
        optimize_onnx_model(fp32, model.model.config, workdir / "fp32-optimized", 2),
        *(
            quantize_onnx_model(fp32, workdir / variant, quantization, variant, train_texts)
            for variant in (OnnxVariant.DYNAMIC_INT8, OnnxVariant.STATIC_INT8)
        ),
    ]
    gate = gate_variants(fp32, built, splits["validation"], splits["test"], quantization)
    click.echo(f"ONNX variants: {gate.summary}")

    runtimes = model_runtimes(model, [fp32, *built], benchmark)
    if variants:
        cores = threads or available_cores()
        for per_channel, weight_type in itertools.product((False, True), ("QInt8", "QUInt8")):
            name = f"dynamic_{'per_channel' if per_channel else 'per_tensor'}_{weight_type}"
            options = QuantizationSettings(per_channel=per_channel, weight_type=weight_type)
            variant = quantize_onnx_model(fp32, workdir / name, options)
            runtimes.append(onnx_runtime(name, variant, cores))
    report = run_benchmark(runtimes, splits["test"], task, label_names, max_length, benchmark)
    click.echo(f"\nONNX models in {workdir}\n")
    click.echo(report.markdown())


if __name__ == "__main__":
    main()
