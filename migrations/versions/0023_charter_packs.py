"""Charter rule packs per organisation and declared activity for the teleradiology share (issue 19, items 3-4)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-08
"""
import sqlalchemy as sa
from alembic import op

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "charter_pack_assignment",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("territory_id", sa.String(64), nullable=True),
        sa.Column("convention_id", BIG_ID, nullable=True),
        sa.Column("pack", sa.String(16), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("share_cap_percent", sa.Integer(), nullable=True),
        sa.Column("over_cap_mode", sa.String(8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.CheckConstraint("(territory_id IS NULL) <> (convention_id IS NULL)",
                           name=op.f("ck_charter_pack_assignment_one_organisation")),
        sa.ForeignKeyConstraint(["territory_id"], ["territory.id"],
                                name=op.f("fk_charter_pack_assignment_territory_id_territory")),
        sa.ForeignKeyConstraint(["convention_id"], ["convention.id"],
                                name=op.f("fk_charter_pack_assignment_convention_id_convention")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_charter_pack_assignment")),
    )
    op.create_index("ix_charter_pack_territory", "charter_pack_assignment", ["territory_id", "effective_from"])
    op.create_index("ix_charter_pack_convention", "charter_pack_assignment", ["convention_id", "effective_from"])
    op.create_table(
        "case_charter_pack",
        sa.Column("instance_id", BIG_ID, nullable=False),
        sa.Column("pack", sa.String(16), nullable=False),
        sa.Column("version", sa.String(16), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_screen", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(["instance_id"], ["process_instance.id"],
                                name=op.f("fk_case_charter_pack_instance_id_process_instance")),
        sa.PrimaryKeyConstraint("instance_id", name=op.f("pk_case_charter_pack")),
    )
    op.create_table(
        "activity_declaration",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("username", sa.String(128), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("total_acts", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("declared_by", sa.String(128), nullable=False),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("total_acts >= 0", name=op.f("ck_activity_declaration_acts")),
        sa.CheckConstraint("period_end >= period_start", name=op.f("ck_activity_declaration_period")),
        sa.ForeignKeyConstraint(["username"], ["app_user.username"],
                                name=op.f("fk_activity_declaration_username_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activity_declaration")),
    )
    op.create_index("ix_activity_declaration_user", "activity_declaration", ["username", "period_end"])
    # Cases running before packs existed keep the charter they started under (CH-9.1).
    op.execute(sa.text(
        "INSERT INTO case_charter_pack (instance_id, pack, version, recorded_at) "
        "SELECT id, '2020', '2020.1', started_at FROM process_instance WHERE status = 'running'"))


def downgrade() -> None:
    op.drop_index("ix_activity_declaration_user", table_name="activity_declaration")
    op.drop_table("activity_declaration")
    op.drop_table("case_charter_pack")
    op.drop_index("ix_charter_pack_convention", table_name="charter_pack_assignment")
    op.drop_index("ix_charter_pack_territory", table_name="charter_pack_assignment")
    op.drop_table("charter_pack_assignment")
