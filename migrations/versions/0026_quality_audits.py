"""Periodic quality audits: issued reports and follow-up actions (issue 19, item 2)

An issued report is immutable: triggers abort any UPDATE or DELETE of quality_audit_report (SQLite and PostgreSQL).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-08
"""
import sqlalchemy as sa
from alembic import op

revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MESSAGE = "quality_audit_report is append-only: an issued report is never changed (issue a new version)"
_PG_FUNCTION = f"""
CREATE FUNCTION quality_audit_report_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '{MESSAGE}';
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.create_table(
        "quality_audit_report",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("scope_id", sa.String(64), nullable=False),
        sa.Column("quarter", sa.String(7), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("snapshot", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("issued_by", sa.String(128), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quality_audit_report")),
        sa.UniqueConstraint("scope", "scope_id", "quarter", "version", name="uq_quality_audit_report"),
    )
    op.create_index(op.f("ix_quality_audit_report_scope_id"), "quality_audit_report", ["scope_id"])
    op.create_table(
        "quality_audit_action",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("report_id", BIG_ID, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_by", sa.String(128), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["report_id"], ["quality_audit_report.id"],
                                name=op.f("fk_quality_audit_action_report_id_quality_audit_report")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quality_audit_action")),
    )
    op.create_index(op.f("ix_quality_audit_action_report_id"), "quality_audit_action", ["report_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute("CREATE TRIGGER quality_audit_report_no_change BEFORE UPDATE OR DELETE ON quality_audit_report "
                   "FOR EACH ROW EXECUTE FUNCTION quality_audit_report_immutable()")
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER quality_audit_report_no_{verb.lower()} BEFORE {verb} ON quality_audit_report "
                       f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS quality_audit_report_no_change ON quality_audit_report")
        op.execute("DROP FUNCTION IF EXISTS quality_audit_report_immutable()")
    else:
        op.execute("DROP TRIGGER IF EXISTS quality_audit_report_no_update")
        op.execute("DROP TRIGGER IF EXISTS quality_audit_report_no_delete")
    op.drop_index(op.f("ix_quality_audit_action_report_id"), table_name="quality_audit_action")
    op.drop_table("quality_audit_action")
    op.drop_index(op.f("ix_quality_audit_report_scope_id"), table_name="quality_audit_report")
    op.drop_table("quality_audit_report")
