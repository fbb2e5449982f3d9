"""on-call slots

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('oncall_slot',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('territory_id', sa.String(length=64), nullable=False),
    sa.Column('username', sa.String(length=128), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['territory_id'], ['territory.id'], name=op.f('fk_oncall_slot_territory_id_territory')),
    sa.ForeignKeyConstraint(['username'], ['app_user.username'], name=op.f('fk_oncall_slot_username_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oncall_slot'))
    )
    with op.batch_alter_table('oncall_slot', schema=None) as batch_op:
        batch_op.create_index('ix_oncall_territory_time', ['territory_id', 'starts_at', 'ends_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('oncall_slot', schema=None) as batch_op:
        batch_op.drop_index('ix_oncall_territory_time')

    op.drop_table('oncall_slot')
