"""The sites of the directory as the adapters need them: does a site exist, and what is its name.

Adapters attach their own rows (HL7 senders and endpoints, DICOM calling AE titles) to a site; they check the
site inside their own write transaction and show its name beside their rows, without knowing the directory's
tables.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select
from sqlalchemy.orm import Session

from engine.store.directory_models import SiteRow


def site_exists(session: Session, site_id: str) -> bool:
    """Whether the directory has this site, read in the caller's transaction."""
    return session.get(SiteRow, site_id) is not None


def with_site_name(query: Select[Any], site_id_column: ColumnElement[Any]) -> Select[Any]:
    """`query` with the name of the site `site_id_column` names as its last column, in the same statement
    (an inner join: a row whose site is unknown is left out)."""
    return query.add_columns(SiteRow.name).join(SiteRow, SiteRow.id == site_id_column)
