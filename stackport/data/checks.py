"""The building blocks of data checks: Great Expectations expectations and how to word failures.

Each task plans its checks from these blocks (its `TaskTraining.text_checks` and
`label_checks`); `stackport.data.validation` runs them as one suite and reports the results.
A check that needs a computed value adds a helper column to the frame being validated, never
to the caller's frame.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from stackport.data.sources import cell_list

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

    from stackport.core.settings import ValidationSettings

SHOWN_ROWS = 5
SHOWN_VALUES = 5
VALUE_CHARS = 80


@dataclass
class PlannedCheck:
    """A check to run: its Great Expectations expectation and how to word a failure."""

    name: str
    description: str
    expectation: Expectation
    explain: Callable[[dict[str, Any]], str]


@dataclass(frozen=True)
class LabelWording:
    """How the label checks of a task name what they count.

    Attributes:
        noun: What a label is, e.g. `label` or `entity type`.
        kind: What a group of examples sharing a label is called, e.g. `class`.
        unit: What is counted per label, e.g. `example` or `mention`.
    """

    noun: str
    kind: str
    unit: str


CLASS_LABELS = LabelWording(noun="label", kind="class", unit="example")


def text_checks(
    data: pd.DataFrame, text_column: str, settings: ValidationSettings
) -> list[PlannedCheck]:
    """Checks on texts: present, not blank, of a length within the settings' bounds."""
    import great_expectations.expectations as gxe

    low, high = settings.min_text_chars, settings.max_text_chars

    def explain_lengths(result: dict[str, Any]) -> str:
        rows = result["unexpected_index_list"]
        lengths = ", ".join(
            f"row {row}: {len(str(data.at[row, text_column]))} chars" for row in rows[:SHOWN_ROWS]
        )
        more = f" and {len(rows) - SHOWN_ROWS} more" if len(rows) > SHOWN_ROWS else ""
        return rows_have(rows, f"a text length outside [{low}, {high}]", f"{lengths}{more}")

    return [
        PlannedCheck(
            "text_not_null",
            f"every row has a text in {text_column!r}",
            gxe.ExpectColumnValuesToNotBeNull(column=text_column),
            lambda result: rows_have(result["unexpected_index_list"], "no text"),
        ),
        PlannedCheck(
            "text_not_blank",
            "no text is blank (empty or whitespace only)",
            gxe.ExpectColumnValuesToNotMatchRegex(column=text_column, regex=r"^\s*$"),
            lambda result: rows_have(result["unexpected_index_list"], "a blank text"),
        ),
        PlannedCheck(
            "text_length_in_range",
            f"every text has between {low} and {high} characters",
            gxe.ExpectColumnValueLengthsToBeBetween(
                column=text_column, min_value=low, max_value=high
            ),
            explain_lengths,
        ),
    ]


def not_null_check(column: str, name: str, noun: str) -> PlannedCheck:
    """Every row has a value in `column`; `noun` names the value, e.g. `label`."""
    import great_expectations.expectations as gxe

    return PlannedCheck(
        name,
        f"every row has {with_article(noun)} in {column!r}",
        gxe.ExpectColumnValuesToNotBeNull(column=column),
        lambda result: rows_have(result["unexpected_index_list"], f"no {noun}"),
    )


def row_problems_check(
    data: pd.DataFrame, name: str, description: str, problems: pd.Series, what: str
) -> PlannedCheck:
    """A check failing on every row whose entry in `problems` is not None.

    Args:
        data: The frame being validated; receives the problems as a helper column.
        name: The check's name.
        description: What the check expects.
        problems: Per row, what is wrong with it (e.g. `'I-PER' at token 2 follows 'O'`),
            or None.
        what: What the failing rows have, e.g. `tags that are not IOB2`.

    Returns:
        The check; its details quote the first rows' problems.
    """
    import great_expectations.expectations as gxe

    column = helper_column(data, name)
    data[column] = problems

    def explain(result: dict[str, Any]) -> str:
        rows = result["unexpected_index_list"]
        listing = "; ".join(f"row {row}: {problems.iloc[row]}" for row in rows[:SHOWN_ROWS])
        more = f" and {len(rows) - SHOWN_ROWS} more" if len(rows) > SHOWN_ROWS else ""
        return rows_have(rows, what, f"{listing}{more}")

    return PlannedCheck(name, description, gxe.ExpectColumnValuesToBeNull(column=column), explain)


