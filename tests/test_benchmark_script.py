"""`benchmarks/inference.py` end to end on the tiny BERT, with a handful of texts."""

from pathlib import Path

from click.testing import CliRunner

from benchmarks.inference import main


def test_script_exports_quantizes_and_prints_the_table(tiny_bert_path: Path, tmp_path: Path):
    arguments = [str(tiny_bert_path), "--max-length", "64", "--texts", "8", "--latency-texts"]
    arguments += ["2", "--batch-size", "4", "--repeats", "1", "--output", str(tmp_path)]
    result = CliRunner().invoke(main, arguments, catch_exceptions=False)

    assert result.exit_code == 0, result.output
    assert "has no BBC News head: using a random one (seed 0)" in result.output
    assert "ONNX opset 18 export: max |logit difference|" in result.output
    assert "Deployable: " in result.output
    table = [line for line in result.output.splitlines() if line.startswith("| ")]
    assert [row.split(" | ")[0] for row in table[2:]] == [
        "| pytorch_fp32",
        "| onnx_fp32",
        "| onnx_int8",
    ]
    assert {path.name for path in tmp_path.iterdir()} == {"fp32", "int8"}
