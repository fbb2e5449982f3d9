"""Conventions with their content: approvals with dates and documents, pathway, technical and remuneration parts (issue 19, item 5)

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-08
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
