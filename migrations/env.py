"""Alembic environment: the target metadata is engine.store's."""

from alembic import context
from sqlalchemy import create_engine, pool

import engine.store.charter_pack_models  # noqa: F401
import engine.store.convention_models  # noqa: F401  (registers the tables)
import engine.store.designer_models  # noqa: F401
import engine.store.directory_models  # noqa: F401
import engine.store.fee_models  # noqa: F401  (acts and fees, CH-7)
import engine.store.fee_setting_models  # noqa: F401  (settings of the remuneration document)
import engine.store.incident_models  # noqa: F401  (downtime incidents)
import engine.store.indicator_models  # noqa: F401  (the indicators' per-case facts)
import engine.store.protocol_models  # noqa: F401
import engine.store.quality_audit_models  # noqa: F401
import engine.store.report_models  # noqa: F401
import engine.store.research_models  # noqa: F401  (research export requests)
import engine.store.site_quality_models  # noqa: F401
import integrations.dicom.models  # noqa: F401
import integrations.dicom.pacs_models  # noqa: F401
import integrations.hl7.models  # noqa: F401
from engine.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
