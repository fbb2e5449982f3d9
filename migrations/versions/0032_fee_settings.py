"""Remuneration settings as audited administrator settings (issue 20, item 1)

The on-call fee, the teleexpertise fee and the monthly transmission costs of the remuneration document (CH-6.4),
organisation-wide or per site, by date of effect. Append-only: triggers abort any UPDATE or DELETE of fee_setting
(the ORM refuses it too, engine.store.fee_setting_models).

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-08
"""
import sqlalchemy as sa
from alembic import op

revision = '0032'
down_revision = '0031'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MESSAGE = "fee setting recorded: never changed (set a new value from a date)"
_PG_FUNCTION = f"""CREATE OR REPLACE FUNCTION fee_setting_append_only() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION '{MESSAGE}'; END; $$ LANGUAGE plpgsql"""


def upgrade() -> None:
    op.create_table(
        'fee_setting',
        sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
        sa.Column('name', sa.String(32), nullable=False),
        sa.Column('site_id', sa.String(64), nullable=True),
        sa.Column('amount_eur', sa.Numeric(12, 2), nullable=False),
        sa.Column('effective_from', sa.Date(), nullable=False),
        sa.Column('set_by', sa.String(128), nullable=False),
        sa.Column('set_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.CheckConstraint("amount_eur >= 0", name=op.f('ck_fee_setting_amount')),
        sa.CheckConstraint("name IN ('on_call_fee', 'teleexpertise_fee', 'transmission_costs')",
                           name=op.f('ck_fee_setting_name')),
        sa.ForeignKeyConstraint(['site_id'], ['site.id'], name=op.f('fk_fee_setting_site_id_site')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_fee_setting')),
    )
    op.create_index('ix_fee_setting_lookup', 'fee_setting', ['name', 'site_id', 'effective_from'])
    op.create_index('ix_fee_setting_effective_from', 'fee_setting', ['effective_from'])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute("CREATE TRIGGER fee_setting_no_change BEFORE UPDATE OR DELETE ON fee_setting "
                   "FOR EACH ROW EXECUTE FUNCTION fee_setting_append_only()")
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER fee_setting_no_{verb.lower()} BEFORE {verb} ON fee_setting "
                       f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS fee_setting_no_change ON fee_setting")
        op.execute("DROP FUNCTION IF EXISTS fee_setting_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS fee_setting_no_update")
        op.execute("DROP TRIGGER IF EXISTS fee_setting_no_delete")
    op.drop_index('ix_fee_setting_effective_from', table_name='fee_setting')
    op.drop_index('ix_fee_setting_lookup', table_name='fee_setting')
    op.drop_table('fee_setting')
