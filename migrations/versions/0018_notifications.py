"""notifications: people's contacts and preferences, the notification outbox (issue 17)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "notification_contact",
        sa.Column("username", sa.String(128), sa.ForeignKey("app_user.username"), primary_key=True),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("phone", sa.String(16), nullable=True),
        sa.Column("preferences", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "notification_outbox",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("event_key", sa.String(128), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=True),
        sa.Column("site_id", sa.String(64), nullable=True),
        sa.Column("urgency", sa.String(16), nullable=True),
        sa.Column("recipient", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("address", sa.String(254), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("recipient", "channel", "event_key", name="uq_notification_once"),
    )
    op.create_index("ix_notification_due", "notification_outbox", ["status", "next_attempt_at"])
    op.create_index("ix_notification_outbox_case_id", "notification_outbox", ["case_id"])


def downgrade() -> None:
    op.drop_index("ix_notification_outbox_case_id", table_name="notification_outbox")
    op.drop_index("ix_notification_due", table_name="notification_outbox")
    op.drop_table("notification_outbox")
    op.drop_table("notification_contact")
