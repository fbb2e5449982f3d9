"""patient reference of a case

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('process_instance', schema=None) as batch_op:
        batch_op.add_column(sa.Column('patient_ref', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_process_instance_patient_ref'), ['patient_ref'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('process_instance', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_process_instance_patient_ref'))
        batch_op.drop_column('patient_ref')

