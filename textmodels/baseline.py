"""The TF-IDF + logistic-regression baseline a fine-tuned text classifier has to beat."""

from __future__ import annotations

import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from textmodels.evaluation import EvaluationReport, classification_report

BASELINE_NAME = "tfidf-logreg"


def tfidf_vectorizer() -> TfidfVectorizer:
    """Sublinear TF-IDF of word 1-2 grams that occur in at least 2 texts."""
    return TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2)


def logistic_regression(seed: int) -> LogisticRegression:
    """The baseline's weakly regularised logistic regression."""
    return LogisticRegression(C=10, max_iter=2000, random_state=seed)


def evaluate_tfidf_baseline(
    train: pd.DataFrame, test: pd.DataFrame, label_names: list[str], seed: int = 42
) -> EvaluationReport:
    """Fit TF-IDF (word 1-2 grams) + logistic regression on `train`, evaluate on `test`."""
    classifier = make_pipeline(tfidf_vectorizer(), logistic_regression(seed))
    label_ids = {name: index for index, name in enumerate(label_names)}
    classifier.fit(train["text"], train["label"].map(label_ids))
    return classification_report(
        BASELINE_NAME,
        "test",
        label_names,
        true_ids=test["label"].map(label_ids).tolist(),
        predicted_ids=classifier.predict(test["text"]).tolist(),
    )
