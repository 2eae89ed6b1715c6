"""Predicting with an exported `OnnxModel`: needs only onnxruntime, tokenizers and numpy.

Texts are tokenized with the model's `tokenizer.json` (truncation to the training
`max_length`, dynamic padding to the longest text of the batch), run through an ONNX Runtime
session tuned for this machine's cores, and post-processed by the post-processor of the model's
task. The ONNX evaluation, the benchmark and the serving code all predict through this module.

A text classifier trained on windows (`OnnxModel.max_windows` > 1) reads a long text as up to
that many consecutive windows of `max_length` tokens, one row each (`encode_text_windows`),
and classifies it by the mean of their logits (`mean_by_text`), as it was evaluated in training.

A word-level model (`OnnxModel.split_into_words`: NER) is trained on pre-split words (CoNLL
tokens), each word tokenized on its own and tagged on its first sub-word. Raw text is split
into words the way CoNLL splits it (`split_words`): white space separates words, and
punctuation at the start or end of a word is a word of its own (`"(Paris),"` gives `(`,
`Paris`, `)`, `,`), while punctuation inside a word stays in it (`U.S`, `1,000`, `don't`).
Pre-split words may be given instead of a text; they are joined by single spaces, and entity
offsets refer to that joined text. As in training, a text whose sub-words do not fit
`max_length` is split into windows of whole words that do (`word_windows`), one row each; the
tags of its windows are joined again, so every word is tagged and offsets index the whole text.
Only a single word longer than a whole window is truncated: its first sub-word, which carries
its tag, is kept. (`OnnxPredictor.encode`, which the parity check and the int8 calibration
use, gives one truncated row per text.)
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Encoding, Tokenizer

from textmodels.onnx_model import OnnxModel
from textmodels.tasks import Task

# Graph input name → the `tokenizers.Encoding` attribute that feeds it.
ENCODING_FIELDS = {
    "input_ids": "ids",
    "attention_mask": "attention_mask",
    "token_type_ids": "type_ids",
}
# A word: word characters with anything but white space between them, or one other character.
WORD_PATTERN = re.compile(r"\w(?:\S*\w)?|[^\w\s]")
OUTSIDE = "O"
DEFAULT_THRESHOLD = 0.5

# A text to predict for: a string, or (for a word-level model) its words, already split.
Text = str | Sequence[str]
# Where each word of a text is: (start, end) character offsets.
WordSpans = list[tuple[int, int]]
# A row of a word-level batch: (text, first word, last word + 1), indices into the batch.
Window = tuple[int, int, int]


@dataclass(frozen=True)
class ClassPrediction:
    """The predicted label of a text and its softmax probability."""

    label: str
    score: float


@dataclass(frozen=True)
class MultilabelPrediction:
    """The labels of a text whose sigmoid probability reaches their threshold.

    Attributes:
        labels: The predicted labels, in the model's label order (possibly none).
        scores: The probability of each predicted label, in the order of `labels`.
    """

    labels: list[str]
    scores: list[float]


@dataclass(frozen=True)
class Entity:
    """A named entity found in a text.

    Attributes:
        type: The entity type, e.g. `PER` (the tags are `B-PER` and `I-PER`).
        score: The mean probability of the tags of the entity's words.
        start: Offset of the entity's first character in the text.
        end: Offset just past its last character: `text[start:end]` is the entity.
        text: The entity's text.
    """

    type: str
    score: float
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class EntityPrediction:
    """The entities of a text, in order of their position."""

    entities: list[Entity]


@dataclass(frozen=True)
class EncodedBatch:
    """A batch of texts as the graph takes it, with what post-processing needs.

    Attributes:
        texts: The texts (pre-split words joined by single spaces).
        words: Word-level models: the character spans of each text's words; else None.
        encodings: One `tokenizers.Encoding` per row (for words: `word_ids` and offsets
            within each word, `word_ids` counted from the row's first word).
        inputs: The graph's int64 inputs, padded to the longest row.
        windows: The text and words of each row, when texts are split into windows of words;
            None: one row per text, holding all its words (up to the truncation).
        row_texts: The text of each row, when texts are split into windows of tokens; None:
            one row per text (or windows of words, see `windows`).
    """

    texts: list[str]
    words: list[WordSpans] | None
    encodings: list[Encoding]
    inputs: dict[str, np.ndarray]
    windows: list[Window] | None = None
    row_texts: list[int] | None = None


def word_lists(texts: Sequence[str], words: Sequence[WordSpans]) -> list[list[str]]:
    """The words of every text, as strings."""
    return [
        [text[start:end] for start, end in spans] for text, spans in zip(texts, words, strict=True)
    ]


def split_words(text: str) -> WordSpans:
    """The character spans of a text's words (see the module's docstring)."""
    return [match.span() for match in WORD_PATTERN.finditer(text)]


def joined_words(words: Sequence[str]) -> tuple[str, WordSpans]:
    """Pre-split words joined by single spaces, and the span of each word in the result."""
    spans, start = [], 0
    for word in words:
        spans.append((start, start + len(word)))
        start += len(word) + 1
    return " ".join(words), spans


def texts_and_words(
    texts: Sequence[Text], split_into_words: bool
) -> tuple[list[str], list[WordSpans] | None]:
    """The texts as strings and, for a word-level model, the spans of their words."""
    if not split_into_words:
        if not all(isinstance(text, str) for text in texts):
            raise TypeError("Only a word-level (NER) model takes pre-split words.")
        return list(texts), None
    pairs = [
        (text, split_words(text)) if isinstance(text, str) else joined_words([str(w) for w in text])
        for text in texts
    ]
    return [text for text, _ in pairs], [spans for _, spans in pairs]


def word_windows(lengths: Sequence[int], capacity: int) -> Iterator[tuple[int, int]]:
    """(start, end) word ranges whose sub-word counts fit `capacity`, in order.

    A word longer than `capacity` on its own gets a window of its own (and is truncated, which
    keeps its first sub-word and so its tag). No words give one empty window.
    """
    start, used = 0, 0
    for index, length in enumerate(lengths):
        if used and used + length > capacity:
            yield start, index
            start, used = index, 0
        used += length
    yield start, len(lengths)


def mean_by_text(row_logits: np.ndarray, row_texts: Sequence[int], texts: int) -> np.ndarray:
    """The mean logits of each text's rows: row `i` belongs to text `row_texts[i]`."""
    sums = np.zeros((texts, *row_logits.shape[1:]), dtype=np.float64)
    np.add.at(sums, np.asarray(row_texts), row_logits)
    counts = np.bincount(np.asarray(row_texts), minlength=texts).reshape(-1, *[1] * (sums.ndim - 1))
    return (sums / counts).astype(row_logits.dtype)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, stable for large logits."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """The logistic function, in float64 (as the thresholds were tuned)."""
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))


def classify(logits: np.ndarray, batch: EncodedBatch, model: OnnxModel) -> list[ClassPrediction]:
    """Single-label classification: the most probable label of each text and its probability."""
    probabilities = softmax(logits)
    best = probabilities.argmax(axis=-1)
    return [
        ClassPrediction(label=model.label_names[index], score=float(probabilities[row, index]))
        for row, index in enumerate(best)
    ]


def classify_multilabel(
    logits: np.ndarray, batch: EncodedBatch, model: OnnxModel
) -> list[MultilabelPrediction]:
    """Multi-label classification: every label whose probability reaches its threshold.

    The thresholds are the model's (tuned on the validation split); 0.5 where it has none.
    """
    probabilities = sigmoid(logits)
    thresholds = np.asarray(model.thresholds or [DEFAULT_THRESHOLD] * len(model.label_names))
    chosen = probabilities >= thresholds
    return [
        MultilabelPrediction(
            labels=[model.label_names[index] for index in np.flatnonzero(row_chosen)],
            scores=[float(probabilities[row, index]) for index in np.flatnonzero(row_chosen)],
        )
        for row, row_chosen in enumerate(chosen)
    ]


def word_tags(
    logits: np.ndarray, encoding: Encoding, words: int, names: Sequence[str]
) -> tuple[list[str], list[float]]:
    """Each word's tag (the best tag of its first sub-word) and that tag's probability.

    Words cut off by the truncation (or that the tokenizer turns into no sub-word) are `O`,
    with probability 1.
    """
    tags, scores = [OUTSIDE] * words, [1.0] * words
    probabilities = softmax(logits)
    seen = set()
    for position, word in enumerate(encoding.word_ids):
        if word is not None and word not in seen:
            seen.add(word)
            best = int(probabilities[position].argmax())
            tags[word], scores[word] = names[best], float(probabilities[position, best])
    return tags, scores


def entity_type(tag: str) -> str | None:
    """`PER` for `B-PER` and `I-PER`; None for `O` and for anything that is not IOB2."""
    return tag[2:] if len(tag) > 2 and tag[:2] in ("B-", "I-") else None


def entity_word_ranges(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """(type, first word, last word + 1) of each entity of a tag sequence, in order.

    As seqeval (and CoNLL's conlleval) reads IOB2: an entity starts at `B-X`, and also at an
    `I-X` that follows `O` or another type; it goes on over the `I-X` that follow.
    """
    ranges: list[tuple[str, int, int]] = []
    previous = None
    for index, tag in enumerate(tags):
        kind = entity_type(tag)
        if kind is not None and (tag.startswith("B-") or kind != previous):
            ranges.append((kind, index, index + 1))
        elif kind is not None:
            ranges[-1] = (kind, ranges[-1][1], index + 1)
        previous = kind
    return ranges


def text_word_tags(
    logits: np.ndarray, batch: EncodedBatch, names: Sequence[str]
) -> list[tuple[list[str], list[float]]]:
    """Each text's word tags and their probabilities (`word_tags`), its windows joined again."""
    spans = batch.words or []
    windows = batch.windows or [(text, 0, len(words)) for text, words in enumerate(spans)]
    tags = [[OUTSIDE] * len(words) for words in spans]
    scores = [[1.0] * len(words) for words in spans]
    for row, (text, start, end) in enumerate(windows):
        row_tags, row_scores = word_tags(logits[row], batch.encodings[row], end - start, names)
        tags[text][start:end], scores[text][start:end] = row_tags, row_scores
    return list(zip(tags, scores, strict=True))


def recognize_entities(
    logits: np.ndarray, batch: EncodedBatch, model: OnnxModel
) -> list[EntityPrediction]:
    """Token classification: the entities of each text, with character offsets into it."""
    predictions = []
    text_tags = text_word_tags(logits, batch, model.label_names)
    for text, spans, (tags, scores) in zip(batch.texts, batch.words or [], text_tags, strict=True):
        entities = []
        for kind, first, last in entity_word_ranges(tags):
            start, end = spans[first][0], spans[last - 1][1]
            score = float(np.mean(scores[first:last]))
            entities.append(
                Entity(type=kind, score=score, start=start, end=end, text=text[start:end])
            )
        predictions.append(EntityPrediction(entities=entities))
    return predictions


# A post-processor turns a batch's raw outputs into one prediction per text. It receives the
# encoded batch too: token classification maps token logits back to character spans through
# the words and their encodings, and multi-label classification reads `model.thresholds`.
PostProcessor = Callable[[np.ndarray, EncodedBatch, OnnxModel], list[Any]]
POST_PROCESSORS: dict[Task, PostProcessor] = {
    Task.CLASSIFICATION: classify,
    Task.MULTILABEL: classify_multilabel,
    Task.NER: recognize_entities,
}


def post_process(row_logits: np.ndarray, batch: EncodedBatch, model: OnnxModel) -> list[Any]:
    """One prediction per text of the batch from the logits of its rows."""
    logits = row_logits
    if batch.row_texts is not None:
        logits = mean_by_text(row_logits, batch.row_texts, len(batch.texts))
    return POST_PROCESSORS[model.task](logits, batch, model)


def batches(texts: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """Consecutive batches of at most `size` texts, in order."""
    return [texts[start : start + size] for start in range(0, len(texts), size)]


def available_cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """Session options for CPU inference: all graph optimizations, one intra-op thread per core.

    Args:
        threads: Intra-op threads; `None` means one per available core.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads or available_cores()
    options.inter_op_num_threads = 1
    return options


class OnnxPredictor:
    """Tokenizes texts, runs an ONNX Runtime session and post-processes its outputs."""

    def __init__(self, model: OnnxModel, threads: int | None = None):
        """Open the model's tokenizer and an ONNX Runtime CPU session on its graph.

        Args:
            model: The model to predict with.
            threads: Intra-op threads; `None` means one per available core.
        """
        self.model = model
        self.tokenizer = Tokenizer.from_file(str(model.tokenizer_path))
        # Cuts a text into windows of `max_length` tokens (`Encoding.overflowing`), unpadded.
        self.windowed = Tokenizer.from_file(str(model.tokenizer_path))
        self.windowed.no_padding()
        # Counts each word's sub-words in a whole text, to split it into windows.
        self.untruncated = Tokenizer.from_file(str(model.tokenizer_path))
        self.untruncated.no_truncation()
        self.untruncated.no_padding()
        processor = self.tokenizer.post_processor
        self.special_tokens = processor.num_special_tokens_to_add(False) if processor else 0
        self.session = ort.InferenceSession(
            str(model.model_path),
            sess_options=session_options(threads),
            providers=["CPUExecutionProvider"],
        )
        self.input_names = [graph_input.name for graph_input in self.session.get_inputs()]
        unknown = set(self.input_names) - set(ENCODING_FIELDS)
        if unknown:
            raise ValueError(f"The ONNX graph takes inputs no tokenizer gives: {sorted(unknown)}")

    def inputs(self, encodings: Sequence[Encoding]) -> dict[str, np.ndarray]:
        """The graph's int64 inputs: one row per encoding (the tokenizer pads them)."""
        return {
            name: np.array(
                [getattr(encoding, ENCODING_FIELDS[name]) for encoding in encodings],
                dtype=np.int64,
            )
            for name in self.input_names
        }

    def encode(self, texts: Sequence[Text]) -> EncodedBatch:
        """Tokenize a batch (a word-level model: word by word) into one truncated row per text."""
        strings, words = texts_and_words(texts, self.model.split_into_words)
        if words is None:
            encodings = self.tokenizer.encode_batch(strings)
        else:
            encodings = self.tokenizer.encode_batch(
                word_lists(strings, words), is_pretokenized=True
            )
        return EncodedBatch(strings, words, encodings, self.inputs(encodings))

    def encode_windows(self, texts: Sequence[Text]) -> EncodedBatch:
        """Tokenize a word-level batch into windows of whole words that fit `max_length`.

        Each text gives one row per window, in order (at least one, empty for a text without
        words); only a single word longer than a whole window is truncated.
        """
        strings, words = texts_and_words(texts, split_into_words=True)
        text_words = word_lists(strings, words)
        pieces = self.untruncated.encode_batch(
            text_words, is_pretokenized=True, add_special_tokens=False
        )
        capacity = self.model.max_length - self.special_tokens
        rows, windows = [], []
        for text, (row_words, encoding) in enumerate(zip(text_words, pieces, strict=True)):
            counts = Counter(word for word in encoding.word_ids if word is not None)
            lengths = [counts[word] for word in range(len(row_words))]
            for start, end in word_windows(lengths, capacity):
                rows.append(row_words[start:end])
                windows.append((text, start, end))
        encodings = self.tokenizer.encode_batch(rows, is_pretokenized=True)
        return EncodedBatch(strings, words, encodings, self.inputs(encodings), windows)

    def encode_text_windows(self, texts: Sequence[str]) -> EncodedBatch:
        """Tokenize a batch into up to `max_windows` consecutive windows of each text.

        Each text gives one row per window, in order; the rows are padded to the longest.
        """
        strings, _ = texts_and_words(texts, split_into_words=False)
        rows, row_texts = [], []
        for text, encoding in enumerate(self.windowed.encode_batch(strings)):
            windows = [encoding, *encoding.overflowing][: self.model.max_windows]
            rows.extend(windows)
            row_texts.extend([text] * len(windows))
        padding = self.tokenizer.padding or {}
        longest = max(len(row.ids) for row in rows)
        for row in rows:
            row.pad(
                longest,
                pad_id=padding.get("pad_id", 0),
                pad_type_id=padding.get("pad_type_id", 0),
                pad_token=padding.get("pad_token", "[PAD]"),
            )
        return EncodedBatch(strings, None, rows, self.inputs(rows), row_texts=row_texts)

    def encode_for_prediction(self, texts: Sequence[Text]) -> EncodedBatch:
        """The batch `predict` runs: windows of words, windows of tokens or one row per text."""
        if self.model.split_into_words:
            return self.encode_windows(texts)
        if self.model.max_windows > 1:
            return self.encode_text_windows(texts)
        return self.encode(texts)

    def logits(self, texts: Sequence[Text]) -> np.ndarray:
        """The model's raw first output (logits) for a batch of texts, one truncated row each."""
        return self.session.run(None, self.encode(texts).inputs)[0]

    def predict(self, texts: Sequence[Text]) -> list[Any]:
        """One prediction per text, post-processed for the model's task.

        The windows of all the batch's texts (of words, or of tokens when the model reads
        several windows of a text) run at once.
        """
        batch = self.encode_for_prediction(texts)
        logits = self.session.run(None, batch.inputs)[0]
        return post_process(logits, batch, self.model)

    def predict_batches(self, texts: Sequence[Text], batch_size: int) -> list[Any]:
        """Predictions for many texts, `batch_size` texts at a time, in order."""
        return [
            prediction for batch in batches(texts, batch_size) for prediction in self.predict(batch)
        ]
