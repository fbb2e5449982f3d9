"""report_drafts: the author's draft of a report, signed addenda after release (issue 17)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "report_draft",
        sa.Column("task_id", sa.String(36), primary_key=True),
        sa.Column("author", sa.String(128), primary_key=True),
        sa.Column("instance_id", BIG_ID, sa.ForeignKey("process_instance.id"), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_report_draft_instance_id", "report_draft", ["instance_id"])
    op.create_table(
        "report_addendum",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("instance_id", BIG_ID, sa.ForeignKey("process_instance.id"), nullable=False),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_report_addendum_instance_id", "report_addendum", ["instance_id"])


def downgrade() -> None:
    for table in ("report_addendum", "report_draft"):
        op.drop_index(f"ix_{table}_instance_id", table_name=table)
        op.drop_table(table)
