"""`benchmarks/packing.py` on the tiny BERT: packed rows compute what the stock graph does."""

from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from click.testing import CliRunner

from benchmarks.packing import each_alone, export_packed, main, packed_inputs
from stackport.inference.predictor import OnnxPredictor
from stackport.onnx.export import export_to_onnx
from stackport.training.model import FineTunedModel

SENTENCES = [
    "A quiet film.",
    "The plot wanders, but the two leads carry every scene they share.",
    "Rotten.",
    "It is long, loud and, in the end, oddly moving.",
    "Fresh and funny from its first minute to its last.",
]


def test_packed_logits_are_each_sentence_alone(tiny_bert_path: Path, tmp_path: Path):
    torch.manual_seed(0)
    model = FineTunedModel.with_new_head(tiny_bert_path, "classification", ["a", "b", "c"])
    predictor = OnnxPredictor(export_to_onnx(model, tmp_path / "stock", 64), threads=1)
    export_packed(model, tmp_path / "packed.onnx")
    packed = ort.InferenceSession(str(tmp_path / "packed.onnx"), providers=["CPUExecutionProvider"])
    inputs = predictor.encode(SENTENCES).inputs
    lengths = inputs["attention_mask"].sum(axis=1)
    assert len(set(lengths.tolist())) > 1  # padding to pack away

    row = packed_inputs(inputs)
    logits = packed.run(None, row)[0]

    assert row["input_ids"].shape == (1, lengths.sum())
    np.testing.assert_allclose(logits, each_alone(predictor, inputs), atol=1e-4)
    np.testing.assert_allclose(logits, predictor.run_rows(inputs), atol=1e-4)


def test_script_prints_every_way_for_every_size(tiny_bert_path: Path):
    arguments = ["--model", str(tiny_bert_path), "--sizes", "1,3", "--texts", "6"]
    result = CliRunner().invoke(main, [*arguments, "--rounds", "1"], catch_exceptions=False)

    assert result.exit_code == 0, result.output
    rows = [line.split(" | ")[:2] for line in result.output.splitlines() if line.startswith("| ")]
    assert rows[2:] == [
        ["| fp32", "1"],
        ["| fp32", "3"],
        ["| dynamic-int8", "1"],
        ["| dynamic-int8", "3"],
    ]
