"""protocol catalogue: the acquisition protocols radiologists choose from, seeded with the default catalogue

Each protocol carries its modality, body region, contrast agent class (none: no injection) and the patient
groups it suits (CH-4.1.9, CH-4.1.10). Administrators edit it; rows are deactivated, never deleted.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""
import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from engine.domain.protocols import DEFAULT_PROTOCOLS

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table('protocol',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('modality', sa.String(length=8), nullable=False),
    sa.Column('body_region', sa.String(length=64), nullable=False),
    sa.Column('agent_class', sa.String(length=32), nullable=True),
    sa.Column('patient_groups', sa.Text(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=128), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_protocol'))
    )
    now = datetime.now(UTC)
    if op.get_bind().dialect.name == 'sqlite':
        now = now.replace(tzinfo=None)  # stored as naive UTC, as engine.store.models.UTCDateTime does
    op.bulk_insert(table, [
        {'id': p.id, 'label': p.label, 'modality': p.modality, 'body_region': p.body_region,
         'agent_class': p.agent_class, 'patient_groups': json.dumps(list(p.patient_groups)), 'active': p.active,
         'updated_at': now, 'updated_by': 'system'}
        for p in DEFAULT_PROTOCOLS
    ])


def downgrade() -> None:
    op.drop_table('protocol')
