"""TOTP secrets encrypted at rest (Fernet): the column widened to hold the token

The seeds already stored stay in clear until `telerad db upgrade` encrypts them right after the migrations
(engine.services.secrets_at_rest.seal_clear_secrets): a migration cannot read the key file.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("app_user") as batch:
        batch.alter_column("totp_secret", existing_type=sa.String(64), type_=sa.String(255),
                           existing_nullable=False)


def downgrade() -> None:
    # Only possible once the secrets are back in clear (32 characters): the older code cannot decrypt them.
    with op.batch_alter_table("app_user") as batch:
        batch.alter_column("totp_secret", existing_type=sa.String(255), type_=sa.String(64),
                           existing_nullable=False)
