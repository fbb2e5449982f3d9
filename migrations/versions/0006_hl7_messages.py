"""HL7 v2 messages, senders, endpoints and outbox

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('hl7_sender',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('site_id', sa.String(length=64), nullable=False),
    sa.Column('sending_application', sa.String(length=180), nullable=False),
    sa.Column('sending_facility', sa.String(length=180), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], name=op.f('fk_hl7_sender_site_id_site')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hl7_sender')),
    sa.UniqueConstraint('sending_application', 'sending_facility', name='uq_hl7_sender_pair')
    )
    with op.batch_alter_table('hl7_sender', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hl7_sender_site_id'), ['site_id'], unique=False)

    op.create_table('hl7_endpoint',
    sa.Column('site_id', sa.String(length=64), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('port', sa.Integer(), nullable=False),
    sa.Column('receiving_application', sa.String(length=180), nullable=False),
    sa.Column('receiving_facility', sa.String(length=180), nullable=False),
    sa.Column('charset', sa.String(length=20), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=128), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], name=op.f('fk_hl7_endpoint_site_id_site')),
    sa.PrimaryKeyConstraint('site_id', name=op.f('pk_hl7_endpoint'))
    )
    op.create_table('hl7_message',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('direction', sa.String(length=3), nullable=False),
    sa.Column('control_id', sa.String(length=199), nullable=True),
    sa.Column('sending_application', sa.String(length=180), nullable=True),
    sa.Column('sending_facility', sa.String(length=180), nullable=True),
    sa.Column('site_id', sa.String(length=64), nullable=True),
    sa.Column('message_type', sa.String(length=32), nullable=True),
    sa.Column('version', sa.String(length=16), nullable=True),
    sa.Column('encoding', sa.String(length=32), nullable=True),
    sa.Column('raw', sa.Text(), nullable=False),
    sa.Column('raw_bytes', sa.LargeBinary(), nullable=True),
    sa.Column('peer', sa.String(length=64), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('ack_code', sa.String(length=2), nullable=True),
    sa.Column('error_code', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('case_id', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hl7_message')),
    sa.UniqueConstraint('direction', 'sending_application', 'sending_facility', 'control_id', name='uq_hl7_message_control_id')
    )
    with op.batch_alter_table('hl7_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hl7_message_case_id'), ['case_id'], unique=False)
        batch_op.create_index('ix_hl7_message_log', ['direction', 'received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_hl7_message_site_id'), ['site_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_hl7_message_status'), ['status'], unique=False)

    op.create_table('hl7_outbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('case_id', sa.BigInteger(), nullable=False),
    sa.Column('site_id', sa.String(length=64), nullable=True),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('release_key', sa.String(length=64), nullable=False),
    sa.Column('control_id', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('ack_code', sa.String(length=2), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hl7_outbox')),
    sa.UniqueConstraint('case_id', 'kind', 'release_key', name='uq_hl7_outbox_release')
    )
    with op.batch_alter_table('hl7_outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hl7_outbox_case_id'), ['case_id'], unique=False)
        batch_op.create_index('ix_hl7_outbox_due', ['status', 'next_attempt_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('hl7_outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_hl7_outbox_due')
        batch_op.drop_index(batch_op.f('ix_hl7_outbox_case_id'))

    op.drop_table('hl7_outbox')
    with op.batch_alter_table('hl7_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hl7_message_status'))
        batch_op.drop_index(batch_op.f('ix_hl7_message_site_id'))
        batch_op.drop_index('ix_hl7_message_log')
        batch_op.drop_index(batch_op.f('ix_hl7_message_case_id'))

    op.drop_table('hl7_message')
    op.drop_table('hl7_endpoint')
    with op.batch_alter_table('hl7_sender', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hl7_sender_site_id'))

    op.drop_table('hl7_sender')
