"""Site visits, validated imaging devices and reading workstations (issue 19, item 6)

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-08
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
