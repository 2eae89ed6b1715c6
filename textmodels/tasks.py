"""The tasks the package trains models for.

Everything that differs between tasks is looked up in `textmodels.task_registry`; this module
stays free of heavy imports because the command line builds its `--task` choices from it.
"""

from enum import StrEnum


class Task(StrEnum):
    """A supervised text task."""

    CLASSIFICATION = "classification"
    """One label per text."""
    MULTILABEL = "multilabel"
    """Any number of labels per text."""
    NER = "ner"
    """One IOB2 tag per token of a sentence (named-entity recognition)."""
