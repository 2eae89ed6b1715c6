"""Round trips, metadata and visualizations of the Stackport materializers."""

from datetime import datetime
from pathlib import Path
from uuid import uuid4

import optuna
import pandas as pd
import pyarrow as pa
import pytest
import torch
from transformers import AutoTokenizer
from zenml.artifact_stores import LocalArtifactStore, LocalArtifactStoreConfig
from zenml.enums import StackComponentType, VisualizationType
from zenml.materializers.materializer_registry import materializer_registry

from materializers.base import ArtifactIntegrityError
from materializers.benchmark_report import BenchmarkReportMaterializer
from materializers.data_frame import DataFrameMaterializer
from materializers.evaluation_report import EvaluationReportMaterializer
from materializers.fine_tuned_model import FineTunedModelMaterializer
from materializers.onnx_model import OnnxModelMaterializer
from materializers.study_report import StudyReportMaterializer
from materializers.tokenized_dataset import TokenizedDatasetMaterializer
from stackport.data.tokenization import TokenizedDataset, tokenize_dataset, tokenized_schema
from stackport.evaluation.report import EvaluationReport, classification_report
from stackport.inference.onnx_model import OnnxModel
from stackport.inference.predictor import OnnxPredictor
from stackport.onnx.benchmark import BenchmarkReport, RuntimeBenchmark
from stackport.onnx.export import export_to_onnx
from stackport.tasks import training_plugin
from stackport.training.hpo import StudyReport, TrialRecord
from stackport.training.model import FineTunedModel

MODEL_LABELS = ["business", "sport", "tech"]
PICKLE_SUFFIXES = {".bin", ".pkl", ".pickle", ".pt", ".pth", ".ckpt"}


@pytest.fixture
def artifact_store(tmp_path: Path) -> LocalArtifactStore:
    """A local artifact store rooted in the test's temporary directory, outside any stack."""
    now = datetime.now()
    return LocalArtifactStore(
        name="test-store",
        id=uuid4(),
        config=LocalArtifactStoreConfig(path=str(tmp_path / "store")),
        flavor="local",
        type=StackComponentType.ARTIFACT_STORE,
        user=None,
        created=now,
        updated=now,
    )


def artifact_uri(store: LocalArtifactStore, name: str) -> str:
    uri = f"{store.path}/{name}"
    store.makedirs(uri)
    return uri


def file_names(uri: str) -> set[str]:
    return {path.name for path in Path(uri).iterdir()}


@pytest.fixture(scope="module")
def tokenized_dataset(bbc_news: pd.DataFrame, tiny_bert_path: Path) -> TokenizedDataset:
    """Three articles per topic in every split (bbc_slice loses `label` under pandas 3)."""
    articles = bbc_news.groupby("label").head(9)
    split_of_article = articles.groupby("label").cumcount() % 3
    splits = {
        name: articles[split_of_article == index]
        for index, name in enumerate(["train", "validation", "test"])
    }
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_path)
    plugin = training_plugin("classification")
    return tokenize_dataset(splits, tokenizer, "classification", plugin, max_length=64)


@pytest.fixture(scope="module")
def fine_tuned_model(tiny_bert_path: Path) -> FineTunedModel:
    return FineTunedModel.with_new_head(tiny_bert_path, "classification", MODEL_LABELS)


@pytest.fixture
def evaluation_report() -> EvaluationReport:
    return classification_report(
        model_name="fine-tuned",
        split="test",
        label_names=MODEL_LABELS,
        true_ids=[0, 0, 1, 1, 2, 2, 2],
        predicted_ids=[0, 1, 1, 1, 2, 0, 2],
    )


@pytest.fixture(scope="module")
def onnx_model(fine_tuned_model: FineTunedModel, tmp_path_factory) -> OnnxModel:
    return export_to_onnx(fine_tuned_model, tmp_path_factory.mktemp("onnx"), max_length=32)


@pytest.fixture
def benchmark_report() -> BenchmarkReport:
    def figures(runtime: str, latency: float, throughput: float, size: int) -> RuntimeBenchmark:
        return RuntimeBenchmark(
            runtime=runtime,
            latency_ms_p50=latency,
            latency_ms_p95=1.5 * latency,
            batch_latency_ms_p50=32000 / throughput,
            throughput=throughput,
            macro_f1=0.95,
            size_bytes=size,
            metrics={"accuracy": 0.96, "macro_f1": 0.95},
        )

    return BenchmarkReport(
        texts=200,
        latency_texts=64,
        batch_size=32,
        repeats=3,
        max_length=128,
        threads=2,
        cpu="<b>test CPU</b>",
        results=[
            figures("pytorch_fp32", 16.0, 70.0, 90_000_000),
            figures("onnx_fp32", 10.0, 100.0, 91_000_000),
            figures("onnx_int8", 5.0, 175.0, 23_000_000),
        ],
    )


