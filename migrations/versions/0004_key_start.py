"""api_keys.key_start: a key's first characters, kept in the clear so that a listing can tell keys apart

Revision ID: 0004_key_start
Revises: 0003_model_names
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = "0004_key_start"
down_revision = "0003_model_names"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Keys made before stay without one: only their hashes were kept.
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("key_start", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("key_start")
