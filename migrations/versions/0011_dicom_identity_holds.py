"""DICOM identity vigilance: the patient's sex of a study, and instances held out of a study (CH-4.1.6, CH-8.1)

An instance naming an already received study but sent by another site's AE title, or carrying another patient's
traits, is kept in dicom_held_instance with its reason, never indexed into that study.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('dicom_study', schema=None) as batch_op:
        batch_op.add_column(sa.Column('patient_sex', sa.String(length=16), nullable=True))
    op.create_table('dicom_held_instance',
    sa.Column('sop_instance_uid', sa.String(length=64), nullable=False),
    sa.Column('study_uid', sa.String(length=64), nullable=False),
    sa.Column('series_uid', sa.String(length=64), nullable=False),
    sa.Column('sop_class_uid', sa.String(length=64), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('transfer_syntax', sa.String(length=64), nullable=False),
    sa.Column('case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('site_id', sa.String(length=64), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('calling_ae', sa.String(length=16), nullable=True),
    sa.Column('patient_id', sa.String(length=64), nullable=True),
    sa.Column('patient_name', sa.String(length=324), nullable=True),
    sa.Column('patient_birth_date', sa.String(length=10), nullable=True),
    sa.Column('patient_sex', sa.String(length=16), nullable=True),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['process_instance.id'],
                            name=op.f('fk_dicom_held_instance_case_id_process_instance')),
    sa.PrimaryKeyConstraint('sop_instance_uid', name=op.f('pk_dicom_held_instance'))
    )
    with op.batch_alter_table('dicom_held_instance', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dicom_held_instance_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_dicom_held_instance_study_uid'), ['study_uid'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('dicom_held_instance', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dicom_held_instance_study_uid'))
        batch_op.drop_index(batch_op.f('ix_dicom_held_instance_case_id'))
    op.drop_table('dicom_held_instance')
    with op.batch_alter_table('dicom_study', schema=None) as batch_op:
        batch_op.drop_column('patient_sex')
