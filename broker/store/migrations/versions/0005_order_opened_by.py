"""one order per order id: the order view remembers the message id that opened an order

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 04:00:00.000000

The same (customer, order id) under a new message id is then recognised: the same business content (the
opener's stored payload read again) is a repeat and nothing is sent again; other content is refused as
order.duplicate. The orders table's primary key
(customer_number, order_id) is what makes the order unique between concurrent workers: the second
insert fails, and the worker's retry finds the order (runtime._stored_meanwhile).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("opened_by", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("opened_by")
