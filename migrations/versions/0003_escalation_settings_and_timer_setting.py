"""escalation settings and timer setting

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('escalation_setting',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('duration', sa.String(length=32), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=128), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_escalation_setting'))
    )
    with op.batch_alter_table('timer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('setting', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_timer_setting'), ['setting'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('timer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_timer_setting'))
        batch_op.drop_column('setting')

    op.drop_table('escalation_setting')
