"""HL7 senders and DICOM callers: source addresses allowed, client certificate names

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


TABLES = ("hl7_sender", "dicom_calling_ae")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("allowed_sources", sa.Text(), nullable=True))
            batch.add_column(sa.Column("client_cert_name", sa.String(200), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("client_cert_name")
            batch.drop_column("allowed_sources")
