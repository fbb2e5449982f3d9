"""JSON_ARRAY_AGG: the values of a column as one JSON array (text), on SQLite and PostgreSQL.

An aggregate that keeps values apart whatever characters they hold, where a joined string would need a separator
that the values can never contain. SQLite spells it json_group_array (always an array, "[]" over no rows);
PostgreSQL json_agg (NULL over no rows), cast to text so that both drivers return a string.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction


class json_array_agg(GenericFunction[str]):  # noqa: N801 - named like the SQL function it stands for
    type = Text()
    inherit_cache = True


@compiles(json_array_agg, "sqlite")
def _sqlite(element: json_array_agg, compiler: Any, **kw: Any) -> str:
    return f"json_group_array({compiler.process(element.clauses, **kw)})"


@compiles(json_array_agg, "postgresql")
def _postgresql(element: json_array_agg, compiler: Any, **kw: Any) -> str:
    return f"CAST(json_agg({compiler.process(element.clauses, **kw)}) AS TEXT)"