def test_materializers_are_registered_for_their_types() -> None:
    assert materializer_registry[TokenizedDataset] is TokenizedDatasetMaterializer
    assert materializer_registry[FineTunedModel] is FineTunedModelMaterializer
    assert materializer_registry[OnnxModel] is OnnxModelMaterializer
    assert materializer_registry[BenchmarkReport] is BenchmarkReportMaterializer
    # EvaluationReport is a pydantic model: ours must win over ZenML's PydanticMaterializer.
    assert materializer_registry[EvaluationReport] is EvaluationReportMaterializer


def test_tokenized_dataset_round_trip(
    tokenized_dataset: TokenizedDataset, artifact_store: LocalArtifactStore
) -> None:
    uri = artifact_uri(artifact_store, "dataset")
    materializer = TokenizedDatasetMaterializer(uri, artifact_store)
    materializer.save(tokenized_dataset)

    assert file_names(uri) == {"train.arrow", "validation.arrow", "test.arrow", "dataset.json"}
    with pa.ipc.open_file(f"{uri}/train.arrow") as reader:
        assert reader.schema == tokenized_schema(pa.int64())

    loaded = materializer.load(TokenizedDataset)
    assert list(loaded.splits) == list(tokenized_dataset.splits)
    for split, table in tokenized_dataset.splits.items():
        assert loaded.splits[split].equals(table)
    assert loaded.label_names == tokenized_dataset.label_names
    assert loaded.tokenizer_fingerprint == tokenized_dataset.tokenizer_fingerprint
    assert loaded.max_length == tokenized_dataset.max_length
    assert loaded.task == "classification"


def test_tokenized_dataset_metadata(
    tokenized_dataset: TokenizedDataset, artifact_store: LocalArtifactStore
) -> None:
    materializer = TokenizedDatasetMaterializer(
        artifact_uri(artifact_store, "dataset"), artifact_store
    )
    metadata = materializer.extract_metadata(tokenized_dataset)

    assert metadata["max_length"] == 64
    assert metadata["label_names"] == tokenized_dataset.label_names
    for split, table in tokenized_dataset.splits.items():
        assert metadata[f"{split}_rows"] == table.num_rows == 15
        assert sum(metadata[f"{split}_label_counts"].values()) == table.num_rows
        # BBC articles are far longer than 64 tokens.
        assert metadata[f"{split}_truncation_rate"] == pytest.approx(1.0)


def test_tokenized_dataset_preview(
    tokenized_dataset: TokenizedDataset, artifact_store: LocalArtifactStore
) -> None:
    uri = artifact_uri(artifact_store, "dataset")
    visualizations = TokenizedDatasetMaterializer(uri, artifact_store).save_visualizations(
        tokenized_dataset
    )

    assert visualizations == {f"{uri}/preview.html": VisualizationType.HTML}
    preview = Path(uri, "preview.html").read_text()
    for split in tokenized_dataset.splits:
        assert f"<h2>{split}</h2>" in preview
    assert "truncation rate 100.0%" in preview
    first_ids = tokenized_dataset.splits["train"].column("input_ids")[0].as_py()
    assert " ".join(map(str, first_ids[:12])) + " … (+52)" in preview


def test_tokenized_dataset_preview_escapes_names(artifact_store: LocalArtifactStore) -> None:
    table = pa.table(
        {
            "input_ids": [[2, 7, 3]],
            "attention_mask": [[1, 1, 1]],
            "labels": [0],
            "num_tokens": [3],
            "example_id": [0],
        },
        schema=tokenized_schema(pa.int64()),
    )
    dataset = TokenizedDataset(
        splits={"train": table},
        label_names=["<script>alert(1)</script>"],
        tokenizer_fingerprint="0" * 64,
        max_length=8,
        task="classification",
    )
    uri = artifact_uri(artifact_store, "dataset")
    TokenizedDatasetMaterializer(uri, artifact_store).save_visualizations(dataset)

    preview = Path(uri, "preview.html").read_text()
    assert "<script>" not in preview
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in preview


