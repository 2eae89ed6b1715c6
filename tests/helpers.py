"""Helpers the tests share: small task data, tiny models of every task, artifact stores, ports.

Fixtures live in conftest.py; these are the plain functions behind them and the tests.
"""

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import onnx
import pandas as pd
import torch
import yaml
from click.testing import CliRunner
from transformers import AutoConfig
from zenml.artifact_stores import LocalArtifactStore, LocalArtifactStoreConfig
from zenml.enums import StackComponentType

import run
from stackport.core.settings import (
    FloatRange,
    HpoSettings,
    IntRange,
    OnnxVariant,
    QuantizationSettings,
    SearchSpace,
)
from stackport.inference.onnx_model import OnnxModel
from stackport.onnx.export import export_to_onnx, optimize_onnx_model
from stackport.onnx.quantization import quantize_onnx_model
from stackport.tasks import training_plugin
from stackport.training.model import FineTunedModel
from tests.azure_simulation import free_port  # noqa: F401  (the tests' one free_port)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TASKS = ("classification", "multilabel", "ner")
MAX_LENGTH = 64
# Thresholds around 0.5: a random head's probabilities are close to it, so texts get 0 to 5 labels.
MULTILABEL_THRESHOLDS = [0.45, 0.5, 0.55, 0.48, 0.52]
# 50 hand-annotated sentences in two -DOCSTART- documents: PER, ORG, LOC and MISC entities.
NER_SENTENCES = FIXTURES / "ner_sentences.conll"


def multilabel_titles(bbc_slice: pd.DataFrame, per_topic: int = 12) -> pd.DataFrame:
    """`text`/`topics` rows from BBC News titles: two of three rows join two topics' titles.

    A row's `topics` is its topics joined by `|`, as a CSV cell holds them.
    """
    articles = bbc_slice.groupby("label").head(per_topic).reset_index(drop=True)
    titles = articles["text"].str.split("\n").str[0]
    rows = []
    for index, (title, topic) in enumerate(zip(titles, articles["label"], strict=True)):
        other = (index * 7 + 3) % len(articles)
        if index % 3 == 0 or articles["label"][other] == topic:
            rows.append({"text": title, "topics": topic})
        else:
            rows.append(
                {
                    "text": f"{title}. {titles[other]}",
                    "topics": f"{topic}|{articles['label'][other]}",
                }
            )
    return pd.DataFrame(rows)


def local_artifact_store(root: Path) -> LocalArtifactStore:
    """A local artifact store under `root`, outside any stack."""
    now = datetime.now()
    return LocalArtifactStore(
        name="task-test-store",
        id=uuid4(),
        config=LocalArtifactStoreConfig(path=str(root)),
        flavor="local",
        type=StackComponentType.ARTIFACT_STORE,
        user=None,
        created=now,
        updated=now,
    )


def materializer_round_trip(materializer_class: type, data: Any, root: Path) -> Any:
    """`data` saved by a fresh materializer under `root`, then loaded back by another."""
    store = local_artifact_store(root)
    uri = str(root / "artifact")
    store.makedirs(uri)
    materializer_class(uri, store).save(data)
    materializer_class(uri, store).save_visualizations(data)
    return materializer_class(uri, store).load(type(data))


def tiny_model(
    tiny_bert_path: Path, label_names: list[str], seed: int = 0, task: str = "classification"
) -> FineTunedModel:
    """The tiny BERT with a random head for `task` (seeded); multilabel: with thresholds."""
    torch.manual_seed(seed)
    model = FineTunedModel.with_new_head(tiny_bert_path, task, label_names)
    if training_plugin(task).tune_thresholds is not None:
        model.model.config.label_thresholds = MULTILABEL_THRESHOLDS[: len(label_names)]
    model.model.config.text_windows = {"max_length": MAX_LENGTH, "max_windows": 1}
    return model


def tiny_variants(
    tiny_bert_path: Path, label_names: list[str], directory: Path, task: str = "classification"
) -> list[OnnxModel]:
    """Every ONNX variant of `tiny_model`, as the training pipeline builds them."""
    fp32 = export_to_onnx(
        tiny_model(tiny_bert_path, label_names, task=task), directory / "fp32", MAX_LENGTH
    )
    return [fp32, *derived_variants(fp32, tiny_bert_path, directory)]


