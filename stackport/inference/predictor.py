"""Predicting with an exported `OnnxModel`: onnxruntime, tokenizers, numpy and pydantic only.

Texts are tokenized with the model's `tokenizer.json` (truncation to the training
`max_length`, dynamic padding to the longest row of the batch), run through an ONNX Runtime
session tuned for this machine's cores, and turned into predictions by the inference plug-in
of the model's task (`stackport.tasks.<task>.infer`). The ONNX evaluation, the benchmark and
the service all predict through this module.

`predict` runs a batch's rows in groups of similar token count, each padded to its own longest
row (`stackport.inference.batching`): a long text no longer makes the short ones beside it pay
for its padding.

A text-level model trained on windows (`OnnxModel.max_windows` > 1) reads a long text as up
to that many consecutive windows of `max_length` tokens, one row each, and predicts it by the
mean of their logits, as it was evaluated in training.

A word-level model (NER) is trained on pre-split words, each word tokenized on its own and
predicted by its first sub-word; raw text is split into words as `stackport.inference.words`
says. As in training, a text whose sub-words do not fit `max_length` is split into windows of
whole words that do, one row each; the plug-in joins their tags again, so every word is tagged
and offsets index the whole text. Only a single word longer than a whole window is truncated:
its first sub-word, which carries its tag, is kept. (`OnnxPredictor.encode`, which the parity
check and the int8 calibration use, gives one truncated row per text.)
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Encoding, Tokenizer

from stackport.core.numerics import mean_by_text
from stackport.core.plugins import EncodedBatch
from stackport.inference.batching import length_groups
from stackport.inference.onnx_model import OnnxModel
from stackport.inference.words import Text, texts_and_words, word_lists, word_windows
from stackport.tasks import inference_plugin

# Graph input name → the `tokenizers.Encoding` attribute that feeds it.
ENCODING_FIELDS = {
    "input_ids": "ids",
    "attention_mask": "attention_mask",
    "token_type_ids": "type_ids",
}


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


def post_process(row_logits: np.ndarray, batch: EncodedBatch, model: OnnxModel) -> list[Any]:
    """One prediction per text of the batch from the logits of its rows, by the model's task.

    A text-level task gets each text's mean logits over its rows (windows); a word-level task
    gets every row's token logits.
    """
    plugin = inference_plugin(model.task)
    logits = row_logits
    if not plugin.word_level and len(batch.row_texts) != len(batch.texts):
        logits = mean_by_text(row_logits, batch.row_texts, len(batch.texts))
    return plugin.post_process(logits, batch, model.label_names, model.thresholds)


class OnnxPredictor:
    """Tokenizes texts, runs an ONNX Runtime session and post-processes its outputs."""

    def __init__(self, model: OnnxModel, threads: int | None = None):
        """Open the model's tokenizer and an ONNX Runtime CPU session on its graph.

        Args:
            model: The model to predict with.
            threads: Intra-op threads; `None` means one per available core.
        """
        self.model = model
        self.word_level = inference_plugin(model.task).word_level
        self.tokenizer = Tokenizer.from_file(str(model.tokenizer_path))
        processor = self.tokenizer.post_processor
        self.special_tokens = processor.num_special_tokens_to_add(False) if processor else 0
        padding = self.tokenizer.padding or {}
        self.right_padded = padding.get("direction", "right").lower() == "right"
        # Word-level: counts each word's sub-words in a whole text, to split it into windows.
        # Several windows of a text: cuts it into windows of `max_length` tokens (unpadded).
        self.splitter: Tokenizer | None = None
        if self.word_level or model.max_windows > 1:
            self.splitter = Tokenizer.from_file(str(model.tokenizer_path))
            self.splitter.no_padding()
            if self.word_level:
                self.splitter.no_truncation()
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
        """The graph's int64 inputs: one row per encoding (padded to the same length)."""
        return {
            name: np.array(
                [getattr(encoding, ENCODING_FIELDS[name]) for encoding in encodings],
                dtype=np.int64,
            )
            for name in self.input_names
        }

    def _word_batch(
        self,
        texts: list[str],
        words: list,
        encodings: list[Encoding],
        row_texts: list[int],
        row_words: list[tuple[int, int]],
    ) -> EncodedBatch:
        return EncodedBatch(
            texts=texts,
            inputs=self.inputs(encodings),
            row_texts=row_texts,
            words=words,
            row_words=row_words,
            row_word_ids=[encoding.word_ids for encoding in encodings],
        )

    def encode(self, texts: Sequence[Text]) -> EncodedBatch:
        """Tokenize a batch (a word-level model: word by word) into one truncated row per text."""
        strings, words = texts_and_words(texts, self.word_level)
        rows = list(range(len(strings)))
        if words is None:
            encodings = self.tokenizer.encode_batch(strings)
            return EncodedBatch(strings, self.inputs(encodings), rows)
        encodings = self.tokenizer.encode_batch(word_lists(strings, words), is_pretokenized=True)
        row_words = [(0, len(spans)) for spans in words]
        return self._word_batch(strings, words, encodings, rows, row_words)

    def encode_word_windows(self, texts: Sequence[Text]) -> EncodedBatch:
        """Tokenize a word-level batch into windows of whole words that fit `max_length`.

        Each text gives one row per window, in order (at least one, empty for a text without
        words); only a single word longer than a whole window is truncated.
        """
        strings, words = texts_and_words(texts, word_level=True)
        text_words = word_lists(strings, words)
        pieces = self.splitter.encode_batch(
            text_words, is_pretokenized=True, add_special_tokens=False
        )
        capacity = self.model.max_length - self.special_tokens
        rows, row_texts, row_words = [], [], []
        for text, (this_text_words, encoding) in enumerate(zip(text_words, pieces, strict=True)):
            counts = Counter(word for word in encoding.word_ids if word is not None)
            lengths = [counts[word] for word in range(len(this_text_words))]
            for start, end in word_windows(lengths, capacity):
                rows.append(this_text_words[start:end])
                row_texts.append(text)
                row_words.append((start, end))
        encodings = self.tokenizer.encode_batch(rows, is_pretokenized=True)
        return self._word_batch(strings, words, encodings, row_texts, row_words)

    def encode_token_windows(self, texts: Sequence[str]) -> EncodedBatch:
        """Tokenize a batch into up to `max_windows` consecutive windows of each text.

        Each text gives one row per window, in order; the rows are padded to the longest.
        """
        strings, _ = texts_and_words(texts, word_level=False)
        rows, row_texts = [], []
        for text, encoding in enumerate(self.splitter.encode_batch(strings)):
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
        return EncodedBatch(strings, self.inputs(rows), row_texts)

    def encode_for_prediction(self, texts: Sequence[Text]) -> EncodedBatch:
        """The batch `predict` runs: windows of words, windows of tokens or one row per text."""
        if self.word_level:
            return self.encode_word_windows(texts)
        if self.model.max_windows > 1:
            return self.encode_token_windows(texts)
        return self.encode(texts)

    def predict(self, texts: Sequence[Text]) -> list[Any]:
        """One prediction per text (the task's prediction model), in order.

        The windows of all the batch's texts (of words, or of tokens when the model reads
        several windows of a text) run at once.
        """
        batch = self.encode_for_prediction(texts)
        return post_process(self.run_rows(batch.inputs), batch, self.model)

    def run_rows(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """The graph's logits for every row of `inputs`, run in groups of similar length.

        Each group is cut to its longest row (the tokenizer pads on the right); a word-level
        model's token logits are padded back to the batch's width, with zeros.
        """
        mask = inputs["attention_mask"]
        if self.right_padded and len(mask) > 1:
            lengths = mask.sum(axis=1).tolist()
            groups = length_groups(lengths)
        else:
            lengths, groups = [mask.shape[1]] * len(mask), [list(range(len(mask)))]
        logits = None
        for rows in groups:
            width = max(lengths[row] for row in rows)
            group = {name: values[rows, :width] for name, values in inputs.items()}
            group_logits = self.session.run(None, group)[0]
            if logits is None:
                shape = (len(mask), *group_logits.shape[1:])
                if group_logits.ndim == 3:  # token logits: the batch's width
                    shape = (len(mask), mask.shape[1], group_logits.shape[2])
                logits = np.zeros(shape, dtype=group_logits.dtype)
            logits[rows, : group_logits.shape[1]] = group_logits
        return logits

    def predict_batches(self, texts: Sequence[Text], batch_size: int) -> list[Any]:
        """Predictions for many texts, `batch_size` texts at a time, in order."""
        return [
            prediction for batch in batches(texts, batch_size) for prediction in self.predict(batch)
        ]
