"""site_pacs: each site's PACS, the prior-exam fetch queue and the cases' prior studies (issue 18)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "site_pacs",
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("ae_title", sa.String(16), nullable=False),
        sa.Column("host", sa.String(253), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("dicomweb_url", sa.String(500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], name=op.f("fk_site_pacs_site_id_site")),
        sa.PrimaryKeyConstraint("site_id", name=op.f("pk_site_pacs")),
    )
    op.create_table(
        "prior_fetch",
        sa.Column("case_id", BIG_ID, nullable=False),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["process_instance.id"],
                                name=op.f("fk_prior_fetch_case_id_process_instance")),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_prior_fetch")),
    )
    op.create_index("ix_prior_fetch_due", "prior_fetch", ["status", "next_attempt_at"])
    op.create_table(
        "case_prior",
        sa.Column("case_id", BIG_ID, nullable=False),
        sa.Column("study_uid", sa.String(64), nullable=False),
        sa.Column("study_date", sa.String(10), nullable=True),
        sa.Column("modality", sa.String(64), nullable=True),
        sa.Column("description", sa.String(200), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["process_instance.id"],
                                name=op.f("fk_case_prior_case_id_process_instance")),
        sa.PrimaryKeyConstraint("case_id", "study_uid", name=op.f("pk_case_prior")),
    )


def downgrade() -> None:
    op.drop_table("case_prior")
    op.drop_index("ix_prior_fetch_due", table_name="prior_fetch")
    op.drop_table("prior_fetch")
    op.drop_table("site_pacs")
