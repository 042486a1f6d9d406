"""`hmc-broker contract`: the AsyncAPI document of the AMQP contract (YAML or JSON), written or printed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from adapters.contract import asyncapi, bundle, compat
from adapters.contract.generate import write


def contract(
    out: Annotated[
        Path | None,
        typer.Option(help="Write asyncapi.yaml, asyncapi.json and the events' JSON Schema into this directory."),
    ] = None,
    format: Annotated[
        Literal["yaml", "json"], typer.Option("--format", help="What to print when no --out is given.")
    ] = "yaml",
    bundle_to: Annotated[
        Path | None,
        typer.Option(
            "--bundle",
            help="Write the versioned bundle (every XSD, the events' JSON Schema, the AsyncAPI document, a "
            "manifest with checksums) to this directory, or to this zip file when it ends in .zip.",
        ),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Refuse (exit 1) when a published schema version would break.")
    ] = False,
    publish: Annotated[
        bool,
        typer.Option("--publish", help="Keep the fingerprint of every schema version not yet published (schemas/)."),
    ] = False,
) -> None:
    """The AsyncAPI document of the AMQP contract (from the code), the schema bundle, the compatibility check.

    The AsyncAPI 3.0 document (YAML by default) comes from the topology, the routing table and the mapping:
    every exchange and queue, operation, message type with its properties, headers and XSDs."""
    if check:
        problems = compat.check()
        for problem in problems:
            typer.echo(f"breaks a published version: {problem}", err=True)
        if problems:
            raise typer.Exit(1)
        typer.echo(f"compatible with {len(compat.published_versions())} published schema version(s)")
        return
    if publish:
        for path in compat.publish():
            typer.echo(path)
        return
    if bundle_to is not None:
        typer.echo(bundle.write(bundle_to))
        return
    if out is not None:
        for path in write(out):
            typer.echo(path)
        return
    doc = asyncapi.document()
    typer.echo(asyncapi.as_json(doc) if format == "json" else asyncapi.as_yaml(doc), nl=False)


def register(app: typer.Typer) -> None:
    app.command("contract")(contract)
