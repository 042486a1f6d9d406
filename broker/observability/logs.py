"""Structured logs: JSON lines in production, readable on a terminal, patient identifiers always masked.

Configured once at start. The broker's own code and every library logging through the standard library
pass the same processors, so the masking applies to all of them (kombu, SQLAlchemy, alembic included).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, Literal

import structlog

from broker.privacy import mask_text

Format = Literal["json", "console", "auto"]


def mask_patient_ids(_logger: object, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replace anything shaped like a personnummer, samordningsnummer or reservnummer, wherever it sits."""
    for key, value in event.items():
        event[key] = _masked(value)
    return event


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return mask_text(str(value))


def for_a_command(level: str = "WARNING", fmt: Format = "auto") -> None:
    """Logging for a command other than `run`: its stdout is its result, so log lines go to stderr, warnings only.
    Left alone when logging is configured already (a test run that captures everything)."""
    if not structlog.is_configured():
        configure(level, fmt)


def configure(level: str = "INFO", fmt: Format = "auto") -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: Any = structlog.dev.ConsoleRenderer(colors=False) if console else structlog.processors.JSONRenderer()
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        # Masking runs on every record, ours and libraries', right before rendering: nothing escapes it.
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, mask_patient_ids, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
