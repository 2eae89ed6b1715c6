"""Named-entity recognition in training: sentences of words with IOB2 tags.

A sentence is a list of
tokens (words) with one tag each: `O`, `B-<type>` opening an entity or `I-<type>` continuing
it. The first sub-word of every word carries the word's tag; the loss ignores the others
(label -100). A sentence longer than `max_length` tokens is split into windows of whole words,
one row each, and the windows' predictions are joined again, so every word is evaluated.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from seqeval.metrics import (
    accuracy_score,
    classification_report,
    f1_score,
    precision_score,
    recall_score,
)
from sklearn.metrics import confusion_matrix
from transformers import (
    AutoModelForTokenClassification,
    DataCollatorForTokenClassification,
    PreTrainedTokenizerBase,
)

from stackport.core.names import EXAMPLE_ID_COLUMN
from stackport.core.plugins import TaskTraining
from stackport.core.settings import DataSettings, ValidationSettings
from stackport.data.checks import (
    LabelWording,
    PlannedCheck,
    is_missing,
    label_set_checks,
    not_null_check,
    quote,
    row_problems_check,
)
from stackport.data.sources import (
    TABLE_FORMATS,
    FileFormat,
    LoadReport,
    cell_list,
    decode_utf8,
    read_source,
)
from stackport.evaluation.report import EvaluationReport, per_class_metrics
from stackport.inference.words import word_windows
from stackport.tasks.ner.infer import OUTSIDE, EntityPrediction, entity_type

DOCUMENT_START = "-DOCSTART-"
CONLL_EXTENSIONS = (".conll", ".txt", ".iob", ".iob2", ".bio")
IGNORED_LABEL = -100
BASELINE_NAME = "most-frequent-tag"
ENTITY_TYPES = LabelWording(noun="entity type", kind="entity type", unit="mention")
SHOWN_LINES = 5
# CoNLL columns are separated by spaces or tabs; other white space belongs to the token.
COLUMN_SEPARATOR = re.compile(r"[ \t]+")


def iob2_problem(tags: Sequence[str]) -> str | None:
    """What makes a tag sequence invalid IOB2 (the first problem), or None if it is valid."""
    previous = OUTSIDE
    for position, tag in enumerate(tags):
        kind = entity_type(tag)
        if tag != OUTSIDE and kind is None:
            return f"{quote(tag)} at token {position} is not O, B-<type> or I-<type>"
        if tag.startswith("I-") and previous not in (f"B-{kind}", tag):
            if position == 0:
                return f"{quote(tag)} at token 0 starts the sentence"
            return f"{quote(tag)} at token {position} follows {quote(previous)}"
        previous = tag
    return None


def mentions(tags: Sequence[str]) -> list[str]:
    """The entity type of every entity in a tag sequence (one per `B-` tag)."""
    return [tag[2:] for tag in tags if tag.startswith("B-") and entity_type(tag)]


def parse_conll(
    raw: bytes, path: str, report: LoadReport, tokens_column: str, tags_column: str
) -> pd.DataFrame:
    """Sentences of a CoNLL file: a token per line, its tag in the last column.

    A blank line ends a sentence and `-DOCSTART-` lines are skipped. A line with a single
    column is reported as a problem and left out.
    """
    sentences: list[tuple[list[str], list[str]]] = [([], [])]
    untagged = []
    for number, line in enumerate(decode_utf8(raw, path, report).split("\n"), start=1):
        fields = [field for field in COLUMN_SEPARATOR.split(line.rstrip("\r")) if field]
        if not fields or fields[0] == DOCUMENT_START:
            if sentences[-1][0]:
                sentences.append(([], []))
        elif len(fields) == 1:
            untagged.append(number)
        else:
            sentences[-1][0].append(fields[0])
            sentences[-1][1].append(fields[-1])
    if untagged:
        shown = ", ".join(str(number) for number in untagged[:SHOWN_LINES])
        more = f" and {len(untagged) - SHOWN_LINES} more" if len(untagged) > SHOWN_LINES else ""
        report.problems.append(
            f"{path}: {len(untagged)} line(s) hold a token without a tag (line {shown}{more})"
        )
    sentences = [sentence for sentence in sentences if sentence[0]]
    return pd.DataFrame(
        {
            tokens_column: [tokens for tokens, _ in sentences],
            tags_column: [tags for _, tags in sentences],
        }
    )


def read_sentences(source: str, data: DataSettings) -> tuple[pd.DataFrame, LoadReport]:
    """Sentences from CoNLL files, or from JSONL/Parquet rows holding token and tag lists.

    CoNLL sentences are read into the configured text (tokens) and label (tags) columns. In
    rows, a tokens or tags cell that is not a list is read as missing, and a note says which.
    """
    conll = FileFormat(
        "conll", partial(parse_conll, tokens_column=data.text_column, tags_column=data.label_column)
    )
    formats = {**TABLE_FORMATS, **dict.fromkeys(CONLL_EXTENSIONS, conll)}
    frame, report = read_source(source, formats)
    for column in (data.text_column, data.label_column):
        if column in frame.columns:
            frame[column] = _string_lists(frame[column], column, report)
    return frame, report


def _string_lists(cells: pd.Series, column: str, report: LoadReport) -> pd.Series:
    """Each cell as a list of strings; a cell that is not a list becomes None (and a note)."""
    lists = cells.map(cell_list)
    not_lists = [
        row
        for row, (cell, items) in enumerate(zip(cells, lists, strict=True))
        if items is None and not is_missing(cell)
    ]
    if not_lists:
        report.notes.append(
            f"column {column!r}: {len(not_lists)} cell(s) hold no list and are read as "
            f"missing (rows {', '.join(map(str, not_lists[:SHOWN_LINES]))})"
        )
    return lists.map(
        lambda items: (
            None if items is None else ["" if is_missing(item) else str(item) for item in items]
        )
    )


def token_list(value: Any) -> list[str]:
    """A tokens or tags cell (a list, or an array after a Parquet round trip) as a list."""
    return [str(item) for item in cell_list(value) or []]


def text_checks(
    data: pd.DataFrame, text_column: str, settings: ValidationSettings
) -> list[PlannedCheck]:
    """Every row has a non-empty list of non-blank tokens."""

    def problem(tokens: Any) -> str | None:
        if is_missing(tokens):
            return None  # tokens_not_null names the row
        tokens = token_list(tokens)
        if not tokens:
            return "no tokens"
        blank = next((index for index, token in enumerate(tokens) if not token.strip()), None)
        return None if blank is None else f"token {blank} is blank"

    return [
        not_null_check(text_column, "tokens_not_null", "token list"),
        row_problems_check(
            data,
            "tokens_not_blank",
            "every sentence has tokens and none of them is blank",
            data[text_column].map(problem),
            "an empty sentence or a blank token",
        ),
    ]


def label_checks(
    data: pd.DataFrame, label_column: str, settings: ValidationSettings, text_column: str | None
) -> list[PlannedCheck]:
    """Tags present, one per token, valid IOB2; declared entity types; enough mentions of each."""
    tags = data[label_column].map(token_list)
    planned = [not_null_check(label_column, "tags_not_null", "tag list")]
    if text_column is not None:
        pairs = zip(data[text_column], data[label_column], strict=True)
        problems = [_length_problem(words, labels) for words, labels in pairs]
        planned.append(
            row_problems_check(
                data,
                "tags_match_tokens",
                "every sentence has as many tags as tokens",
                pd.Series(problems, index=data.index, dtype=object),
                "a different number of tags and tokens",
            )
        )
    planned.append(
        row_problems_check(
            data,
            "tags_are_iob2",
            "every tag is O, B-<type> or I-<type>, and an I-<type> follows B-<type> or I-<type>",
            tags.map(iob2_problem),
            "tags that are not valid IOB2",
        )
    )
    types = tags.map(lambda row: sorted({kind for tag in row if (kind := entity_type(tag))}))
    return [
        *planned,
        *label_set_checks(data, types, settings, ENTITY_TYPES, examples=tags.map(mentions)),
    ]


def _length_problem(tokens: Any, tags: Any) -> str | None:
    """`5 tokens, 4 tags`, or None (a missing list fails tokens_not_null or tags_not_null)."""
    if is_missing(tokens) or is_missing(tags) or len(tokens) == len(tags):
        return None
    return f"{len(tokens)} tokens, {len(tags)} tags"


def text_key(tokens: Any) -> str:
    """Sentences with the same tokens are the same sentence."""
    return " ".join(token_list(tokens))


def no_strata(tags: pd.Series) -> None:
    """Sentences are split at random: their tag sequences are no strata."""
    return None


def label_names(tags: Sequence[pd.Series]) -> list[str]:
    """`O`, then `B-` and `I-` of every entity type in the splits, types sorted."""
    types = sorted(
        {
            kind
            for column in tags
            for value in column
            for tag in token_list(value)
            if (kind := entity_type(tag))
        }
    )
    return [OUTSIDE, *(f"{prefix}-{kind}" for kind in types for prefix in "BI")]


def encode(
    frame: pd.DataFrame,
    tokenizer: PreTrainedTokenizerBase,
    names: list[str],
    max_length: int,
    max_windows: int = 1,
) -> dict[str, list]:
    """Sentences as rows of sub-word ids with the tag of each word on its first sub-word.

    A sentence whose sub-words do not fit `max_length` is split into windows of whole words,
    all of which are kept (every word needs its tag, so `max_windows` does not apply);
    `example_id` gives each row's sentence (its position in `frame`). A word the tokenizer
    turns into no sub-word at all (e.g. a lone control character) is fed as the unknown token,
    so that every word keeps its tag.
    """
    if not tokenizer.is_fast:
        raise ValueError("NER needs a fast tokenizer (word_ids() maps sub-words to words).")
    tag_ids = {name: index for index, name in enumerate(names)}
    special_tokens = tokenizer.num_special_tokens_to_add(pair=False)
    capacity = max_length - special_tokens
    sentences = [token_list(tokens) for tokens in frame["text"]]
    tags = [token_list(value) for value in frame["label"]]
    pieces = tokenizer(sentences, is_split_into_words=True, add_special_tokens=False)
    windows, window_tags, examples, num_tokens = [], [], [], []
    for example_id, words in enumerate(sentences):
        counts = Counter(word for word in pieces.word_ids(example_id) if word is not None)
        words = [word if counts[index] else tokenizer.unk_token for index, word in enumerate(words)]
        lengths = [counts[index] or 1 for index in range(len(words))]
        for start, end in word_windows(lengths, capacity):
            windows.append(words[start:end])
            window_tags.append(tags[example_id][start:end])
            examples.append(example_id)
            num_tokens.append(sum(lengths[start:end]) + special_tokens)
    encoded = tokenizer(windows, is_split_into_words=True, truncation=True, max_length=max_length)
    return {
        "input_ids": encoded["input_ids"],
        "attention_mask": encoded["attention_mask"],
        "labels": [
            _first_sub_word_labels(encoded.word_ids(row), [tag_ids[tag] for tag in row_tags])
            for row, row_tags in enumerate(window_tags)
        ],
        "num_tokens": num_tokens,
        EXAMPLE_ID_COLUMN: examples,
    }


def _first_sub_word_labels(word_ids: Sequence[int | None], word_labels: Sequence[int]) -> list[int]:
    """Each word's label on its first sub-word; -100 on its other sub-words and special tokens."""
    labels, previous = [], None
    for word in word_ids:
        is_first = word is not None and word != previous
        labels.append(word_labels[word] if is_first else IGNORED_LABEL)
        previous = word
    return labels


