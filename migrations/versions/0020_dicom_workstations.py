"""dicom_workstations: the radiologists' viewing stations, for DICOM query/retrieve (issue 18)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "dicom_workstation",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("ae_title", sa.String(16), nullable=False),
        sa.Column("host", sa.String(253), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.ForeignKeyConstraint(["owner"], ["app_user.username"], name=op.f("fk_dicom_workstation_owner_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dicom_workstation")),
        sa.UniqueConstraint("ae_title", name=op.f("uq_dicom_workstation_ae_title")),
    )
    op.create_index("ix_dicom_workstation_owner", "dicom_workstation", ["owner"])


def downgrade() -> None:
    op.drop_index("ix_dicom_workstation_owner", table_name="dicom_workstation")
    op.drop_table("dicom_workstation")
