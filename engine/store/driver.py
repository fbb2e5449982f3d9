"""Statements of the hot path, compiled by SQLAlchemy once and run on the driver's cursor.

Executing a cached Core statement through a SQLAlchemy Connection costs about 60-75 µs on this class
of machine, against 5-10 µs for the same statement on the sqlite3 or psycopg cursor; a task completion
writes four to six statements. So the few writes of every save are compiled once per dialect by
SQLAlchemy (same SQL, same bind processors, so a value is stored exactly as SQLAlchemy would store it)
and sent straight to the cursor of the connection the session is already using, inside its transaction.

DriverStatement: INSERT/UPDATE/DELETE statements whose values are all given as parameters (Python-side
column defaults are not applied; nothing is read back but the row count). DriverQuery: the reads every API
call makes (bearer token, inbox, task, the locking read of a task and its case), whose values go through
SQLAlchemy's result processors; they run in a Session's transaction or in EngineContext.driver_read.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql import CompoundSelect, Select
from sqlalchemy.sql.dml import UpdateBase


class _Compiled:
    __slots__ = ("sql", "names", "processors", "literals")

    def __init__(self, sql: str, names: tuple[str, ...] | None, processors: Mapping[str, Any],
                 literals: Mapping[str, Any]):
        self.sql = sql
        self.names = names  # positional parameter order (sqlite3), or None for named parameters
        self.processors = processors
        self.literals = literals  # values written in the statement itself, e.g. status == "open"

    @classmethod
    def of(cls, c: Any) -> _Compiled:
        """SQL, parameter order, bind processors and literal values of a statement compiled by SQLAlchemy."""
        names = tuple(c.positiontup) if c.positional and c.positiontup is not None else None
        processors = {k: v for k, v in c._bind_processors.items() if v is not None}
        literals = {name: bind.value for name, bind in c.binds.items() if not bind.required}
        return cls(c.string, names, processors, literals)

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        procs = self.processors
        if self.literals:
            values = {**self.literals, **values}
        if self.names is not None:
            return tuple(procs[n](values[n]) if n in procs else values[n] for n in self.names)
        return {k: procs[k](v) if k in procs else v for k, v in values.items()}


class DriverStatement:
    """An INSERT, UPDATE or DELETE run on the DBAPI cursor; `columns` fixes the columns of an INSERT."""

    def __init__(self, statement: UpdateBase, columns: Sequence[str] | None = None):
        self._statement = statement
        self._columns = list(columns) if columns is not None else None
        self._by_dialect: dict[str, _Compiled] = {}

    def _compiled(self, dialect: Dialect) -> _Compiled:
        compiled = self._by_dialect.get(dialect.name)
        if compiled is None:
            compiled = self._by_dialect.setdefault(
                dialect.name, _Compiled.of(self._statement.compile(dialect=dialect, column_keys=self._columns)))
        return compiled

    def execute(self, session: Session, rows: Sequence[Mapping[str, Any]]) -> int:
        """Run once per row (one executemany call); returns the driver's row count."""
        if not rows:
            return 0
        connection = session.connection()
        compiled = self._compiled(connection.dialect)
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            if len(rows) == 1:
                cursor.execute(compiled.sql, compiled.parameters(rows[0]))
            else:
                cursor.executemany(compiled.sql, [compiled.parameters(row) for row in rows])
            return int(cursor.rowcount)
        finally:
            cursor.close()


class DriverReader:
    """A pooled DBAPI connection inside a read transaction (EngineContext.driver_read): for the reads every
    API call makes (bearer token, inbox, task), where a Session and its Connection would cost more than the
    statements themselves."""

    __slots__ = ("driver_connection", "dialect")

    def __init__(self, driver_connection: Any, dialect: Dialect):
        self.driver_connection = driver_connection
        self.dialect = dialect


Source = Session | DriverReader


def _driver_side(source: Source) -> tuple[Any, Dialect]:
    if isinstance(source, DriverReader):
        return source.driver_connection, source.dialect
    connection = source.connection()
    return connection.connection.driver_connection, connection.dialect


