"""model_series: each version's series keys as rows, indexed by key, so a forecast's default version is an index read

Revision ID: 0007_model_series
Revises: 0006_tenants
Create Date: 2026-12-08
"""
import sqlalchemy as sa
from alembic import op

revision = "0007_model_series"
down_revision = "0006_tenants"
branch_labels = None
depends_on = None

# Every version's links from its `series` JSON list (each key once): SQLite's json_each, PostgreSQL's
# json_array_elements_text (models.series is `json` there).
_BACKFILL = {
    "sqlite": "INSERT INTO model_series (model_id, series_key) "
              "SELECT DISTINCT m.id, j.value FROM models AS m, json_each(m.series) AS j",
    "postgresql": "INSERT INTO model_series (model_id, series_key) "
                  "SELECT DISTINCT m.id, j.key FROM models AS m, json_array_elements_text(m.series) AS j(key)",
}


def upgrade() -> None:
    op.create_table(
        "model_series",
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("series_key", sa.String(128), primary_key=True),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_model_series_series_key", "model_series", ["series_key", "model_id"])
    op.execute(_BACKFILL[op.get_bind().dialect.name])


def downgrade() -> None:
    op.drop_index("ix_model_series_series_key", table_name="model_series")
    op.drop_table("model_series")
