"""Site visits, validated imaging devices and reading workstations (issue 19, item 6)

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-08
"""
import sqlalchemy as sa
from alembic import op

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "site_visit",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("radiologist", sa.String(128), nullable=False),
        sa.Column("visited_on", sa.Date(), nullable=False),
        sa.Column("findings", sa.Text(), nullable=False),
        sa.Column("protocols_reviewed", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(128), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], name=op.f("fk_site_visit_site_id_site")),
        sa.ForeignKeyConstraint(["radiologist"], ["app_user.username"],
                                name=op.f("fk_site_visit_radiologist_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site_visit")),
    )
    op.create_index("ix_site_visit_site_radiologist", "site_visit", ["site_id", "radiologist", "visited_on"])
    op.create_table(
        "site_device",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("modality", sa.String(8), nullable=False),
        sa.Column("manufacturer", sa.String(200), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("serial", sa.String(100), nullable=False),
        sa.Column("installed_on", sa.Date(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("validated_on", sa.Date(), nullable=True),
        sa.Column("validated_by", sa.String(128), nullable=True),
        sa.Column("validation_remarks", sa.Text(), nullable=True),
        sa.Column("validation_recorded_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], name=op.f("fk_site_device_site_id_site")),
        sa.ForeignKeyConstraint(["validated_by"], ["app_user.username"],
                                name=op.f("fk_site_device_validated_by_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site_device")),
    )
    op.create_index("ix_site_device_site", "site_device", ["site_id"])
    op.create_table(
        "reading_station",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("username", sa.String(128), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("display_model", sa.String(200), nullable=False),
        sa.Column("conformity_declared", sa.Boolean(), nullable=False),
        sa.Column("declared_on", sa.Date(), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["username"], ["app_user.username"],
                                name=op.f("fk_reading_station_username_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reading_station")),
    )
    op.create_index("ix_reading_station_username", "reading_station", ["username"])


def downgrade() -> None:
    op.drop_index("ix_reading_station_username", table_name="reading_station")
    op.drop_table("reading_station")
    op.drop_index("ix_site_device_site", table_name="site_device")
    op.drop_table("site_device")
    op.drop_index("ix_site_visit_site_radiologist", table_name="site_visit")
    op.drop_table("site_visit")
