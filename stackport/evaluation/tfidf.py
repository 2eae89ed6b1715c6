"""The parts of the TF-IDF + logistic-regression baselines a fine-tuned text classifier must beat.

The classification and multi-label tasks fit their baselines from these (see their
`train.py`), so that both baselines read texts the same way.
"""

from __future__ import annotations

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression


def tfidf_vectorizer() -> TfidfVectorizer:
    """Sublinear TF-IDF of word 1-2 grams that occur in at least 2 texts."""
    return TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2)


def logistic_regression(seed: int) -> LogisticRegression:
    """The baseline's weakly regularised logistic regression."""
    return LogisticRegression(C=10, max_iter=2000, random_state=seed)
