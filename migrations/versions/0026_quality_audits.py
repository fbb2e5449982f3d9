"""Periodic quality audits: issued reports and follow-up actions (issue 19, item 2)

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-08
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