def declared_labels_check(
    data: pd.DataFrame, labels: pd.Series, declared: list[str], wording: LabelWording
) -> PlannedCheck:
    """Every label of every row is one of the declared labels.

    Args:
        data: The frame being validated; receives a helper column.
        labels: Per row, the labels it carries (a list, empty when it has none).
        declared: The declared labels.
        wording: How to name the labels.

    Returns:
        The check; its details name the undeclared labels and how many rows carry each.
    """
    import great_expectations.expectations as gxe

    allowed = set(declared)
    undeclared = labels.map(lambda row: sorted(set(row) - allowed) or None)
    column = helper_column(data, "undeclared_labels")
    data[column] = undeclared

    def explain(result: dict[str, Any]) -> str:
        rows = result["unexpected_index_list"]
        found = Counter(label for row in rows for label in undeclared.iloc[row]).most_common()
        shown = ", ".join(
            f"{quote(label)} ({plural(count, 'row')})" for label, count in found[:SHOWN_VALUES]
        )
        more = f" and {len(found) - SHOWN_VALUES} more" if len(found) > SHOWN_VALUES else ""
        outside = rows_have(rows, f"{with_article(wording.noun)} outside the declared set")
        return f"{outside}; the undeclared {wording.noun}s are {shown}{more}"

    return PlannedCheck(
        "label_in_declared_set",
        f"every {wording.noun} is one of the declared {wording.noun}s ({quoted_values(declared)})",
        gxe.ExpectColumnValuesToBeNull(column=column),
        explain,
    )


def declared_labels_seen_check(
    data: pd.DataFrame, labels: pd.Series, declared: list[str], wording: LabelWording
) -> PlannedCheck:
    """Every declared label occurs at least once, so that the model can learn it."""
    seen = {label for row in labels for label in row}
    unseen = [label for label in declared if label not in seen]
    return _aggregate_check(
        data,
        "declared_labels_seen",
        f"every declared {wording.noun} occurs in the data",
        len(unseen),
        max_value=0,
        explain=lambda _: f"declared {wording.noun}s never seen: {quoted_values(unseen)}",
    )


def enough_classes_check(
    data: pd.DataFrame, labels: pd.Series, min_classes: int, wording: LabelWording
) -> PlannedCheck:
    """At least `min_classes` distinct labels occur."""
    distinct = sorted({label for row in labels for label in row})

    def explain(_: dict[str, Any]) -> str:
        if not distinct:
            return f"found no {wording.noun}s"
        found = plural(len(distinct), f"distinct {wording.noun}")
        return f"found {found} ({quoted_values(distinct)})"

    return _aggregate_check(
        data,
        "enough_classes",
        f"there are at least {min_classes} distinct {wording.noun}s",
        len(distinct),
        min_value=min_classes,
        explain=explain,
    )


def enough_examples_check(
    data: pd.DataFrame, labels: pd.Series, min_examples: int, wording: LabelWording
) -> PlannedCheck:
    """Every label occurs at least `min_examples` times; rows carrying a rarer label fail."""
    import great_expectations.expectations as gxe

    counts = Counter(label for row in labels for label in row)
    column = helper_column(data, "rarest_label_count")
    data[column] = labels.map(lambda row: min((counts[label] for label in row), default=None))
    small = sorted(
        ((label, count) for label, count in counts.items() if count < min_examples),
        key=lambda item: (item[1], item[0]),
    )

    def explain(_: dict[str, Any]) -> str:
        return "; ".join(
            f"{wording.kind} {quote(label)} has {plural(count, wording.unit)}, "
            f"fewer than {min_examples}"
            for label, count in small
        )

    return PlannedCheck(
        "enough_examples_per_class",
        f"every {wording.kind} has at least {min_examples} {wording.unit}s",
        gxe.ExpectColumnValuesToBeBetween(column=column, min_value=min_examples),
        explain,
    )


def label_set_checks(
    data: pd.DataFrame,
    labels: pd.Series,
    settings: ValidationSettings,
    wording: LabelWording,
    examples: pd.Series | None = None,
) -> list[PlannedCheck]:
    """The label checks of every task: only declared labels, each of them seen, enough of each.

    Args:
        data: The frame being validated (helper columns are added to it).
        labels: Each row's labels (a list per row).
        settings: The declared labels and the minimum counts.
        wording: How the task names its labels.
        examples: What counts as an example of a label, per row, when it is not `labels`
            (e.g. each entity mention of a sentence).
    """
    planned = []
    if settings.labels is not None:
        declared = [str(label) for label in settings.labels]
        planned += [
            declared_labels_check(data, labels, declared, wording),
            declared_labels_seen_check(data, labels, declared, wording),
        ]
    return [
        *planned,
        enough_classes_check(data, labels, settings.min_classes, wording),
        enough_examples_check(
            data,
            labels if examples is None else examples,
            settings.min_examples_per_class,
            wording,
        ),
    ]


