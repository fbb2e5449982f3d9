"""Research export production: restart of interrupted productions (issue 20, item 2)

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-08
"""
import sqlalchemy as sa
from alembic import op

revision = '0033'
down_revision = '0032'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("research_request") as batch:
        batch.add_column(sa.Column("attempt", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("research_request") as batch:
        batch.drop_column("heartbeat_at")
        batch.drop_column("attempt")
