"""designer drafts and form schemas

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('form_schema',
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('schema', sa.Text(), nullable=False),
    sa.Column('based_on', sa.String(length=128), nullable=True),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_form_schema'))
    )
    op.create_table('diagram_draft',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('process_id', sa.String(length=128), nullable=False),
    sa.Column('base_definition_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('files', sa.Text(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('report', sa.Text(), nullable=False),
    sa.Column('error_count', sa.Integer(), nullable=False),
    sa.Column('warning_count', sa.Integer(), nullable=False),
    sa.Column('updated_by', sa.String(length=128), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['base_definition_id'], ['process_definition.id'],
                            name=op.f('fk_diagram_draft_base_definition_id_process_definition')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_diagram_draft')),
    sa.UniqueConstraint('process_id', name=op.f('uq_diagram_draft_process_id'))
    )


def downgrade() -> None:
    op.drop_table('diagram_draft')
    op.drop_table('form_schema')
