"""Indexes for the quality indicators' aggregates (issue 19, item 1)

engine.services.indicators selects the cases created in a period (process_instance.started_at) and reads the
period's timer.fired events of the audit trail (audit_event.action, audit_event.at). Without these indexes both
read their whole table; benchmarks/indicators.py measures the indicators on 100,000 cases.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-08
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op

revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_index('ix_process_instance_started', 'process_instance', ['started_at'], unique=False)
    op.create_index('ix_audit_event_action_at', 'audit_event', ['action', 'at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_audit_event_action_at', table_name='audit_event')
    op.drop_index('ix_process_instance_started', table_name='process_instance')
