"""The generated contract files beside the XSDs: the AsyncAPI document (YAML and JSON) and the events' JSON Schema.

Run `python -m adapters.contract.generate` (or `hmc-broker contract --out schemas`) after changing the topology,
the routing table, the mapping or the events; tests/unit/test_asyncapi.py fails while the committed files in
schemas/ differ from what this writes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from adapters.contract import asyncapi, events
from broker.contract.dialect import SOURCE_SCHEMA_DIR

ASYNCAPI_YAML = "asyncapi.yaml"
ASYNCAPI_JSON = "asyncapi.json"


def generated_files() -> dict[str, bytes]:
    doc = asyncapi.document()
    return {
        ASYNCAPI_YAML: asyncapi.as_yaml(doc).encode(),
        ASYNCAPI_JSON: asyncapi.as_json(doc).encode(),
        events.EVENTS_SCHEMA_FILE: (json.dumps(events.events_schema(), indent=2) + "\n").encode(),
    }


def write(target: Path) -> list[Path]:
    written = []
    for name, content in generated_files().items():
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    for path in write(Path(argv[0]) if argv else SOURCE_SCHEMA_DIR):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
