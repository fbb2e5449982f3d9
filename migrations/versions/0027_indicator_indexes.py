"""Quality indicators: the per-case facts they read and the indexes they need (issue 19, item 1)

engine.services.indicators reads one small row per case (case_indicator: the moments and counts its tasks, timers
and data give), rebuilt by engine.services.indicators_facts whenever the case's version changed. Finding those
cases reads process_instance (started_at, process_id, version) from the index alone: a case row is mostly its saved
state, and on SQLite the columns stored after it are reached only through its overflow pages. The facts are built
on first use (nothing to migrate). The technical incidents read the period's audit events of a few actions
(audit_event action, at). benchmarks/indicators.py measures the indicators on 100,000 cases.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-08
"""
import sqlalchemy as sa
from alembic import op

revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_index('ix_process_instance_started', 'process_instance', ['started_at', 'process_id', 'version'],
                    unique=False)
    moment = sa.DateTime(timezone=True)
    op.create_table(
        'case_indicator',
        sa.Column('case_id', BIG_ID, nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('process_id', sa.String(length=128), nullable=False),
        sa.Column('site_id', sa.String(length=64), nullable=True),
        sa.Column('urgency', sa.String(length=16), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('started_at', moment, nullable=False),
        sa.Column('week_number', sa.Integer(), nullable=False),
        sa.Column('modality', sa.String(length=8), nullable=True),
        sa.Column('refusal_reason', sa.String(length=32), nullable=True),
        sa.Column('radiologist', sa.String(length=128), nullable=True),
        *[sa.Column(name, moment, nullable=True) for name in (
            'sent_at', 'offer_at', 'accepted_at')],
        sa.Column('accepted', sa.Integer(), nullable=False),
        *[sa.Column(name, moment, nullable=True) for name in (
            'reading_at', 'released_at', 'acknowledged_at', 'answered_at')],
        *[sa.Column(name, sa.Float(), nullable=True) for name in (
            'turnaround_minutes', 'report_minutes', 'acceptance_minutes', 'acknowledgement_minutes',
            'answer_minutes')],
        *[sa.Column(name, sa.Integer(), nullable=False) for name in (
            'more_info', 'urgent_findings', 'phone_calls', 'announcements', 'announcements_confirmed', 'refusals',
            'refusal_visits', 'refusal_fallbacks', 'te_loops', 'difficulties', 'no_radiologist', 'tier_after',
            'report_late', 'te_late')],
        sa.ForeignKeyConstraint(['case_id'], ['process_instance.id'],
                                name=op.f('fk_case_indicator_case_id_process_instance')),
        sa.PrimaryKeyConstraint('case_id', name=op.f('pk_case_indicator')),
    )
    op.create_index('ix_audit_event_action_at', 'audit_event', ['action', 'at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_audit_event_action_at', table_name='audit_event')
    op.drop_table('case_indicator')
    op.drop_index('ix_process_instance_started', table_name='process_instance')
