"""Form schemas written in the designer, read from the database by the form registry."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.store.designer_models import FormSchemaRow
from forms import FormSource


def sql_form_source(reader: sessionmaker[Session]) -> FormSource:
    def get(key: str) -> str | None:
        with reader() as session:
            return session.execute(select(FormSchemaRow.schema).where(FormSchemaRow.key == key)).scalar()

    def keys() -> list[str]:
        with reader() as session:
            return list(session.execute(select(FormSchemaRow.key)).scalars())

    return FormSource(get, keys)
