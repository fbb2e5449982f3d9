"""worklist indexes: tasks by the user who ended them (case lists of the people involved in a case)

The case list and search show a user the cases of their sites and the cases they were involved in (assigned,
offered, or ended a task). Without an index on task.ended_by the involvement look-up read every task row:
120-135 ms for a radiologist among 100,000 cases and 200,000 task rows (benchmarks/worklist.py), a few ms with it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f('ix_task_ended_by'), 'task', ['ended_by'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_task_ended_by'), table_name='task')
