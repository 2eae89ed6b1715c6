"""Evaluation: the report every task produces, and the parts of the TF-IDF baselines."""
