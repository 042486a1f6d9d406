"""Run an edge's commands (a module's `register(app)`) as an operator types them, on a store by URL."""

from __future__ import annotations

from collections.abc import Callable

import typer
from typer.testing import CliRunner


def run_command(register: Callable[[typer.Typer], None], db_url: str, *args: str) -> str:
    """The command's stdout; it must succeed."""
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, list(args), env={"HMC_DB_URL": db_url}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout
