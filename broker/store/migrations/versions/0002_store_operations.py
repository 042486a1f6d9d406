"""store operations: search, replay jobs, append-only audit, the store's patient_ref key

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 10:02:11.000000

- messages.order_ref (search by the customer's order id), and indexes on message_id alone and on
  replay_of (the family of a replay);
- on PostgreSQL a trigram index on messages.last_error (pg_trgm), so error-text search stays fast on a
  large store; without the extension the search still works, by scanning;
- store_keys with one random key, made here once, that every process uses for messages.patient_ref;
- replay_jobs and replay_items: the snapshot of a bulk replay, so that it can be resumed;
- audit.os_user, and triggers that refuse UPDATE, DELETE (and TRUNCATE) on audit.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.exc import DBAPIError

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
log = logging.getLogger(__name__)

_PG_APPEND_ONLY = """
CREATE OR REPLACE FUNCTION hmc_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit table is append-only';
END $$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION hmc_audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION hmc_audit_append_only();
"""
_SQLITE_APPEND_ONLY = (
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
    " BEGIN SELECT RAISE(ABORT, 'the audit table is append-only'); END",
    "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
    " BEGIN SELECT RAISE(ABORT, 'the audit table is append-only'); END",
)


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("order_ref", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_messages_order_ref", ["order_ref"], unique=False)
        batch_op.create_index("ix_messages_message_id", ["message_id"], unique=False)
        batch_op.create_index("ix_messages_replay_of", ["replay_of"], unique=False)
    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.add_column(sa.Column("os_user", sa.String(length=100), nullable=True))

    keys = op.create_table(
        "store_keys",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    assert keys is not None
    op.bulk_insert(keys, [{"name": "patient_ref", "value": secrets.token_bytes(32), "created_at": datetime.now(UTC)}])

    op.create_table(
        "replay_jobs",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("force", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "replay_items",
        sa.Column("job_id", Id, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("message_pk", Id, nullable=False),
        sa.Column("replay_pk", Id, nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["replay_jobs.id"]),
        sa.ForeignKeyConstraint(["message_pk"], ["messages.id"]),
        sa.PrimaryKeyConstraint("job_id", "position"),
    )

    if bind.dialect.name == "postgresql":
        _trigram_index(bind)
        op.execute(_PG_APPEND_ONLY)
    elif bind.dialect.name == "sqlite":
        for statement in _SQLITE_APPEND_ONLY:
            op.execute(statement)


def _trigram_index(bind: sa.Connection) -> None:
    """pg_trgm ships with PostgreSQL and is a trusted extension (a database owner may create it)."""
    try:
        with bind.begin_nested():  # a refused CREATE EXTENSION must not abort the whole migration
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DBAPIError as e:
        log.warning("pg_trgm unavailable (%s): error-text search will scan messages", e.orig)
        return
    op.create_index(
        "ix_messages_error_trgm",
        "messages",
        ["last_error"],
        postgresql_using="gin",
        postgresql_ops={"last_error": "gin_trgm_ops"},
    )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_append_only ON audit")
        op.execute("DROP TRIGGER IF EXISTS audit_no_truncate ON audit")
        op.execute("DROP FUNCTION IF EXISTS hmc_audit_append_only()")
        op.execute("DROP INDEX IF EXISTS ix_messages_error_trgm")
    elif bind.dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_no_delete")
    op.drop_table("replay_items")
    op.drop_table("replay_jobs")
    op.drop_table("store_keys")
    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.drop_column("os_user")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_replay_of")
        batch_op.drop_index("ix_messages_order_ref")
        batch_op.drop_index("ix_messages_message_id")
        batch_op.drop_column("order_ref")
