"""DICOM studies, series, instances and calling AE titles

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dicom_calling_ae',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('site_id', sa.String(length=64), nullable=False),
    sa.Column('ae_title', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], name=op.f('fk_dicom_calling_ae_site_id_site')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dicom_calling_ae')),
    sa.UniqueConstraint('ae_title', name=op.f('uq_dicom_calling_ae_ae_title'))
    )
    with op.batch_alter_table('dicom_calling_ae', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dicom_calling_ae_site_id'), ['site_id'], unique=False)

    op.create_table('dicom_study',
    sa.Column('uid', sa.String(length=64), nullable=False),
    sa.Column('case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('site_id', sa.String(length=64), nullable=True),
    sa.Column('accession_number', sa.String(length=64), nullable=True),
    sa.Column('patient_id', sa.String(length=64), nullable=True),
    sa.Column('patient_name', sa.String(length=324), nullable=True),
    sa.Column('patient_birth_date', sa.String(length=10), nullable=True),
    sa.Column('description', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('hold_reason', sa.String(length=300), nullable=True),
    sa.Column('identity_case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('first_received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('notified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('match_checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['process_instance.id'], name=op.f('fk_dicom_study_case_id_process_instance')),
    sa.ForeignKeyConstraint(['identity_case_id'], ['process_instance.id'], name=op.f('fk_dicom_study_identity_case_id_process_instance')),
    sa.PrimaryKeyConstraint('uid', name=op.f('pk_dicom_study'))
    )
    with op.batch_alter_table('dicom_study', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dicom_study_accession_number'), ['accession_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_dicom_study_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_dicom_study_identity_case_id'), ['identity_case_id'], unique=False)
        batch_op.create_index('ix_dicom_study_pending', ['status', 'notified_at', 'last_received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_dicom_study_site_id'), ['site_id'], unique=False)

    op.create_table('dicom_series',
    sa.Column('uid', sa.String(length=64), nullable=False),
    sa.Column('study_uid', sa.String(length=64), nullable=False),
    sa.Column('modality', sa.String(length=16), nullable=True),
    sa.Column('description', sa.String(length=200), nullable=True),
    sa.Column('number', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['study_uid'], ['dicom_study.uid'], name=op.f('fk_dicom_series_study_uid_dicom_study')),
    sa.PrimaryKeyConstraint('uid', name=op.f('pk_dicom_series'))
    )
    with op.batch_alter_table('dicom_series', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dicom_series_study_uid'), ['study_uid'], unique=False)

    op.create_table('dicom_instance',
    sa.Column('sop_instance_uid', sa.String(length=64), nullable=False),
    sa.Column('series_uid', sa.String(length=64), nullable=False),
    sa.Column('sop_class_uid', sa.String(length=64), nullable=False),
    sa.Column('instance_number', sa.Integer(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('transfer_syntax', sa.String(length=64), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=True),
    sa.Column('columns', sa.Integer(), nullable=True),
    sa.Column('frames', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('calling_ae', sa.String(length=16), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['series_uid'], ['dicom_series.uid'], name=op.f('fk_dicom_instance_series_uid_dicom_series')),
    sa.PrimaryKeyConstraint('sop_instance_uid', name=op.f('pk_dicom_instance'))
    )
    with op.batch_alter_table('dicom_instance', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dicom_instance_series_uid'), ['series_uid'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('dicom_instance', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dicom_instance_series_uid'))

    op.drop_table('dicom_instance')
    with op.batch_alter_table('dicom_series', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dicom_series_study_uid'))

    op.drop_table('dicom_series')
    with op.batch_alter_table('dicom_study', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dicom_study_site_id'))
        batch_op.drop_index('ix_dicom_study_pending')
        batch_op.drop_index(batch_op.f('ix_dicom_study_identity_case_id'))
        batch_op.drop_index(batch_op.f('ix_dicom_study_case_id'))
        batch_op.drop_index(batch_op.f('ix_dicom_study_accession_number'))

    op.drop_table('dicom_study')
    with op.batch_alter_table('dicom_calling_ae', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dicom_calling_ae_site_id'))

    op.drop_table('dicom_calling_ae')