class DriverQuery:
    """A SELECT compiled by SQLAlchemy once per dialect and run on the driver's cursor; each row comes back as a
    named tuple of values converted by SQLAlchemy's own result processors (dates, booleans...).

    Expanding parameters (`bindparam("roles", expanding=True)`, given a list) are compiled once per dialect
    and list lengths, as `IN (?, ?)` with parameters roles_1, roles_2."""

    def __init__(self, statement: Select[Any] | CompoundSelect):
        self._statement = statement
        self._by_key: dict[tuple[Any, ...], tuple[_Compiled, Any, list[Any]]] = {}
        # dialect -> (names of the expanding parameters, names of the other parameters given per call); one
        # tuple, published at once, so a thread never sees half of it
        self._parameters: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}

    def _parameter_names(self, dialect: Dialect) -> tuple[tuple[str, ...], tuple[str, ...]]:
        found = self._parameters.get(dialect.name)
        if found is None:
            plain = self._statement.compile(dialect=dialect)
            if any(bind.literal_execute for bind in plain.binds.values()):
                # rendered into the SQL: the cached variant would keep the first call's value
                raise ValueError("DriverQuery does not support literal_execute parameters")
            found = self._parameters.setdefault(dialect.name, (
                tuple(sorted(n for n, b in plain.binds.items() if b.expanding)),
                tuple(n for n, b in plain.binds.items() if b.required and not b.expanding)))
        return found

    def _compiled(self, dialect: Dialect, values: Mapping[str, Any]) -> tuple[_Compiled, Any, list[Any]]:
        expanding, required = self._parameter_names(dialect)
        key = (dialect.name, *(len(values[name]) for name in expanding))
        found = self._by_key.get(key)
        if found is None:
            found = self._by_key.setdefault(key, self._compile(dialect, expanding, required, values))
        return found

    def _compile(self, dialect: Dialect, expanding: tuple[str, ...], required: tuple[str, ...],
                 values: Mapping[str, Any]) -> tuple[_Compiled, Any, list[Any]]:
        if expanding:
            placeholders: dict[str, Any] = {name: None for name in required}
            placeholders.update({name: [None] * len(values[name]) for name in expanding})
            c = self._statement.params(placeholders).compile(dialect=dialect,
                                                             compile_kwargs={"render_postcompile": True})
            compiled = _Compiled.of(c)
            compiled.literals = {k: v for k, v in compiled.literals.items() if k not in placeholders}
            # each item of a list goes through its list's bind processor (dates, booleans...)
            processors = dict(compiled.processors)
            for name in expanding:
                processor = processors.pop(name, None)
                if processor is not None:
                    processors.update({f"{name}_{n}": processor for n in range(1, len(values[name]) + 1)})
            compiled.processors = processors
        else:
            c = self._statement.compile(dialect=dialect)
            compiled = _Compiled.of(c)
        columns = c._result_columns
        row_class = namedtuple("Row", [column[0] for column in columns])  # type: ignore[misc]
        converters = [column[3]._cached_result_processor(dialect, None) for column in columns]
        return compiled, row_class, converters

    def all(self, source: Source, values: Mapping[str, Any]) -> list[Any]:
        return self._run(source, values, None)

    def one_or_none(self, source: Source, values: Mapping[str, Any]) -> Any:
        rows = self._run(source, values, 2)
        if not rows:
            return None
        if len(rows) > 1:
            raise ValueError("more than one row")
        return rows[0]

    def _run(self, source: Source, values: Mapping[str, Any], at_most: int | None) -> list[Any]:
        driver_connection, dialect = _driver_side(source)
        compiled, row_class, converters = self._compiled(dialect, values)
        expanding = self._parameters[dialect.name][0]
        if expanding:
            values = dict(values)
            for name in expanding:
                values.update({f"{name}_{n}": item for n, item in enumerate(values.pop(name), start=1)})
        cursor = driver_connection.cursor()
        try:
            cursor.execute(compiled.sql, compiled.parameters(values))
            rows = cursor.fetchall() if at_most is None else cursor.fetchmany(at_most)
        finally:
            cursor.close()
        if not any(converters):
            return [row_class(*row) for row in rows]
        return [row_class(*(convert(value) if convert is not None else value
                            for convert, value in zip(converters, row, strict=True))) for row in rows]
