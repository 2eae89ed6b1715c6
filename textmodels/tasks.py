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


# The column of a tokenized table giving each row's example (its position in the split): the
# rows of one example are the windows a long text or sentence was split into.
EXAMPLE_ID_COLUMN = "example_id"