def make_collator(
    tokenizer: PreTrainedTokenizerBase, names: list[str]
) -> DataCollatorForTokenClassification:
    """Pads ids and masks, and labels with -100."""
    return DataCollatorForTokenClassification(tokenizer)


def word_tags(
    logits: np.ndarray | Sequence[np.ndarray], table: pa.Table, names: list[str]
) -> tuple[list[list[str]], list[list[str]]]:
    """True and predicted tags of every word, one list per sentence, windows joined again.

    Args:
        logits: Per row, (tokens, tags) logits; rows may be padded beyond their length.
        table: The encoded rows, windows of one sentence in order.
        names: The tags, in the order of the logits.

    Returns:
        The true and the predicted tag sequences, in the order of the sentences.
    """
    true: dict[int, list[str]] = defaultdict(list)
    predicted: dict[int, list[str]] = defaultdict(list)
    rows = zip(
        table.column("labels").to_pylist(), table.column(EXAMPLE_ID_COLUMN).to_pylist(), strict=True
    )
    for row, (labels, example) in enumerate(rows):
        best = np.asarray(logits[row])[: len(labels)].argmax(axis=-1)
        for position, label in enumerate(labels):
            if label != IGNORED_LABEL:
                true[example].append(names[label])
                predicted[example].append(names[best[position]])
    examples = sorted(true)
    return [true[example] for example in examples], [predicted[example] for example in examples]