def test_tokenized_dataset_rejects_split_names_that_are_paths(
    tokenized_dataset: TokenizedDataset, artifact_store: LocalArtifactStore
) -> None:
    dataset = TokenizedDataset(
        splits={"../train": tokenized_dataset.splits["train"]},
        label_names=tokenized_dataset.label_names,
        tokenizer_fingerprint=tokenized_dataset.tokenizer_fingerprint,
        max_length=tokenized_dataset.max_length,
        task=tokenized_dataset.task,
    )
    materializer = TokenizedDatasetMaterializer(
        artifact_uri(artifact_store, "dataset"), artifact_store
    )
    with pytest.raises(ValueError, match="not a valid file name"):
        materializer.save(dataset)


def test_fine_tuned_model_round_trip_writes_no_pickle(
    fine_tuned_model: FineTunedModel, artifact_store: LocalArtifactStore
) -> None:
    uri = artifact_uri(artifact_store, "model")
    materializer = FineTunedModelMaterializer(uri, artifact_store)
    materializer.save(fine_tuned_model)

    written = file_names(uri)
    assert {"model.safetensors", "config.json", "tokenizer.json", "stackport_model.json"} <= written
    assert not {Path(name).suffix for name in written} & PICKLE_SUFFIXES

    loaded = materializer.load(FineTunedModel)
    assert loaded.task == "classification"
    assert loaded.label_names == MODEL_LABELS
    expected_state = fine_tuned_model.model.state_dict()
    loaded_state = loaded.model.state_dict()
    assert loaded_state.keys() == expected_state.keys()
    for name, tensor in expected_state.items():
        assert torch.equal(loaded_state[name], tensor), name
    texts = ["Shares in the bank rose sharply.", "The striker scored twice in the final!"]
    assert loaded.tokenizer(texts)["input_ids"] == fine_tuned_model.tokenizer(texts)["input_ids"]


def test_fine_tuned_model_metadata(
    fine_tuned_model: FineTunedModel, artifact_store: LocalArtifactStore
) -> None:
    uri = artifact_uri(artifact_store, "model")
    materializer = FineTunedModelMaterializer(uri, artifact_store)
    materializer.save(fine_tuned_model)
    metadata = materializer.extract_metadata(fine_tuned_model)

    parameters = sum(parameter.numel() for parameter in fine_tuned_model.model.parameters())
    assert metadata["num_parameters"] == parameters
    assert metadata["num_labels"] == 3
    assert metadata["label_names"] == MODEL_LABELS
    assert metadata["model_type"] == "bert"
    assert metadata["architecture"] == "BertForSequenceClassification"
    assert metadata["dtype"] == "torch.float32"
    assert metadata["weights_size"] == Path(uri, "model.safetensors").stat().st_size
    assert metadata["weights_size"] > 4 * parameters * 0.99


def test_fine_tuned_model_card(
    fine_tuned_model: FineTunedModel, artifact_store: LocalArtifactStore
) -> None:
    uri = artifact_uri(artifact_store, "model")
    materializer = FineTunedModelMaterializer(uri, artifact_store)
    materializer.save(fine_tuned_model)

    assert materializer.save_visualizations(fine_tuned_model) == {
        f"{uri}/model_card.html": VisualizationType.HTML
    }
    page = Path(uri, "model_card.html").read_text()
    parameters = fine_tuned_model.model.num_parameters()
    assert "<h2>Fine-tuned model (classification)</h2>" in page
    assert f"<th>parameters</th><td>{parameters:,}</td>" in page
    assert f"<th>labels</th><td>{', '.join(MODEL_LABELS)}</td>" in page


def test_evaluation_report_round_trip_and_metadata(
    evaluation_report: EvaluationReport, artifact_store: LocalArtifactStore
) -> None:
    uri = artifact_uri(artifact_store, "report")
    materializer = EvaluationReportMaterializer(uri, artifact_store)
    materializer.save(evaluation_report)

    assert file_names(uri) == {"report.json"}
    assert materializer.load(EvaluationReport) == evaluation_report
    metadata = materializer.extract_metadata(evaluation_report)
    assert metadata == {
        "model_name": "fine-tuned",
        "split": "test",
        "accuracy": pytest.approx(5 / 7),
        "macro_f1": pytest.approx(evaluation_report.metrics["macro_f1"]),
    }
    assert all(isinstance(metadata[name], float) for name in ("accuracy", "macro_f1"))


