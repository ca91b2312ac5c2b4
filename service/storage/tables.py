"""The schema as SQLAlchemy Core tables. migrations/ creates and changes it; this module only describes it.

Every time column is an integer count of microseconds since the Unix epoch, UTC: exact, sortable, and the same on
SQLite and PostgreSQL.
"""

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata_obj = MetaData()

# The form of a series key, and of model names, key names and key prefixes: 1 to 128 letters, digits, '.', '_', '-',
# not starting with one of the last three (URL-safe, no path or wildcard characters).
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"

series = Table(
    "series",
    metadata_obj,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(128), nullable=False, unique=True),
    Column("channels", JSON, nullable=False),  # list of names, fixed order; channels are added, never removed
    Column("description", Text, nullable=False, default=""),
    # "metadata" is reserved on SQLAlchemy declarative classes; the column keeps the user-facing name.
    Column("metadata", JSON, nullable=False, key="meta"),
    Column("created_at", BigInteger, nullable=False),
)

observations = Table(
    "observations",
    metadata_obj,
    Column("series_id", Integer, ForeignKey("series.id", ondelete="CASCADE"), primary_key=True),
    Column("channel", String(128), primary_key=True),
    Column("t", BigInteger, primary_key=True),
    Column("value", Float(precision=53), nullable=False),
    sqlite_with_rowid=False,
)

# Observations per (series, channel), kept up to date by the observation write and delete paths (service.storage)
# in the same transaction, so that a series' counts are read, not counted.
channel_counts = Table(
    "channel_counts",
    metadata_obj,
    Column("series_id", Integer, ForeignKey("series.id", ondelete="CASCADE"), primary_key=True),
    Column("channel", String(128), primary_key=True),
    Column("n", BigInteger, nullable=False),
)

models = Table(
    "models",
    metadata_obj,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # queued | training | ready | failed | cancelled
    Column("config", JSON, nullable=False),  # ModelConfig as a dict
    Column("channels", JSON, nullable=False),
    Column("series", JSON, nullable=False),  # series keys it was trained on
    Column("stats", JSON, nullable=True),  # normalisation, time scale, horizon: written with the artifact
    Column("metrics", JSON, nullable=True),
    Column("artifact", LargeBinary, nullable=True),  # safetensors bytes with the JSON config in its header
    Column("artifact_sha256", String(64), nullable=True),
    Column("error", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("trained_at", BigInteger, nullable=True),
    UniqueConstraint("name", "version", name="uq_models_name_version"),
)

# The series keys each version was trained on (`models.series`, a JSON list, as rows): written with the version in
# its transaction (service.storage.registry.insert_version) and gone with it (ON DELETE CASCADE), so "the versions
# trained on this series" is one index range, not a read of every version.
model_series = Table(
    "model_series",
    metadata_obj,
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), primary_key=True),
    Column("series_key", String(128), primary_key=True),
    Index("ix_model_series_series_key", "series_key", "model_id"),
    sqlite_with_rowid=False,
)

# The last version number handed out per model name. It never goes down, so deleting the newest version (or the
# whole name) never lets a later training reuse a number a client may still hold.
model_names = Table(
    "model_names",
    metadata_obj,
    Column("name", String(128), primary_key=True),
    Column("last_version", Integer, nullable=False),
)

jobs = Table(
    "jobs",
    metadata_obj,
    Column("id", String(36), primary_key=True),  # uuid4 text
    Column("kind", String(16), nullable=False),  # train
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), nullable=True, index=True),
    Column("status", String(16), nullable=False, index=True),  # queued | running | succeeded | failed | cancelled
    Column("progress", JSON, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("worker", String(128), nullable=True),
    Column("heartbeat_at", BigInteger, nullable=True),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("error", Text, nullable=True),
    Column("idempotency_key", String(256), nullable=True),
    # The series-key prefix of the key that asked for the job ('' for a key without one): idempotency keys are
    # unique within it, so tenants' keys neither collide nor answer each other.
    Column("tenant", String(128), nullable=False, default="", server_default=""),
    Column("request_hash", String(64), nullable=True),
    # The API key that asked for the job (api_keys.id; keys are revoked, never deleted), None without authentication:
    # what a key's active jobs are counted by.
    Column("api_key_id", Integer, nullable=True),
    Column("created_at", BigInteger, nullable=False, index=True),
    Column("enqueued_at", BigInteger, nullable=True),
    Column("started_at", BigInteger, nullable=True),
    Column("finished_at", BigInteger, nullable=True),
    Index("ix_jobs_api_key_id_status", "api_key_id", "status"),
    UniqueConstraint("tenant", "idempotency_key", name="uq_jobs_tenant_idempotency_key"),
)

api_keys = Table(
    "api_keys",
    metadata_obj,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("key_hash", String(64), nullable=False, unique=True),  # sha256 hex of the key; the key is never stored
    Column("key_start", String(16), nullable=True),  # the key's first characters, to tell keys apart in a listing
    Column("scopes", JSON, nullable=False),  # subset of ["read", "write", "admin"]
    # A tenant's key sees only series whose keys start with this, and models trained on them alone; None: all.
    Column("prefix", String(128), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
)
