"""Named-entity recognition at inference: entity spans with character offsets into the text.

Each word's tag is the best tag of its first sub-word; entities are read from the IOB2 tags as
seqeval (and CoNLL's conlleval) reads them, and a text split into windows of words has its
windows' tags joined again first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field, NonNegativeInt

from stackport.core.numerics import softmax
from stackport.core.plugins import EncodedBatch, Probability, TaskInference

OUTSIDE = "O"


class Entity(BaseModel):
    """A named entity found in a text."""

    type: str = Field(description="The entity type, e.g. PER (tagged B-PER, I-PER).")
    score: Probability = Field(description="The mean probability of its words' tags.")
    start: NonNegativeInt = Field(
        description="Offset (in Unicode code points) of its first character in the text."
    )
    end: NonNegativeInt = Field(
        description="Offset just past its last character: text[start:end] is the entity."
    )
    text: str = Field(description="The entity as it is written in the text.")


class EntityPrediction(BaseModel):
    """Named-entity recognition: the entities of a text, in order of their position."""

    entities: list[Entity]


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


def row_word_tags(
    logits: np.ndarray, word_ids: Sequence[int | None], words: int, names: Sequence[str]
) -> tuple[list[str], list[float]]:
    """Each word of a row: the best tag of its first sub-word, and that tag's probability.

    Words cut off by the truncation (or that the tokenizer turns into no sub-word) are `O`,
    with probability 1.
    """
    tags, scores = [OUTSIDE] * words, [1.0] * words
    probabilities = softmax(logits)
    seen = set()
    for position, word in enumerate(word_ids):
        if word is not None and word not in seen:
            seen.add(word)
            best = int(probabilities[position].argmax())
            tags[word], scores[word] = names[best], float(probabilities[position, best])
    return tags, scores


def text_word_tags(
    logits: np.ndarray, batch: EncodedBatch, names: Sequence[str]
) -> list[tuple[list[str], list[float]]]:
    """Each text's word tags and their probabilities, the tags of its windows joined again."""
    spans = batch.words or []
    tags = [[OUTSIDE] * len(words) for words in spans]
    scores = [[1.0] * len(words) for words in spans]
    rows = zip(batch.row_texts, batch.row_words or [], batch.row_word_ids or [], strict=True)
    for row, (text, (start, end), word_ids) in enumerate(rows):
        row_tags, row_scores = row_word_tags(logits[row], word_ids, end - start, names)
        tags[text][start:end], scores[text][start:end] = row_tags, row_scores
    return list(zip(tags, scores, strict=True))


def recognize_entities(
    logits: np.ndarray,
    batch: EncodedBatch,
    label_names: list[str],
    thresholds: list[float] | None,
) -> list[EntityPrediction]:
    """The entities of each text, with character offsets into it."""
    predictions = []
    text_tags = text_word_tags(logits, batch, label_names)
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


def outcomes(prediction: EntityPrediction) -> tuple[list[str], list[float]]:
    """The type of each entity found, in order, and its score."""
    return (
        [entity.type for entity in prediction.entities],
        [entity.score for entity in prediction.entities],
    )


INFERENCE = TaskInference(
    prediction=EntityPrediction,
    post_process=recognize_entities,
    export_task="token-classification",
    outcomes=outcomes,
    word_level=True,
)
