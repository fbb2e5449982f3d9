"""Acts and fees: CCAM tables by date of effect, the acts of each case, monthly statements and adjustments (issue 20, item 1)

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-08
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
