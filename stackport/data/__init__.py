"""Data: bundled data sets and file sources, checks and validation, splitting, tokenization."""
