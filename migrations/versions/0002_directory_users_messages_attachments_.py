"""directory, users, messages, attachments, case summary

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('territory',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('department', sa.String(length=8), nullable=False),
    sa.Column('region', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_territory'))
    )
    op.create_table('app_user',
    sa.Column('username', sa.String(length=128), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.String(length=256), nullable=False),
    sa.Column('totp_secret', sa.String(length=64), nullable=False),
    sa.Column('totp_enrolled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('totp_last_step', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('failed_logins', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('rpps', sa.String(length=11), nullable=True),
    sa.Column('authorization_expires', sa.Date(), nullable=True),
    sa.Column('insurance_expires', sa.Date(), nullable=True),
    sa.Column('extraterritorial', sa.Boolean(), nullable=False),
    sa.Column('foreign_authorization_on_file', sa.Boolean(), nullable=False),
    sa.Column('foreign_insurance_on_file', sa.Boolean(), nullable=False),
    sa.Column('territory_id', sa.String(length=64), nullable=True),
    sa.Column('external_company', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['territory_id'], ['territory.id'], name=op.f('fk_app_user_territory_id_territory')),
    sa.PrimaryKeyConstraint('username', name=op.f('pk_app_user'))
    )
    op.create_table('site',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('territory_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['territory_id'], ['territory.id'], name=op.f('fk_site_territory_id_territory')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_site'))
    )
    op.create_table('territory_neighbour',
    sa.Column('territory_id', sa.String(length=64), nullable=False),
    sa.Column('neighbour_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['neighbour_id'], ['territory.id'], name=op.f('fk_territory_neighbour_neighbour_id_territory')),
    sa.ForeignKeyConstraint(['territory_id'], ['territory.id'], name=op.f('fk_territory_neighbour_territory_id_territory')),
    sa.PrimaryKeyConstraint('territory_id', 'neighbour_id', name=op.f('pk_territory_neighbour'))
    )
    op.create_table('api_token',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('username', sa.String(length=128), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['username'], ['app_user.username'], name=op.f('fk_api_token_username_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_token')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_token_token_hash'))
    )
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_token_username'), ['username'], unique=False)

    op.create_table('attachment',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('instance_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=128), nullable=False),
    sa.Column('size', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('uploaded_by', sa.String(length=128), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'], name=op.f('fk_attachment_instance_id_process_instance')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attachment'))
    )
    with op.batch_alter_table('attachment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attachment_instance_id'), ['instance_id'], unique=False)

    op.create_table('case_message',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('instance_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('author', sa.String(length=128), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'], name=op.f('fk_case_message_instance_id_process_instance')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_message'))
    )
    with op.batch_alter_table('case_message', schema=None) as batch_op:
        batch_op.create_index('ix_case_message_case', ['instance_id', 'id'], unique=False)

    op.create_table('convention',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('site_id', sa.String(length=64), nullable=False),
    sa.Column('cme_validated', sa.Boolean(), nullable=False),
    sa.Column('approved_by_g4', sa.Boolean(), nullable=False),
    sa.Column('approved_by_council', sa.Boolean(), nullable=False),
    sa.Column('external_allowed', sa.Boolean(), nullable=False),
    sa.Column('tiers', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], name=op.f('fk_convention_site_id_site')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_convention'))
    )
    with op.batch_alter_table('convention', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_convention_site_id'), ['site_id'], unique=False)

    op.create_table('user_role',
    sa.Column('username', sa.String(length=128), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['username'], ['app_user.username'], name=op.f('fk_user_role_username_app_user')),
    sa.PrimaryKeyConstraint('username', 'role', name=op.f('pk_user_role'))
    )
    op.create_table('user_site',
    sa.Column('username', sa.String(length=128), nullable=False),
    sa.Column('site_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], name=op.f('fk_user_site_site_id_site')),
    sa.ForeignKeyConstraint(['username'], ['app_user.username'], name=op.f('fk_user_site_username_app_user')),
    sa.PrimaryKeyConstraint('username', 'site_id', name=op.f('pk_user_site'))
    )
    op.create_table('convention_radiologist',
    sa.Column('convention_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('username', sa.String(length=128), nullable=False),
    sa.ForeignKeyConstraint(['convention_id'], ['convention.id'], name=op.f('fk_convention_radiologist_convention_id_convention')),
    sa.ForeignKeyConstraint(['username'], ['app_user.username'], name=op.f('fk_convention_radiologist_username_app_user')),
    sa.PrimaryKeyConstraint('convention_id', 'username', name=op.f('pk_convention_radiologist'))
    )
    with op.batch_alter_table('process_instance', schema=None) as batch_op:
        batch_op.add_column(sa.Column('patient_name', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('patient_birth_date', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('urgency', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('accession_number', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('summary', sa.String(length=300), nullable=True))
        batch_op.create_index(batch_op.f('ix_process_instance_accession_number'), ['accession_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_process_instance_patient_name'), ['patient_name'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('process_instance', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_process_instance_patient_name'))
        batch_op.drop_index(batch_op.f('ix_process_instance_accession_number'))
        batch_op.drop_column('summary')
        batch_op.drop_column('accession_number')
        batch_op.drop_column('urgency')
        batch_op.drop_column('patient_birth_date')
        batch_op.drop_column('patient_name')

    op.drop_table('convention_radiologist')
    op.drop_table('user_site')
    op.drop_table('user_role')
    with op.batch_alter_table('convention', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_convention_site_id'))

    op.drop_table('convention')
    with op.batch_alter_table('case_message', schema=None) as batch_op:
        batch_op.drop_index('ix_case_message_case')

    op.drop_table('case_message')
    with op.batch_alter_table('attachment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attachment_instance_id'))

    op.drop_table('attachment')
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_token_username'))

    op.drop_table('api_token')
    op.drop_table('territory_neighbour')
    op.drop_table('site')
    op.drop_table('app_user')
    op.drop_table('territory')
