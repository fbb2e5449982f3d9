"""Charter rule packs per organisation and declared activity for the teleradiology share (issue 19, items 3-4)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-08
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
