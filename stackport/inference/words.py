"""Words of a text for word-level models (NER), split the way CoNLL splits them.

White space separates words, and punctuation at the start or end of a word is a word of its
own (`"(Paris),"` gives `(`, `Paris`, `)`, `,`), while punctuation inside a word stays in it
(`U.S`, `1,000`, `don't`). Pre-split words may be given instead of a text; they are joined by
single spaces, and offsets refer to that joined text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from stackport.core.plugins import WordSpans

# A word: word characters with anything but white space between them, or one other character.
WORD_PATTERN = re.compile(r"\w(?:\S*\w)?|[^\w\s]")

# A text to predict for: a string, or (for a word-level model) its words, already split.
Text = str | Sequence[str]


def split_words(text: str) -> WordSpans:
    """The character spans of a text's words."""
    return [match.span() for match in WORD_PATTERN.finditer(text)]


def joined_words(words: Sequence[str]) -> tuple[str, WordSpans]:
    """Pre-split words joined by single spaces, and the span of each word in the result."""
    spans, start = [], 0
    for word in words:
        spans.append((start, start + len(word)))
        start += len(word) + 1
    return " ".join(words), spans


def word_lists(texts: Sequence[str], words: Sequence[WordSpans]) -> list[list[str]]:
    """The words of every text, as strings."""
    return [
        [text[start:end] for start, end in spans] for text, spans in zip(texts, words, strict=True)
    ]


def texts_and_words(
    texts: Sequence[Text], word_level: bool
) -> tuple[list[str], list[WordSpans] | None]:
    """The texts as strings and, for a word-level model, the spans of their words.

    Raises:
        TypeError: Pre-split words were given to a model that reads whole texts.
    """
    if not word_level:
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
