"""Research export requests, approvals and produced exports (issue 20, item 2)

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-08
"""
import sqlalchemy as sa
from alembic import op

revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "research_request",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("requester", sa.String(128), nullable=False),
        sa.Column("protocol", sa.String(300), nullable=False),
        sa.Column("approval_ref", sa.String(300), nullable=False),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column("images", sa.Boolean(), nullable=False),
        sa.Column("retain_dates", sa.Boolean(), nullable=False),
        sa.Column("clean_pixels", sa.Boolean(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("sites", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(128), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.String(300), nullable=True),
        sa.Column("progress_done", sa.Integer(), nullable=False),
        sa.Column("progress_total", sa.Integer(), nullable=False),
        sa.Column("produced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("file_name", sa.String(200), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("manifest", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("downloaded_by", sa.String(128), nullable=True),
        sa.Column("downloaded_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_research_request")),
    )
    op.create_index(op.f("ix_research_request_requester"), "research_request", ["requester"])
    op.create_index(op.f("ix_research_request_status"), "research_request", ["status"])


def downgrade() -> None:
    op.drop_index(op.f("ix_research_request_status"), table_name="research_request")
    op.drop_index(op.f("ix_research_request_requester"), table_name="research_request")
    op.drop_table("research_request")
