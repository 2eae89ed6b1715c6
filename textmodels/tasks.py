"""The tasks the package trains models for."""

from enum import StrEnum


class Task(StrEnum):
    """A supervised text task.

    Only single-label classification is implemented today; multi-label classification and
    token classification (NER) join this enum when their readers, models and metrics land.
    """

    CLASSIFICATION = "classification"