def derived_variants(fp32: OnnxModel, tiny_bert_path: Path, directory: Path) -> list[OnnxModel]:
    """The fp32-optimized, dynamic-int8 and static-int8 variants of the tiny BERT's `fp32`."""
    settings = QuantizationSettings(calibration_samples=4)
    calibration = ["a few words of text", "another text", "and a third one here"]
    config = AutoConfig.from_pretrained(tiny_bert_path)
    return [
        optimize_onnx_model(fp32, config, directory / "fp32-optimized", 2),
        *(
            quantize_onnx_model(fp32, directory / variant, settings, variant, calibration)
            for variant in (OnnxVariant.DYNAMIC_INT8, OnnxVariant.STATIC_INT8)
        ),
    ]


def onnx_layers(model_path: Path) -> set[int]:
    """The encoder layers the nodes of an exported BERT graph belong to, by their names."""
    graph = onnx.load(str(model_path), load_external_data=False).graph
    names = (re.search(r"layer\.(\d+)/", node.name) for node in graph.node)
    return {int(match[1]) for match in names if match}


def tiny_onnx_model(
    tiny_bert_path: Path,
    label_names: list[str],
    directory: Path,
    seed: int = 0,
    task: str = "classification",
) -> OnnxModel:
    """`tiny_model` exported to fp32 ONNX."""
    return export_to_onnx(
        tiny_model(tiny_bert_path, label_names, seed, task), directory, MAX_LENGTH
    )


def forced_pruning_settings(storage: str, n_trials: int) -> HpoSettings:
    """Trials sample 1 or 2 epochs; the threshold pruner stops every trial at epoch 2.

    With seed 1, TPE's random start-up draws epochs 2, 1, 1: trial 0 is pruned, trials 1 and 2
    complete. The draws depend only on the seed, not on training numerics.
    """
    return HpoSettings(
        n_trials=n_trials,
        study_name="forced-pruning",
        storage=storage,
        seed=1,
        pruner="threshold",
        prune_below=2.0,
        pruner_warmup_epochs=2,
        trial_epochs=None,
        search_space=SearchSpace(
            learning_rate=FloatRange(low=1e-4, high=1e-3, log=True),
            batch_size=[8],
            weight_decay=None,
            warmup_ratio=None,
            epochs=IntRange(low=1, high=2),
        ),
    )


def tiny_config(
    tmp_path: Path,
    model_name: str,
    promotion: dict | None = None,
    hpo: dict | None = None,
    **validation,
) -> Path:
    """configs/train.yaml shrunk for the tiny model.

    Short texts, one epoch, a short benchmark, three HPO trials of which the first is pruned,
    and promotion gates a random model can pass (`promotion` overrides them).
    """
    forced = forced_pruning_settings(f"sqlite:///{tmp_path / 'optuna.db'}", n_trials=3)
    config = {
        "enable_cache": True,
        "parameters": {
            "model": {"name": model_name, "max_length": 64},
            "training": {"epochs": 1, "batch_size": 8},
            "validation": {"min_examples_per_class": 5, **validation},
            "export": {"parity_samples": 8},
            "hpo": forced.model_dump(mode="json") | {"study_name": model_name} | (hpo or {}),
            "promotion": {"max_gap_to_baseline": 1.0, **(promotion or {})},
            "benchmark": {
                "max_texts": 8,
                "latency_texts": 2,
                "batch_size": 4,
                "repeats": 1,
                "warmup_batches": 0,
            },
        },
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def invoke(tmp_path: Path, data: str, model_path: Path, config: Path, *extra: str) -> tuple:
    summary_file = tmp_path / "summary.json"
    arguments = ["--data", data, "--model", str(model_path), "--config", str(config)]
    arguments += ["--summary", str(summary_file), *extra]
    result = CliRunner().invoke(run.main, arguments, catch_exceptions=False)
    return result, json.loads(summary_file.read_text())
