"""the prescriber register keeps the förskrivarkod and profession of customer dialect 1.1

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 15:30:00.000000

- prescribers.prescriber_code, prescribers.profession: what a 1.1 order says of its prescriber (the code the
  region gave with the right to prescribe devices, and the profession its prescribing rules are keyed on);
  prescribers.coded_at: when a message last stated them, so that a message processed late does not
  overwrite what a later one said. All nullable and added without a default: a row of an orderer or a
  fault reporter, or of a prescriber seen only in 1.0 messages, has none.
- Additive only, so a worker of the previous version keeps running during a rolling upgrade: its upsert
  names none of these columns, so it inserts NULL and leaves a stored value as it is
  (tests/store/test_migrations.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("prescribers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prescriber_code", sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column("profession", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("coded_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("prescribers", schema=None) as batch_op:
        batch_op.drop_column("coded_at")
        batch_op.drop_column("profession")
        batch_op.drop_column("prescriber_code")
