"""Shared fixtures: an isolated ZenML store, offline Hugging Face, a tiny BERT and BBC slices."""

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Isolate ZenML and keep every library offline before any of them is imported.
_ZENML_HOME = tempfile.mkdtemp(prefix="stackport-zenml-")
os.environ["ZENML_CONFIG_PATH"] = _ZENML_HOME
os.environ["ZENML_ANALYTICS_OPT_IN"] = "false"
os.environ["ZENML_LOGGING_VERBOSITY"] = "WARN"
os.environ["ZENML_ENABLE_RICH_TRACEBACK"] = "false"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["GX_ANALYTICS_ENABLED"] = "false"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from stackport.data.bundled import read_bbc_news  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]

# What only the integration tier may start, by the attribute every caller goes through.
SERVER_STARTERS = {
    "stackport.serving.local.start_server": "`bentoml serve`",
    "tests.azure_simulation.LocalServer.__init__": "a server process (Azurite, MLflow, azmlinfsrv)",
    "selenium.webdriver.Chrome": "Chromium",
}


def refuse(nodeid: str, what: str) -> Callable[..., Any]:
    """A stand-in for what starts `what` that fails the test `nodeid`, naming the mark."""

    def refused(*args: Any, **kwargs: Any) -> Any:
        pytest.fail(
            f"{nodeid} starts {what} but is not marked integration: add "
            "pytest.mark.integration to it or to its module's pytestmark"
        )

    return refused


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """Outside the integration tier, starting a server or a browser fails the test at once.

    The fast tier's time depends on it: when the dashboard module lost its mark to a skipif,
    `make test` ran the Selenium test wherever Chromium was installed (6 min 10 s, not 3 min
    25 s), and nothing failed. The starters stay patched through the item's set-up, call and
    tear-down, so that a module-scoped server fixture is refused too.
    """
    if item.get_closest_marker("integration") is not None:
        return (yield)
    with pytest.MonkeyPatch.context() as guard:
        for target, what in SERVER_STARTERS.items():
            guard.setattr(target, refuse(item.nodeid, what))
        return (yield)


@pytest.fixture(scope="session")
def bbc_news() -> pd.DataFrame:
    """The bundled BBC News corpus, deduplicated, with `text` and `label` columns."""
    frame, _ = read_bbc_news()
    return frame


@pytest.fixture(scope="session")
def bbc_slice(bbc_news: pd.DataFrame) -> pd.DataFrame:
    """A small, stratified, seeded slice of BBC News: 24 articles per topic."""
    return bbc_news.groupby("label").sample(24, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="session")
def tiny_bert_path(bbc_slice: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer BERT and a WordPiece tokenizer trained on the BBC slice."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertConfig, BertModel, BertTokenizerFast

    directory = tmp_path_factory.mktemp("tiny-bert")
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    wordpiece = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wordpiece.normalizer = normalizers.BertNormalizer(lowercase=True)
    wordpiece.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=2000, special_tokens=special)
    wordpiece.train_from_iterator(bbc_slice["text"].tolist(), trainer)
    vocab_file = directory / "vocab.txt"
    vocab = sorted(wordpiece.get_vocab().items(), key=lambda item: item[1])
    vocab_file.write_text("\n".join(token for token, _ in vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(vocab_file), do_lower_case=True)
    tokenizer.save_pretrained(directory)

    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(directory, safe_serialization=True)
    return directory
