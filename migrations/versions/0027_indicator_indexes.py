"""Indexes for the quality indicators' aggregates (issue 19, item 1)

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-08
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
