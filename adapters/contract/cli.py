"""`hmc-broker contract`: the AsyncAPI document of the AMQP contract (YAML or JSON), written or printed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from adapters.contract import asyncapi
from adapters.contract.generate import write


def contract(
    out: Annotated[
        Path | None,
        typer.Option(help="Write asyncapi.yaml, asyncapi.json and the events' JSON Schema into this directory."),
    ] = None,
    format: Annotated[
        Literal["yaml", "json"], typer.Option("--format", help="What to print when no --out is given.")
    ] = "yaml",
) -> None:
    """The AsyncAPI 3.0 document of the AMQP contract, generated from the topology, the routing table and the
    mapping: every exchange and queue, operation, message type with its properties, headers and XSDs."""
    if out is not None:
        for path in write(out):
            typer.echo(path)
        return
    doc = asyncapi.document()
    typer.echo(asyncapi.as_json(doc) if format == "json" else asyncapi.as_yaml(doc), nl=False)


def register(app: typer.Typer) -> None:
    app.command("contract")(contract)
