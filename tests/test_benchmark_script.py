"""`benchmarks/inference.py` end to end on the tiny BERT, with a handful of texts."""

from pathlib import Path

from click.testing import CliRunner

from benchmarks.inference import main
from stackport.core.settings import OnnxVariant
from tests.helpers import NER_SENTENCES

SMALL_RUN = ["--max-length", "64", "--texts", "8", "--latency-texts", "2", "--batch-size", "4"]
SMALL_RUN += ["--repeats", "1"]
RUNTIMES = ["| pytorch_fp32", *(f"| onnx_{variant}" for variant in OnnxVariant)]


def table_rows(output: str) -> list[str]:
    """The first cell of every row of the printed table."""
    table = [line for line in output.splitlines() if line.startswith("| ")]
    return [row.split(" | ")[0] for row in table[2:]]


def test_script_exports_quantizes_and_prints_the_table(tiny_bert_path: Path, tmp_path: Path):
    arguments = [str(tiny_bert_path), "--data", "bundled:bbc-news", *SMALL_RUN]
    result = CliRunner().invoke(
        main, [*arguments, "--output", str(tmp_path)], catch_exceptions=False
    )

    assert result.exit_code == 0, result.output
    assert "has no head for bundled:bbc-news: using a random one (seed 0)" in result.output
    assert "ONNX opset 18 export: max |logit difference|" in result.output
    assert "ONNX variants: deployable: fp32, fp32-optimized" in result.output
    assert "macro-F1" in result.output
    assert table_rows(result.output) == RUNTIMES
    assert {path.name for path in tmp_path.iterdir()} == {str(variant) for variant in OnnxVariant}


def test_script_benchmarks_a_ner_model_on_its_data(tiny_bert_path: Path, tmp_path: Path):
    arguments = [str(tiny_bert_path), "--task", "ner", "--data", str(NER_SENTENCES), *SMALL_RUN]
    result = CliRunner().invoke(main, arguments, catch_exceptions=False)

    assert result.exit_code == 0, result.output
    assert f"has no head for {NER_SENTENCES}: using a random one" in result.output
    assert "ONNX variants: deployable: fp32, fp32-optimized" in result.output
    assert "| runtime | size (MB) | entity-F1 |" in result.output
    assert table_rows(result.output) == RUNTIMES


def test_script_needs_data_of_the_task(tiny_bert_path: Path):
    result = CliRunner().invoke(main, [str(tiny_bert_path), "--task", "multilabel"])

    assert result.exit_code != 0
    assert "is a classification data set, not one for the multilabel task" in result.output
