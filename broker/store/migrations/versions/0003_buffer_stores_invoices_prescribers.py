"""buffer stores, invoice data, prescriber register

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 16:00:00.000000

- buffer_stock: per customer, buffer store and article the safety level, refill quantity and on-hand;
- buffer_movements: the stock ledger, unique per message and article (a message counts once);
- replenishments: generated orders, at most one open per store and article (a partial unique index);
- invoices: SESAM2's monthly invoice data, kept for export beyond the payload retention;
- prescribers: who was seen ordering for which customer, role and unit, first and last seen.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Stamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "buffer_stock",
        sa.Column("customer_number", sa.String(length=16), nullable=False),
        sa.Column("buffer_store_id", sa.String(length=35), nullable=False),
        sa.Column("article_number", sa.String(length=20), nullable=False),
        sa.Column("safety_level", sa.Integer(), nullable=False),
        sa.Column("refill_quantity", sa.Integer(), nullable=False),
        sa.Column("on_hand", sa.Integer(), nullable=True),
        sa.Column("counted_at", Stamp, nullable=True),
        sa.Column("updated_at", Stamp, nullable=False),
        sa.PrimaryKeyConstraint("customer_number", "buffer_store_id", "article_number"),
    )
    op.create_table(
        "buffer_movements",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("customer_number", sa.String(length=16), nullable=False),
        sa.Column("buffer_store_id", sa.String(length=35), nullable=False),
        sa.Column("article_number", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("on_hand_after", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("at", Stamp, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ux_buffer_movements_message", "buffer_movements", ["kind", "message_id", "article_number"], unique=True
    )
    op.create_index(
        "ix_buffer_movements_stock",
        "buffer_movements",
        ["customer_number", "buffer_store_id", "article_number", "at"],
    )
    op.create_table(
        "replenishments",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("customer_number", sa.String(length=16), nullable=False),
        sa.Column("buffer_store_id", sa.String(length=35), nullable=False),
        sa.Column("article_number", sa.String(length=20), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("on_hand_at_order", sa.Integer(), nullable=False),
        sa.Column("safety_level", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("caused_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
        sa.Column("closed_at", Stamp, nullable=True),
        sa.Column("closed_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_id"),
    )
    # The rule "one open replenishment per store and article" lives in the database: a second concurrent
    # insert fails instead of sending a second order.
    op.create_index(
        "ux_replenishments_open",
        "replenishments",
        ["customer_number", "buffer_store_id", "article_number"],
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_table(
        "invoices",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("customer_number", sa.String(length=16), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("invoice_number", sa.String(length=35), nullable=False),
        sa.Column("total_amount", sa.String(length=20), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("message_pk", Id, nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("received_at", Stamp, nullable=False),
        sa.ForeignKeyConstraint(["message_pk"], ["messages.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_invoices_customer_period", "invoices", ["customer_number", "period", "received_at"])
    op.create_table(
        "prescribers",
        sa.Column("customer_number", sa.String(length=16), nullable=False),
        sa.Column("hsa_id", sa.String(length=31), nullable=False),
        sa.Column("role", sa.String(length=12), nullable=False),
        sa.Column("unit_hsa_id", sa.String(length=31), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("first_seen", Stamp, nullable=False),
        sa.Column("last_seen", Stamp, nullable=False),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("customer_number", "hsa_id", "role", "unit_hsa_id"),
    )


def downgrade() -> None:
    op.drop_table("prescribers")
    op.drop_index("ix_invoices_customer_period", table_name="invoices")
    op.drop_table("invoices")
    op.drop_index("ux_replenishments_open", table_name="replenishments")
    op.drop_table("replenishments")
    op.drop_index("ix_buffer_movements_stock", table_name="buffer_movements")
    op.drop_index("ux_buffer_movements_message", table_name="buffer_movements")
    op.drop_table("buffer_movements")
    op.drop_table("buffer_stock")