def split_check(
    data: pd.DataFrame,
    text_column: str,
    split_column: str,
    text_key: Callable[[Any], str],
    max_shared_texts: int = 0,
) -> PlannedCheck:
    """At most `max_shared_texts` distinct texts occur in two different splits.

    `text_key` says when two texts are the same.
    """
    texts = data[text_column].map(lambda text: None if is_missing(text) else text_key(text))
    splits_per_text = data[split_column].groupby(texts).nunique()
    shared = splits_per_text.index[splits_per_text > 1]

    def explain_overlap(_: dict[str, Any]) -> str:
        example = shared[0]
        rows = data.index[texts == example].tolist()
        splits = ", ".join(sorted({str(split) for split in data.loc[rows, split_column]}))
        allowed = f" (at most {max_shared_texts} allowed)" if max_shared_texts else ""
        return (
            f"{plural(len(shared), 'text')} {'appears' if len(shared) == 1 else 'appear'} in more "
            f"than one split{allowed}, e.g. {quote(example)} in {splits} ({row_numbers(rows)})"
        )

    most = f"more than {max_shared_texts} texts appear" if max_shared_texts else "no text appears"
    return _aggregate_check(
        data,
        "no_text_in_two_splits",
        f"{most} in more than one split (column {split_column!r})",
        len(shared),
        max_value=max_shared_texts,
        explain=explain_overlap,
    )


def _aggregate_check(
    data: pd.DataFrame,
    name: str,
    description: str,
    value: int,
    explain: Callable[[dict[str, Any]], str],
    min_value: int | None = None,
    max_value: int | None = None,
) -> PlannedCheck:
    """A check on one number computed over the whole frame, held in a constant helper column."""
    import great_expectations.expectations as gxe

    column = helper_column(data, name)
    data[column] = value
    return PlannedCheck(
        name,
        description,
        gxe.ExpectColumnMaxToBeBetween(column=column, min_value=min_value, max_value=max_value),
        explain,
    )


def is_missing(value: Any) -> bool:
    """Whether a cell is missing (None, NaN, NA); a list or an array never is."""
    return cell_list(value) is None and bool(pd.isna(value))


def label_text(value: Any) -> str | None:
    """A label as text: 3 and 3.0 (an integer column with gaps) both become "3"."""
    if is_missing(value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def helper_column(data: pd.DataFrame, stem: str) -> str:
    """A column name for a helper column that does not clash with the data's columns."""
    name = f"__{stem}__"
    while name in data.columns:
        name += "_"
    return name


def quote(value: Any) -> str:
    """A value for a message: quoted, on one line, at most `VALUE_CHARS` characters."""
    text = str(value)
    if len(text) > VALUE_CHARS:
        text = text[: VALUE_CHARS - 1] + "…"
    return repr(text)


def quoted_values(values: Iterable[Any]) -> str:
    """The first `SHOWN_VALUES` values, quoted, and how many more there are."""
    values = list(values)
    shown = ", ".join(quote(value) for value in values[:SHOWN_VALUES])
    hidden = len(values) - SHOWN_VALUES
    return f"{shown} and {hidden} more" if hidden > 0 else shown


def plural(count: int, noun: str) -> str:
    """The count and the noun, plural unless the count is 1: `1 row`, `3 rows`."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def with_article(noun: str) -> str:
    """`a label`, `an entity type`."""
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def rows_have(rows: list[int], what: str, listing: str | None = None) -> str:
    """`3 rows have <what> (rows 4, 17, 30)`; `listing` replaces the row numbers."""
    verb = "has" if len(rows) == 1 else "have"
    return f"{plural(len(rows), 'row')} {verb} {what} ({listing or row_numbers(rows)})"


def row_numbers(rows: list[int]) -> str:
    """`row 4` or `rows 4, 17, 30`: at most `SHOWN_ROWS` 0-based positions, then how many more."""
    shown = ", ".join(str(row) for row in rows[:SHOWN_ROWS])
    hidden = len(rows) - SHOWN_ROWS
    more = f" and {hidden} more" if hidden > 0 else ""
    return f"{'row' if len(rows) == 1 else 'rows'} {shown}{more}"
