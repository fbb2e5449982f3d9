"""sessions kept one by one (listing, ending, absolute lifetime); API tokens with an expiry and a scope

The tokens that exist when this migration runs expire 90 days after it (the default lifetime of a new token)
and keep acting as before: their scope is "act" (read and write). Their holders renew them from the account
pages before then.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

EXISTING_TOKENS_LIFETIME = timedelta(days=90)


def upgrade() -> None:
    op.create_table(
        "user_session",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("username", sa.String(128),
                  sa.ForeignKey("app_user.username", name="fk_user_session_username_app_user"), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_address", sa.String(64)),
        sa.Column("user_agent", sa.String(200)),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("end_reason", sa.String(32)),
        sa.PrimaryKeyConstraint("id", name="pk_user_session"),
        sa.UniqueConstraint("secret_hash", name="uq_user_session_secret_hash"),
    )
    op.create_index("ix_user_session_username", "user_session", ["username"])
    with op.batch_alter_table("api_token") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("scope", sa.String(8), nullable=False, server_default="act"))
    expires = datetime.now(UTC) + EXISTING_TOKENS_LIFETIME
    if op.get_bind().dialect.name == "sqlite":  # stored naive in UTC there (engine.store.models.UTCDateTime)
        expires = expires.replace(tzinfo=None)
    tokens = sa.table("api_token", sa.column("expires_at", sa.DateTime(timezone=True)))
    op.execute(tokens.update().values(expires_at=expires))
    with op.batch_alter_table("api_token") as batch:
        batch.alter_column("expires_at", existing_type=sa.DateTime(timezone=True), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("api_token") as batch:
        batch.drop_column("scope")
        batch.drop_column("expires_at")
    op.drop_index("ix_user_session_username", table_name="user_session")
    op.drop_table("user_session")
