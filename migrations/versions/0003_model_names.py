"""model_names: the last version number handed out per model name, so deleted numbers are never reused

Revision ID: 0003_model_names
Revises: 0002_channel_counts
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = "0003_model_names"
down_revision = "0002_channel_counts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_names",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("last_version", sa.Integer, nullable=False),
    )
    op.execute("INSERT INTO model_names (name, last_version) SELECT name, max(version) FROM models GROUP BY name")


def downgrade() -> None:
    op.drop_table("model_names")
