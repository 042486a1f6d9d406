"""failure rules

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 07:00:00.000000

- messages.error_rule: the rule or error class last_error begins with (broker/store/error_rules.py),
  written with it from now on; filled here for every row that has an error, 10,000 rows a statement.
- ix_messages_failures: the parked and rejected rows only, by (status, error_rule, message_type,
  customer_number, received_at, id): the Failures page counts its groups from this index alone.

Adding the nullable column rewrites nothing on PostgreSQL; the fill reads the rows with an error (on the
synthetic 1,000,000-message store of `hmc-broker console-bench`, 4.5 % of them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from broker.store.error_rules import stored_rule

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BATCH = 10_000


def upgrade() -> None:
    op.add_column("messages", sa.Column("error_rule", sa.String(length=64), nullable=True))
    conn = op.get_bind()
    messages = sa.table("messages", sa.column("id", sa.BigInteger), sa.column("last_error", sa.Text),
                        sa.column("error_rule", sa.String))  # fmt: skip
    fill = sa.update(messages).where(messages.c.id == sa.bindparam("pk")).values(error_rule=sa.bindparam("rule"))
    after = 0
    while True:
        rows = conn.execute(
            sa.select(messages.c.id, messages.c.last_error)
            .where(messages.c.last_error.is_not(None), messages.c.id > after)
            .order_by(messages.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        values = [{"pk": pk, "rule": rule} for pk, error in rows if (rule := stored_rule(error)) is not None]
        if values:
            conn.execute(fill, values)
        after = rows[-1][0]
    failed = sa.column("status").in_(("parked", "rejected"))
    op.create_index(
        "ix_messages_failures",
        "messages",
        ["status", "error_rule", "message_type", "customer_number", "received_at", "id"],
        sqlite_where=failed,
        postgresql_where=failed,
    )


def downgrade() -> None:
    op.drop_index("ix_messages_failures", table_name="messages")
    op.drop_column("messages", "error_rule")
