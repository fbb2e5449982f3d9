"""Downtime incidents, back-entered cases and link health (issue 20, item 3)

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-08
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0030'
down_revision = '0029'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "downtime_incident",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("side", sa.String(16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("declared_by", sa.String(128), nullable=False),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_by", sa.String(128), nullable=True),
        sa.Column("closing_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], name=op.f("fk_downtime_incident_site_id_site")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_downtime_incident")),
    )
    op.create_index("ix_downtime_incident_open", "downtime_incident", ["ended_at", "site_id"])
    op.create_index("ix_downtime_incident_site", "downtime_incident", ["site_id", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_downtime_incident_site", table_name="downtime_incident")
    op.drop_index("ix_downtime_incident_open", table_name="downtime_incident")
    op.drop_table("downtime_incident")
