"""case_pacs_study and original_study_fetch: a teleexpertise patient's studies on the requesting site's PACS, and
the original study the tele-expert chose among them (issue 18, item 5)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "case_pacs_study",
        sa.Column("case_id", BIG_ID, nullable=False),
        sa.Column("study_uid", sa.String(64), nullable=False),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("patient_key", sa.String(200), nullable=False),
        sa.Column("study_date", sa.String(10), nullable=True),
        sa.Column("modalities", sa.String(64), nullable=True),
        sa.Column("description", sa.String(200), nullable=True),
        sa.Column("accession_number", sa.String(64), nullable=True),
        sa.Column("found_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["process_instance.id"],
                                name=op.f("fk_case_pacs_study_case_id_process_instance")),
        sa.PrimaryKeyConstraint("case_id", "study_uid", name=op.f("pk_case_pacs_study")),
    )
    op.create_index("ix_case_pacs_study_patient", "case_pacs_study", ["site_id", "patient_key"])
    op.create_table(
        "original_study_fetch",
        sa.Column("case_id", BIG_ID, nullable=False),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("study_uid", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.Column("check_ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sa.String(128), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["process_instance.id"],
                                name=op.f("fk_original_study_fetch_case_id_process_instance")),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_original_study_fetch")),
    )
    op.create_index("ix_original_study_fetch_due", "original_study_fetch", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_original_study_fetch_due", table_name="original_study_fetch")
    op.drop_table("original_study_fetch")
    op.drop_index("ix_case_pacs_study_patient", table_name="case_pacs_study")
    op.drop_table("case_pacs_study")
