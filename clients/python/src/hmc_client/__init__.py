"""Typed Python client of HMC Broker's AMQP contract (AsyncAPI document and XSDs shipped inside)."""

from hmc_client.client import HmcClient, NotConfirmed, Published, RecentIds, Role, SeenIds, Tls, Unroutable
from hmc_client.contract import Contract, Document, InvalidMessage, MessageSpec, Problem
from hmc_client.messages import (
    Answer,
    ConfirmedLine,
    Header,
    OrderConfirmation,
    OrderStatusReply,
    Rejection,
    StatusLine,
    parse,
)

__all__ = [
    "Answer",
    "ConfirmedLine",
    "Contract",
    "Document",
    "Header",
    "HmcClient",
    "InvalidMessage",
    "MessageSpec",
    "NotConfirmed",
    "OrderConfirmation",
    "OrderStatusReply",
    "Problem",
    "Published",
    "RecentIds",
    "Rejection",
    "Role",
    "SeenIds",
    "StatusLine",
    "Tls",
    "Unroutable",
    "parse",
]
