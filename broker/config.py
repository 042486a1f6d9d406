"""Settings, read once from the environment (HMC_*). Secrets come only from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from re import Pattern

from broker.validation import identifiers
from broker.validation.safe_xml import XmlLimits


@dataclass(frozen=True)
class Settings:
    max_message_bytes: int = XmlLimits.max_bytes
    max_xml_depth: int = XmlLimits.max_depth
    reserve_patterns: tuple[Pattern[str], ...] = field(default=identifiers.DEFAULT_RESERVE_PATTERNS)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        defaults = cls()
        patterns = env.get("HMC_RESERVE_ID_PATTERNS")
        return cls(
            max_message_bytes=int(env.get("HMC_MAX_MESSAGE_BYTES", defaults.max_message_bytes)),
            max_xml_depth=int(env.get("HMC_MAX_XML_DEPTH", defaults.max_xml_depth)),
            reserve_patterns=identifiers.reserve_patterns_from(patterns) if patterns else defaults.reserve_patterns,
        )

    @property
    def xml_limits(self) -> XmlLimits:
        return XmlLimits(max_bytes=self.max_message_bytes, max_depth=self.max_xml_depth)
