"""jobs.api_key_id: the key that asked for each job, so that a key's active jobs can be counted

Revision ID: 0005_job_owner
Revises: 0004_key_start
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_job_owner"
down_revision = "0004_key_start"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Jobs made before have no owner, as jobs asked for without authentication have none: they count together.
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("api_key_id", sa.Integer, nullable=True))
    op.create_index("ix_jobs_api_key_id_status", "jobs", ["api_key_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_jobs_api_key_id_status", "jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("api_key_id")
