"""case notices: alerts shown in the inboxes of those who must act (report overdue, no radiologist left)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_notice",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("instance_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  sa.ForeignKey("process_instance.id", name="fk_case_notice_instance_id_process_instance"),
                  nullable=False),
        sa.Column("site_id", sa.String(64)),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("audience", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_case_notice"),
    )
    op.create_index("ix_case_notice_instance_id", "case_notice", ["instance_id"])
    op.create_index("ix_case_notice_resolved_at", "case_notice", ["resolved_at"])


def downgrade() -> None:
    op.drop_table("case_notice")
