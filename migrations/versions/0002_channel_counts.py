"""channel_counts: observations per (series, channel), kept by the write path so a series' counts cost no scan

Revision ID: 0002_channel_counts
Revises: 0001
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = "0002_channel_counts"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channel_counts",
        sa.Column("series_id", sa.Integer, sa.ForeignKey("series.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("channel", sa.String(128), primary_key=True),
        sa.Column("n", sa.BigInteger, nullable=False),
    )
    op.execute("INSERT INTO channel_counts (series_id, channel, n) "
               "SELECT series_id, channel, count(*) FROM observations GROUP BY series_id, channel")


def downgrade() -> None:
    op.drop_table("channel_counts")
