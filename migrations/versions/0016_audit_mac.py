"""audit chain keyed by a MAC whose key lives outside the database: the key id of each event

Events already written keep the key id "sha256" (their plain SHA-256 chain stays verifiable); the audit_export
table tells each export of the audit trail (signed heads, ATNA syslog) where it stands.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ADD COLUMN with a constant default: no table rewrite on SQLite nor on PostgreSQL, whatever the trail's size.
    with op.batch_alter_table("audit_event") as batch:
        batch.add_column(sa.Column("key_id", sa.String(64), nullable=False, server_default="sha256"))
    op.create_table(
        "audit_export",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("audit_export")
    with op.batch_alter_table("audit_event") as batch:
        batch.drop_column("key_id")
