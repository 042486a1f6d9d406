"""a message's own processing steps in its row

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 07:10:00.000000

- messages.steps: the steps of the transaction that stored the message (read, de-duplicate, check, what the
  handlers did), as a JSON list written with the row. Steps taken on it later (a redelivery recognised, a
  replay, an operator's command) stay rows of `events`. The hot path writes one row per message instead of
  one plus three: a statement less per batch and a third of the rows. Rows stored before keep their steps in
  `events` (messages.steps is NULL there): readers take both.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("steps", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("steps")
