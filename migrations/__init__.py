"""Alembic environment and revisions: the only way latentcast's schema changes (`latentcast migrate`)."""
