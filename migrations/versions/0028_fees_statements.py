"""Acts and fees: CCAM tables by date of effect, the acts of each case, monthly statements and adjustments (issue 20, item 1)

An issued fee statement is frozen: triggers abort any UPDATE or DELETE of fee_statement (the ORM refuses it too,
engine.store.fee_models).

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-08
"""
import sqlalchemy as sa
from alembic import op

revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MONEY = sa.Numeric(12, 2)
MOMENT = sa.DateTime(timezone=True)
MESSAGE = "fee statement issued: never changed (adjust the next one)"
_PG_FUNCTION = f"""CREATE OR REPLACE FUNCTION fee_statement_immutable() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION '{MESSAGE}'; END; $$ LANGUAGE plpgsql"""


def upgrade() -> None:
    op.create_table(
        'ccam_table',
        sa.Column('id', BIG_ID, nullable=False),
        sa.Column('effective_from', sa.Date(), nullable=False),
        sa.Column('source_name', sa.String(200), nullable=False),
        sa.Column('sample', sa.Boolean(), nullable=False),
        sa.Column('act_count', sa.Integer(), nullable=False),
        sa.Column('loaded_by', sa.String(128), nullable=False),
        sa.Column('loaded_at', MOMENT, nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_ccam_table')),
    )
    op.create_index(op.f('ix_ccam_table_effective_from'), 'ccam_table', ['effective_from'])
    op.create_table(
        'ccam_table_act',
        sa.Column('id', BIG_ID, nullable=False),
        sa.Column('table_id', BIG_ID, nullable=False),
        sa.Column('code', sa.String(7), nullable=False),
        sa.Column('label', sa.String(400), nullable=False),
        sa.Column('modality', sa.String(8), nullable=False),
        sa.Column('family', sa.String(32), nullable=False),
        sa.Column('price_eur', MONEY, nullable=False),
        sa.Column('technical_share_eur', MONEY, nullable=True),
        sa.ForeignKeyConstraint(['table_id'], ['ccam_table.id'], name=op.f('fk_ccam_table_act_table_id_ccam_table')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_ccam_table_act')),
        sa.UniqueConstraint('table_id', 'code', name='uq_ccam_table_act'),
    )
    op.create_index(op.f('ix_ccam_table_act_table_id'), 'ccam_table_act', ['table_id'])
    op.create_table(
        'case_act',
        sa.Column('id', BIG_ID, nullable=False),
        sa.Column('case_id', BIG_ID, nullable=False),
        sa.Column('code', sa.String(7), nullable=False),
        sa.Column('urgency', sa.Boolean(), nullable=False),
        sa.Column('on_call', sa.Boolean(), nullable=False),
        sa.Column('radiologist', sa.String(128), nullable=False),
        sa.Column('chosen_at', MOMENT, nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['process_instance.id'],
                                name=op.f('fk_case_act_case_id_process_instance')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_case_act')),
    )
    op.create_index(op.f('ix_case_act_case_id'), 'case_act', ['case_id'])
    op.create_index(op.f('ix_case_act_radiologist'), 'case_act', ['radiologist'])
    op.create_table(
        'fee_statement',
        sa.Column('id', BIG_ID, nullable=False),
        sa.Column('scope', sa.String(16), nullable=False),
        sa.Column('scope_id', sa.String(128), nullable=False),
        sa.Column('month', sa.String(7), nullable=False),
        sa.Column('snapshot', sa.Text(), nullable=False),
        sa.Column('sha256', sa.String(64), nullable=False),
        sa.Column('issued_by', sa.String(128), nullable=False),
        sa.Column('issued_at', MOMENT, nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_fee_statement')),
        sa.UniqueConstraint('scope', 'scope_id', 'month', name='uq_fee_statement'),
    )
    op.create_index(op.f('ix_fee_statement_scope_id'), 'fee_statement', ['scope_id'])
    op.create_table(
        'fee_adjustment',
        sa.Column('id', BIG_ID, nullable=False),
        sa.Column('scope', sa.String(16), nullable=False),
        sa.Column('scope_id', sa.String(128), nullable=False),
        sa.Column('amount_eur', MONEY, nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('case_id', BIG_ID, nullable=True),
        sa.Column('created_by', sa.String(128), nullable=False),
        sa.Column('created_at', MOMENT, nullable=False),
        sa.Column('statement_id', BIG_ID, nullable=True),
        sa.Column('site_id', sa.String(64), nullable=True),
        sa.Column('site_statement_id', BIG_ID, nullable=True),
        sa.ForeignKeyConstraint(['site_statement_id'], ['fee_statement.id'],
                                name=op.f('fk_fee_adjustment_site_statement_id_fee_statement')),
        sa.ForeignKeyConstraint(['case_id'], ['process_instance.id'],
                                name=op.f('fk_fee_adjustment_case_id_process_instance')),
        sa.ForeignKeyConstraint(['statement_id'], ['fee_statement.id'],
                                name=op.f('fk_fee_adjustment_statement_id_fee_statement')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_fee_adjustment')),
    )
    op.create_index(op.f('ix_fee_adjustment_scope_id'), 'fee_adjustment', ['scope_id'])
    op.create_index(op.f('ix_fee_adjustment_statement_id'), 'fee_adjustment', ['statement_id'])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute("CREATE TRIGGER fee_statement_no_change BEFORE UPDATE OR DELETE ON fee_statement "
                   "FOR EACH ROW EXECUTE FUNCTION fee_statement_immutable()")
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER fee_statement_no_{verb.lower()} BEFORE {verb} ON fee_statement "
                       f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS fee_statement_no_change ON fee_statement")
        op.execute("DROP FUNCTION IF EXISTS fee_statement_immutable()")
    else:
        op.execute("DROP TRIGGER IF EXISTS fee_statement_no_update")
        op.execute("DROP TRIGGER IF EXISTS fee_statement_no_delete")
    for table, indexes in (('fee_adjustment', ('scope_id', 'statement_id')), ('fee_statement', ('scope_id',)),
                           ('case_act', ('case_id', 'radiologist')), ('ccam_table_act', ('table_id',)),
                           ('ccam_table', ('effective_from',))):
        for column in indexes:
            op.drop_index(op.f(f'ix_{table}_{column}'), table_name=table)
        op.drop_table(table)