def test_evaluation_report_visualizations(
    evaluation_report: EvaluationReport, artifact_store: LocalArtifactStore
) -> None:
    report = evaluation_report.model_copy(update={"model_name": "<b>fine-tuned</b>"})
    uri = artifact_uri(artifact_store, "report")
    visualizations = EvaluationReportMaterializer(uri, artifact_store).save_visualizations(report)

    assert visualizations == {
        f"{uri}/confusion_matrix.png": VisualizationType.IMAGE,
        f"{uri}/metrics.html": VisualizationType.HTML,
    }
    assert Path(uri, "confusion_matrix.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    page = Path(uri, "metrics.html").read_text()
    assert "<b>" not in page
    assert "&lt;b&gt;fine-tuned&lt;/b&gt; on test, macro-F1" in page
    for name in MODEL_LABELS:
        assert f"<td>{name}</td>" in page
    assert "<td>accuracy</td><td>0.7143</td>" in page


def test_onnx_model_round_trip_writes_no_pickle(
    onnx_model: OnnxModel, artifact_store: LocalArtifactStore
) -> None:
    uri = artifact_uri(artifact_store, "onnx")
    materializer = OnnxModelMaterializer(uri, artifact_store)
    materializer.save(onnx_model)

    assert file_names(uri) == {"model.onnx", "tokenizer.json", "onnx_model.json"}
    loaded = materializer.load(OnnxModel)
    assert loaded.directory != onnx_model.directory
    assert loaded.manifest() == onnx_model.manifest()
    texts = ["Shares in the bank rose sharply.", "The striker scored twice in the final!"]
    assert OnnxPredictor(loaded).predict(texts) == OnnxPredictor(onnx_model).predict(texts)


def test_tampered_onnx_model_is_refused(
    onnx_model: OnnxModel, artifact_store: LocalArtifactStore
) -> None:
    uri = artifact_uri(artifact_store, "onnx")
    materializer = OnnxModelMaterializer(uri, artifact_store)
    materializer.save(onnx_model)
    graph_file = Path(uri, "model.onnx")
    tampered = bytearray(graph_file.read_bytes())
    tampered[-100] ^= 0xFF  # one flipped byte inside the weights
    graph_file.write_bytes(bytes(tampered))

    with pytest.raises(
        ArtifactIntegrityError, match=r"artifact .* model\.onnx has sha256 .* refused"
    ):
        materializer.load(OnnxModel)


def test_onnx_model_metadata_and_summary(
    onnx_model: OnnxModel, artifact_store: LocalArtifactStore
) -> None:
    uri = artifact_uri(artifact_store, "onnx")
    materializer = OnnxModelMaterializer(uri, artifact_store)
    metadata = materializer.extract_metadata(onnx_model)
    visualizations = materializer.save_visualizations(onnx_model)

    assert metadata["opset"] == onnx_model.opset
    assert metadata["variant"] == "fp32"
    assert metadata["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert metadata["outputs"] == ["logits"]
    assert metadata["size"] == Path(onnx_model.model_path).stat().st_size
    assert metadata["sha256"] == onnx_model.file_sha256["model.onnx"]
    assert metadata["label_names"] == MODEL_LABELS
    assert visualizations == {f"{uri}/summary.html": VisualizationType.HTML}
    summary = Path(uri, "summary.html").read_text()
    assert onnx_model.file_sha256["model.onnx"] in summary
    assert "business, sport, tech" in summary


def test_benchmark_report_round_trip_metadata_and_visualizations(
    benchmark_report: BenchmarkReport, artifact_store: LocalArtifactStore
) -> None:
    uri = artifact_uri(artifact_store, "benchmark")
    materializer = BenchmarkReportMaterializer(uri, artifact_store)
    materializer.save(benchmark_report)
    visualizations = materializer.save_visualizations(benchmark_report)

    assert materializer.load(BenchmarkReport) == benchmark_report
    metadata = materializer.extract_metadata(benchmark_report)
    assert metadata["onnx_int8"]["speedup_batch1"] == pytest.approx(3.2)
    assert metadata["onnx_int8"]["speedup_batched"] == pytest.approx(2.5)
    assert metadata["pytorch_fp32"]["latency_ms_p95"] == pytest.approx(24.0)
    assert visualizations == {
        f"{uri}/benchmark.html": VisualizationType.HTML,
        f"{uri}/benchmark.png": VisualizationType.IMAGE,
    }
    assert Path(uri, "benchmark.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    page = Path(uri, "benchmark.html").read_text()
    assert "<b>" not in page
    assert "<td>onnx_int8</td><td>23.0</td><td>0.9500</td><td>5.00</td>" in page
    assert "<td>3.20x</td><td>2.50x</td>" in page


@pytest.fixture
def study_report() -> StudyReport:
    """Three trials over learning rate and depth, with each depth's latency."""
    distributions = {
        "learning_rate": optuna.distributions.FloatDistribution(1e-5, 1e-3, log=True),
        "num_layers": optuna.distributions.CategoricalDistribution([6, 4, 3]),
    }
    trials = [
        TrialRecord(
            number=number,
            state=state,
            value=value,
            params={"learning_rate": 1e-4 * (number + 1), "num_layers": layers},
            intermediate_values={} if value is None else {1: value},
            duration_seconds=2.0,
        )
        for number, (state, value, layers) in enumerate(
            [("COMPLETE", 0.818, 6), ("COMPLETE", 0.812, 4), ("PRUNED", None, 3)]
        )
    ]
    return StudyReport(
        study_name="depths-0123456789ab",
        metric="macro_f1",
        best_params=trials[0].params,
        best_value=0.818,
        trials=trials,
        distributions={
            name: optuna.distributions.distribution_to_json(distribution)
            for name, distribution in distributions.items()
        },
        latency_ms_by_num_layers={6: 10.3, 4: 7.1, 3: 5.2},
    )


def test_study_report_with_latencies_round_trips_and_plots_metric_against_latency(
    study_report: StudyReport, artifact_store: LocalArtifactStore
) -> None:
    uri = artifact_uri(artifact_store, "study")
    materializer = StudyReportMaterializer(uri, artifact_store)
    materializer.save(study_report)
    visualizations = materializer.save_visualizations(study_report)

    loaded = materializer.load(StudyReport)
    assert loaded == study_report
    assert loaded.latency_ms_by_num_layers == {6: 10.3, 4: 7.1, 3: 5.2}  # int keys again
    assert materializer.compute_content_hash(loaded) == materializer.compute_content_hash(
        study_report
    )
    metadata = materializer.extract_metadata(study_report)
    assert metadata["latency_ms_by_num_layers"] == {"6": 10.3, "4": 7.1, "3": 5.2}
    assert visualizations == {
        f"{uri}/study.html": VisualizationType.HTML,
        f"{uri}/metric_vs_latency.png": VisualizationType.IMAGE,
    }
    assert Path(uri, "metric_vs_latency.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    page = Path(uri, "study.html").read_text()
    assert "3 layers 5.2 ms, 4 layers 7.1 ms, 6 layers 10.3 ms" in page

    unmeasured = study_report.model_copy(update={"latency_ms_by_num_layers": {}})
    assert materializer.compute_content_hash(unmeasured) != materializer.compute_content_hash(
        study_report
    )
    plain_uri = artifact_uri(artifact_store, "study-without-latencies")
    plain = StudyReportMaterializer(plain_uri, artifact_store).save_visualizations(unmeasured)
    assert plain == {f"{plain_uri}/study.html": VisualizationType.HTML}
    assert "latency_ms_by_num_layers" not in materializer.extract_metadata(unmeasured)


@pytest.mark.parametrize(
    ("fixture_name", "materializer_class", "visualization_types"),
    [
        ("tokenized_dataset", TokenizedDatasetMaterializer, [VisualizationType.HTML]),
        ("fine_tuned_model", FineTunedModelMaterializer, [VisualizationType.HTML]),
        ("onnx_model", OnnxModelMaterializer, [VisualizationType.HTML]),
        (
            "benchmark_report",
            BenchmarkReportMaterializer,
            [VisualizationType.HTML, VisualizationType.IMAGE],
        ),
        (
            "evaluation_report",
            EvaluationReportMaterializer,
            [VisualizationType.IMAGE, VisualizationType.HTML],
        ),
        (
            "study_report",
            StudyReportMaterializer,
            [VisualizationType.HTML, VisualizationType.IMAGE],
        ),
    ],
)
def test_artifacts_round_trip_through_the_default_stack(
    fixture_name: str,
    materializer_class: type,
    visualization_types: list[VisualizationType],
    request: pytest.FixtureRequest,
) -> None:
    """ZenML picks our materializer, keeps all its metadata and records its visualizations."""
    from zenml import load_artifact, save_artifact

    data = request.getfixturevalue(fixture_name)
    version = save_artifact(data, name=fixture_name)

    assert version.materializer.import_path == (
        f"{materializer_class.__module__}.{materializer_class.__name__}"
    )
    expected_metadata = materializer_class(version.uri).extract_metadata(data)
    assert expected_metadata.keys() <= version.run_metadata.keys()
    assert [visualization.type for visualization in version.visualizations] == (visualization_types)
    assert isinstance(load_artifact(fixture_name), type(data))


def test_a_truncated_model_artifact_is_refused_not_loaded(
    fine_tuned_model: FineTunedModel, artifact_store: LocalArtifactStore
) -> None:
    """A write that was cut off (here: the weights file truncated on disk) is never used."""
    uri = artifact_uri(artifact_store, "model")
    FineTunedModelMaterializer(uri, artifact_store).save(fine_tuned_model)
    weights = Path(uri, "model.safetensors")
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])

    with pytest.raises(ArtifactIntegrityError, match=r"cannot be read .* It is not used"):
        FineTunedModelMaterializer(uri, artifact_store).load(FineTunedModel)


def test_an_artifact_whose_content_changed_is_refused(artifact_store: LocalArtifactStore) -> None:
    """ZenML hands the content hash recorded at save time to a step's loads: it must match."""
    uri = artifact_uri(artifact_store, "frame")
    frame = pd.DataFrame({"text": ["a", "b"], "label": ["x", "y"]})
    saver = DataFrameMaterializer(uri, artifact_store)
    saver.save(frame)
    recorded = saver.compute_content_hash(frame)
    assert recorded == DataFrameMaterializer(uri, artifact_store).compute_content_hash(frame.copy())

    loader = DataFrameMaterializer(uri, artifact_store)
    loader.expected_content_hash = recorded
    assert loader.load(pd.DataFrame).equals(frame)
    DataFrameMaterializer(uri, artifact_store).save(frame.assign(label=["x", "x"]))  # changed
    loader = DataFrameMaterializer(uri, artifact_store)
    loader.expected_content_hash = recorded
    with pytest.raises(ArtifactIntegrityError, match="does not hold what was saved"):
        loader.load(pd.DataFrame)


def test_a_frame_with_missing_values_keeps_its_hash_through_parquet(
    artifact_store: LocalArtifactStore,
) -> None:
    """A text column's NaN comes back from Parquet as None: the same content, the same hash."""
    uri = artifact_uri(artifact_store, "frame-with-nulls")
    frame = pd.DataFrame({"text": ["a", "b", "c"], "label": ["x", float("nan"), None]})
    saver = DataFrameMaterializer(uri, artifact_store)
    saver.save(frame)
    loader = DataFrameMaterializer(uri, artifact_store)
    loader.expected_content_hash = saver.compute_content_hash(frame)
    loaded = loader.load(pd.DataFrame)
    assert loaded["label"].isna().tolist() == [False, True, True]
    assert saver.compute_content_hash(frame.assign(label=["x", "y", None])) != (
        loader.expected_content_hash
    )


def test_content_hashes_follow_content_not_identity(
    tokenized_dataset: TokenizedDataset, fine_tuned_model: FineTunedModel, tmp_path: Path
) -> None:
    """Equal content hashes equal; one changed value, or a saved-and-loaded copy, tell."""
    frame = pd.DataFrame({"text": ["a", "b"], "label": ["x", "y"]})
    hash_frame = DataFrameMaterializer("unused").compute_content_hash
    assert hash_frame(frame) == hash_frame(frame.copy())
    assert hash_frame(frame) != hash_frame(frame.assign(text=["a", "c"]))
    fine_tuned_model.save(tmp_path)
    reloaded = FineTunedModel.load(tmp_path, "classification")
    assert reloaded.content_hash() == fine_tuned_model.content_hash()
    with torch.no_grad():
        reloaded.model.classifier.bias[0] += 1e-3
    assert reloaded.content_hash() != fine_tuned_model.content_hash()
    train = tokenized_dataset.splits["train"]
    assert (
        tokenized_dataset.content_hash()
        == type(tokenized_dataset)(
            **{
                **vars(tokenized_dataset),
                "splits": {**tokenized_dataset.splits, "train": train.slice(0)},
            }
        ).content_hash()
    )
