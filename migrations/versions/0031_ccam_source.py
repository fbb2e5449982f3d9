"""CCAM tables from the CNAM's release (issue 20, item 1)

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-08

A CCAM table records its source format (telerad-csv, Telerad's own CSV; cnam-excel, the CNAM's CCAM workbook) and
the CT and MRI technical fees added to the CNAM's tariffs when it was loaded. The tables loaded before are CSV ones.
"""
import sqlalchemy as sa
from alembic import op

revision = '0031'
down_revision = '0030'
branch_labels = None
depends_on = None

MONEY = sa.Numeric(12, 2)


def upgrade() -> None:
    with op.batch_alter_table("ccam_table") as batch:
        batch.add_column(sa.Column("source_format", sa.String(16), server_default="telerad-csv", nullable=False))
        batch.add_column(sa.Column("ct_technical_fee_eur", MONEY, nullable=True))
        batch.add_column(sa.Column("mri_technical_fee_eur", MONEY, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ccam_table") as batch:
        batch.drop_column("mri_technical_fee_eur")
        batch.drop_column("ct_technical_fee_eur")
        batch.drop_column("source_format")
