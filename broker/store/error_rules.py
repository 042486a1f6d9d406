"""The rule or error class a message's last error begins with: what failures are grouped by (the Failures
page, broker/store/failures.py), kept beside the error in messages.error_rule (migration 0009)."""

from __future__ import annotations

NO_ERROR = "(no error)"  # the rule of a failure without an error text (its error_rule is NULL)
RULE_LENGTH = 60  # messages.error_rule is String(64)


def rule_of(error: str | None) -> str:
    """The rule or error class an error begins with: "XSD-LENGTH at /x: ..." -> XSD-LENGTH, "publish: ..."
    -> publish (the texts broker/rejections.py and broker/store/outbox.py write)."""
    text = error or ""
    if not text.strip():
        return NO_ERROR
    cut = min((i for i in (text.find(" at "), text.find(":")) if i > 0), default=len(text))
    return text[:cut][:RULE_LENGTH].strip() or NO_ERROR


def stored_rule(error: str | None) -> str | None:
    """What messages.error_rule holds for an error: its rule, or NULL for none."""
    rule = rule_of(error)
    return None if rule == NO_ERROR else rule
