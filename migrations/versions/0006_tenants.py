"""tenants: api_keys.prefix limits a key to series keys starting with it; jobs.tenant scopes idempotency keys

Revision ID: 0006_tenants
Revises: 0005_job_owner
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = "0006_tenants"
down_revision = "0005_job_owner"
branch_labels = None
depends_on = None

# 0001 made jobs.idempotency_key UNIQUE without naming the constraint: PostgreSQL named it itself, SQLite keeps it
# nameless, and batch mode finds it by this naming convention.
_OLD_UNIQUE = {"postgresql": "jobs_idempotency_key_key"}
_CONVENTION = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("prefix", sa.String(128), nullable=True))
    dialect = op.get_bind().dialect.name
    # Jobs made before belong to keys without a prefix: tenant ''.
    with op.batch_alter_table("jobs", naming_convention=_CONVENTION) as batch:
        batch.add_column(sa.Column("tenant", sa.String(128), nullable=False, server_default=""))
        batch.drop_constraint(_OLD_UNIQUE.get(dialect, "uq_jobs_idempotency_key"), type_="unique")
        batch.create_unique_constraint("uq_jobs_tenant_idempotency_key", ["tenant", "idempotency_key"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint("uq_jobs_tenant_idempotency_key", type_="unique")
        batch.drop_column("tenant")
        batch.create_unique_constraint("uq_jobs_idempotency_key", ["idempotency_key"])
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("prefix")
