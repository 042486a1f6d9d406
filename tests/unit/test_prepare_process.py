"""A worker's process is prepared before its loop (broker/runtime.py: prepare_process): what the first message of
each type would wait for is built, and what exists then is out of the garbage collector's sight."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from broker.contract.dialect import DIALECTS, _versioned
from broker.model.codes import Side
from broker.model.messages import SCHEMA_VERSIONS
from broker.runtime import prepare_process


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # the test process goes on collecting as before


def test_bindings_and_schemas_are_built_and_start_up_objects_frozen(unfrozen: None) -> None:
    _versioned.cache_clear()
    for dialect in DIALECTS.values():
        dialect.__dict__.pop("compiled_schema", None)
    prepare_process()
    assert gc.get_freeze_count() > 10_000  # the modules, schemas and plans made so far
    for dialect in DIALECTS.values():
        assert "compiled_schema" in dialect.__dict__  # built, not waiting for the first message
    older = [v for v in SCHEMA_VERSIONS if v != SCHEMA_VERSIONS[-1]]
    assert _versioned.cache_info().currsize == len(older)  # every older customer version's binding
    assert DIALECTS[Side.CUSTOMER].binding_for(older[0]) is _versioned(
        Side.CUSTOMER, DIALECTS[Side.CUSTOMER].namespace, older[0]
    )