def report(
    model_name: str,
    split: str,
    names: list[str],
    logits: np.ndarray | Sequence[np.ndarray],
    table: pa.Table,
    thresholds: Sequence[float] | None = None,
) -> EvaluationReport:
    """The entity report of the highest-scoring tag of every word."""
    true, predicted = word_tags(logits, table, names)
    return entity_report(model_name, split, names, true, predicted)


def report_predictions(
    model_name: str,
    split: str,
    frame: pd.DataFrame,
    names: list[str],
    predictions: Sequence[EntityPrediction],
) -> EvaluationReport:
    """The entity report of `EntityPrediction`s for the token lists of a frame's rows.

    The predictions are of the rows' tokens given as pre-split words, so every entity starts
    and ends at a token of the row's tokens joined by spaces: its first token is tagged
    `B-<type>`, the others `I-<type>`, and the tokens of no entity `O`.
    """
    true = [token_list(tags) for tags in frame["label"]]
    predicted = []
    for tokens, prediction in zip(frame["text"], predictions, strict=True):
        tokens = token_list(tokens)
        starts = np.cumsum([0, *(len(token) + 1 for token in tokens)])[:-1].tolist()
        first_token = {start: index for index, start in enumerate(starts)}
        tags = [OUTSIDE] * len(tokens)
        for entity in prediction.entities:
            first = first_token[entity.start]
            last = first_token.get(entity.end + 1, len(tokens))
            tags[first:last] = [f"B-{entity.type}"] + [f"I-{entity.type}"] * (last - first - 1)
        predicted.append(tags)
    return entity_report(model_name, split, names, true, predicted)


