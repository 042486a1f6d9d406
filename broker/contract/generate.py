"""Regenerate schemas/ (both XSDs and MAPPING.md) from the mapping table.

Run `python -m broker.contract.generate` after changing mapping.py or the model; a test fails while
the committed files differ from what this writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from broker.contract.dialect import DIALECTS, SOURCE_SCHEMA_DIR
from broker.contract.docs import mapping_markdown
from broker.contract.xsd import generate
from broker.model.codes import Side
from broker.model.messages import SCHEMA_VERSIONS


def generated_files() -> dict[str, bytes]:
    files = {d.schema_file: generate(d.binding, d.title) for d in DIALECTS.values()}
    # Each older version of the customer dialect, for a customer system that validates what it receives.
    customer = DIALECTS[Side.CUSTOMER]
    for version in SCHEMA_VERSIONS[:-1]:
        title = f"{customer.title} Version {version}: what a customer on {version} sends and receives."
        files[customer.schema_file.replace(".xsd", f"-{version}.xsd")] = generate(customer.binding_for(version), title)
    files["MAPPING.md"] = mapping_markdown().encode()
    return files


def main(argv: list[str]) -> int:
    target = Path(argv[0]) if argv else SOURCE_SCHEMA_DIR
    for name, content in generated_files().items():
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
