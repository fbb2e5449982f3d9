"""Conventions with their content: approvals with dates and documents, pathway, technical and remuneration parts (issue 19, item 5)

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-08

Active conventions that exist before this migration (three approvals ticked, no content) stay active and are
flagged legacy_incomplete: routing does not stop at an upgrade; the administration page shows what they lack; once
completed the flag goes, and once deactivated (an approval unticked) they can be activated again only complete
(docs/conventions.md).
"""
import sqlalchemy as sa
from alembic import op

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


TEXT_COLUMNS = ("patient_pathway", "emergency_pathway", "emergency_duties", "travel_duties", "fallback_procedure",
                "equipment", "archiving")


def upgrade() -> None:
    with op.batch_alter_table("convention") as batch:
        for name in ("cme_validated_on", "g4_approved_on", "council_approved_on"):
            batch.add_column(sa.Column(name, sa.Date(), nullable=True))
        batch.add_column(sa.Column("medical_lead", sa.String(128), nullable=True))
        for name in TEXT_COLUMNS:
            batch.add_column(sa.Column(name, sa.Text(), nullable=True))
        batch.add_column(sa.Column("network_bandwidth_mbps", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("restoration_delay_hours", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("remuneration_declared_by", sa.String(128), nullable=True))
        batch.add_column(sa.Column("remuneration_declared_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("expires_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("renewal_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("visit_interval_days", sa.Integer(), server_default="365", nullable=False))
        batch.add_column(sa.Column("legacy_incomplete", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.create_foreign_key(op.f("fk_convention_medical_lead_app_user"), "app_user", ["medical_lead"],
                                 ["username"])
    convention = sa.table("convention", sa.column("cme_validated", sa.Boolean()),
                          sa.column("approved_by_g4", sa.Boolean()), sa.column("approved_by_council", sa.Boolean()),
                          sa.column("legacy_incomplete", sa.Boolean()))
    op.execute(convention.update().where(convention.c.cme_validated.is_(True), convention.c.approved_by_g4.is_(True),
                                         convention.c.approved_by_council.is_(True))
               .values(legacy_incomplete=True))
    op.create_table(
        "convention_document",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("convention_id", BIG_ID, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("size", BIG_ID, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_by", sa.String(128), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["convention_id"], ["convention.id"],
                                name=op.f("fk_convention_document_convention_id_convention")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_convention_document")),
    )
    op.create_index("ix_convention_document_kind", "convention_document", ["convention_id", "kind", "id"])
    op.create_table(
        "convention_reminder",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("convention_id", BIG_ID, nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["convention_id"], ["convention.id"],
                                name=op.f("fk_convention_reminder_convention_id_convention")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_convention_reminder")),
        sa.UniqueConstraint("convention_id", "stage", "expires_on", name="uq_convention_reminder"),
    )


def downgrade() -> None:
    op.drop_table("convention_reminder")
    op.drop_index("ix_convention_document_kind", table_name="convention_document")
    op.drop_table("convention_document")
    with op.batch_alter_table("convention") as batch:
        batch.drop_constraint(op.f("fk_convention_medical_lead_app_user"), type_="foreignkey")
        for name in ("legacy_incomplete", "visit_interval_days", "renewal_on", "expires_on",
                     "remuneration_declared_at", "remuneration_declared_by", "restoration_delay_hours",
                     "network_bandwidth_mbps", *reversed(TEXT_COLUMNS), "medical_lead", "council_approved_on",
                     "g4_approved_on", "cme_validated_on"):
            batch.drop_column(name)
