"""SQLAlchemy models, database set-up, audit chain and read queries."""
