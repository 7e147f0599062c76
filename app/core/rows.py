"""Named rows of the hot paths' statements, read without SQLAlchemy's result objects.

The hot paths hand their statements to the driver (`db.fetch`) and get plain tuples
back. A `Columns` names a run of a statement's columns after the fields of a
NamedTuple or a mapped class (each column labelled `prefix + name`); a `Layout` finds, once per
statement, where each run sits among the statement's labels, and refuses at import
time a statement whose labels do not follow the fields. So a row is read by name, a
column is added in one place (the NamedTuple and its column side by side), and no
offset is written by hand anywhere.
"""

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import Label
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.sql.selectable import SelectBase

from app.core.db import transient

T = TypeVar("T")
E = TypeVar("E")
R = TypeVar("R", bound=tuple[Any, ...])  # a NamedTuple


class Columns(Generic[T]):
    """A run of a statement's columns, each labelled `prefix + name`, and how a row's
    values of them become one value (`of` a NamedTuple, `entity` a mapped class)."""

    def __init__(
        self,
        names: Sequence[str],
        columns: Sequence[Any],
        make: Callable[[Sequence[Any]], T],
        *,
        prefix: str = "",
    ) -> None:
        self.names = tuple(names)
        self.labels = tuple(prefix + name for name in names)
        # strict: a name without its column (or a column without its name) fails here.
        self.columns: tuple[Label[Any], ...] = tuple(
            column.label(label) for label, column in zip(self.labels, columns, strict=True)
        )
        self.make = make

    @classmethod
    def of(cls, row_type: type[R], columns: Sequence[Any], *, prefix: str = "") -> "Columns[R]":
        """The NamedTuple's fields, in order, as these columns."""
        named = cast(Any, row_type)
        return Columns(named._fields, columns, named._make, prefix=prefix)

    @classmethod
    def entity(cls, mapped: type[E], *, prefix: str = "") -> "Columns[E]":
        """Every column of a mapped class; a row's values become a transient object of it
        (`db.transient`: read only, or written by plain INSERTs)."""
        keys = [attr.key for attr in sa_inspect(mapped).column_attrs]
        columns = [getattr(mapped, key) for key in keys]

        def make(values: Sequence[Any]) -> E:
            return transient(mapped, **dict(zip(keys, values, strict=True)))

        return Columns(keys, columns, make, prefix=prefix)


class Layout:
    """Where each `Columns` of a statement sits in its rows, found by label once."""

    def __init__(self, statement: SelectBase, *runs: Columns[Any]) -> None:
        names = [column.key for column in statement.selected_columns]
        self._slices: dict[int, slice] = {}
        for run in runs:
            if run.labels[0] not in names:
                raise TypeError(f"the statement has no column {run.labels[0]!r}")
            start = names.index(run.labels[0])
            end = start + len(run.labels)
            if tuple(names[start:end]) != run.labels:
                raise TypeError(
                    f"the statement's columns {names[start:end]} are not {list(run.labels)}"
                )
            self._slices[id(run)] = slice(start, end)

    def read(self, row: Sequence[Any], run: Columns[T]) -> T:
        """The run's values of a row, as its value."""
        return run.make(row[self._slices[id(run)]])


def whole(statement: SelectBase, row_type: type[R]) -> None:
    """Refuse (at import time) a statement whose columns are not the NamedTuple's fields,
    in order, for statements whose rows are read whole (`row_type._make(row)`)."""
    names = tuple(column.key for column in statement.selected_columns)
    fields = cast(Any, row_type)._fields
    if names != fields:
        raise TypeError(f"the statement's columns {list(names)} are not {list(fields)}")
