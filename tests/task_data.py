"""Small multi-label and NER datasets shared by the task tests."""

from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pandas as pd
from zenml.artifact_stores import LocalArtifactStore, LocalArtifactStoreConfig
from zenml.enums import StackComponentType

FIXTURES = Path(__file__).resolve().parent / "fixtures"
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