def entity_report(
    model_name: str,
    split: str,
    names: list[str],
    true: list[list[str]],
    predicted: list[list[str]],
) -> EvaluationReport:
    """Entity-level P/R/F1 (seqeval, CoNLL rules) overall and per type, and word accuracy.

    `entity_f1` is the micro-average over entities and `macro_f1` the mean over entity types;
    the confusion matrix counts words by true and predicted tag.
    """
    score = partial(_seqeval, true=true, predicted=predicted)
    by_type = classification_report(true, predicted, output_dict=True, zero_division=0)
    types = sorted({kind for name in names if (kind := entity_type(name))})
    figures = [by_type.get(kind, {}) for kind in types]
    flat_true = [tag for sentence in true for tag in sentence]
    flat_predicted = [tag for sentence in predicted for tag in sentence]
    return EvaluationReport(
        model_name=model_name,
        split=split,
        label_names=names,
        metrics={
            "entity_f1": score(f1_score),
            "entity_precision": score(precision_score),
            "entity_recall": score(recall_score),
            "accuracy": float(accuracy_score(true, predicted)) if flat_true else 0.0,
            "macro_f1": score(f1_score, average="macro"),
        },
        per_class=per_class_metrics(
            types,
            [figure.get("precision", 0.0) for figure in figures],
            [figure.get("recall", 0.0) for figure in figures],
            [figure.get("f1-score", 0.0) for figure in figures],
            [figure.get("support", 0) for figure in figures],
        ),
        confusion_matrix=confusion_matrix(flat_true, flat_predicted, labels=names).tolist(),
    )


def _seqeval(metric: Any, true: list[list[str]], predicted: list[list[str]], **options) -> float:
    """A seqeval metric that is 0 where it is undefined (no entities)."""
    return float(metric(true, predicted, zero_division=0, **options))


def evaluate_baseline(
    train: pd.DataFrame, test: pd.DataFrame, names: list[str], seed: int = 42
) -> EvaluationReport:
    """Tag every word with its most frequent tag in `train` (lower-cased); unseen words `O`."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for tokens, tags in zip(train["text"], train["label"], strict=True):
        for token, tag in zip(token_list(tokens), token_list(tags), strict=True):
            counts[token.lower()][tag] += 1
    most_frequent = {word: tags.most_common(1)[0][0] for word, tags in counts.items()}
    predicted = [
        [most_frequent.get(token.lower(), OUTSIDE) for token in token_list(tokens)]
        for tokens in test["text"]
    ]
    true = [token_list(tags) for tags in test["label"]]
    return entity_report(BASELINE_NAME, "test", names, true, predicted)


TRAINING = TaskTraining(
    selection_metric="entity_f1",
    model_class=AutoModelForTokenClassification,
    problem_type=None,
    read=read_sentences,
    text_checks=text_checks,
    label_checks=label_checks,
    text_key=text_key,
    as_text=token_list,
    as_label=token_list,
    strata=no_strata,
    label_names=label_names,
    encode=encode,
    labels_type=pa.list_(pa.int64()),
    make_collator=make_collator,
    report=report,
    baseline=evaluate_baseline,
    report_predictions=report_predictions,
)
