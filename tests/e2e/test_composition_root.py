"""`hmc-broker` is the composition root: the edges' commands are listed without importing them, and running one
loads its module only then."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version

import typer.main
from typer.testing import CliRunner

from broker.cli import EDGES, Commands, LazyCommand, app

EDGE_PACKAGES = ("adapters.harness", "adapters.bench", "adapters.exports", "replay")


def _loaded_after(*statements: str) -> list[str]:
    """The modules of EDGE_PACKAGES that a fresh interpreter holds after running the statements."""
    code = "\n".join(
        [
            "import json, sys",
            *statements,
            f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({EDGE_PACKAGES!r}))))",
        ]
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return list(json.loads(done.stdout.splitlines()[-1]))


def test_the_help_and_the_worker_load_no_edge_package() -> None:
    assert _loaded_after("import broker.cli") == []
    # what `hmc-broker run` imports before it starts the worker
    run = "import broker.cli, broker.bootstrap, broker.observability.http, broker.observability.logs"
    assert _loaded_after(run) == []


def test_the_help_lists_every_edge_command_without_importing_its_module() -> None:
    loaded = _loaded_after(
        "from typer.testing import CliRunner",
        "from broker.cli import app",
        "assert CliRunner().invoke(app, ['--help']).exit_code == 0",
    )
    assert loaded == []


def test_running_an_edge_command_imports_only_its_own_package() -> None:
    loaded = _loaded_after(
        "from typer.testing import CliRunner",
        "from broker.cli import app",
        "assert CliRunner().invoke(app, ['scenarios']).exit_code == 0",
    )
    assert "adapters.harness.cli" in loaded
    assert not [m for m in loaded if m.startswith(("adapters.bench", "replay", "adapters.harness.soak"))]


def test_each_edge_summary_is_its_command_s_own_first_help_line() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, Commands)
    for name, edge in EDGES.items():
        stand_in = group.commands[name]
        assert isinstance(stand_in, LazyCommand)
        real = stand_in.load()
        assert real.name == name
        assert (real.help or "").split("\n\n")[0].replace("\n", " ") == edge.summary, name


def test_each_edge_module_registers_exactly_the_commands_listed_for_it() -> None:
    import importlib

    for module in {edge.module for edge in EDGES.values()}:
        holder = typer.Typer()
        importlib.import_module(module).register(holder)
        registered = set(typer.main.get_group(holder).commands)
        assert registered == {name for name, edge in EDGES.items() if edge.module == module}, module


def test_version_prints_the_installed_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"hmc-broker {version('hmc-broker')}"


def test_a_mistyped_command_is_answered_with_the_closest_edge_command() -> None:
    result = CliRunner().invoke(app, ["messges"])
    assert result.exit_code == 2
    assert "messages" in result.output


def test_the_help_imports_nothing_heavy() -> None:
    """`hmc-broker --help` in well under 0.5 s: no store, XML, AMQP or rich (about 100 ms) for a listing.
    Checked by what is imported, not by a clock, which a loaded machine would make flaky."""
    code = "\n".join(
        [
            "import sys",
            "from broker.cli import main",
            "sys.argv = ['hmc-broker', '--help']",
            "try:",
            "    main()",
            "except SystemExit:",
            "    pass",
            "heavy = ('rich', 'sqlalchemy', 'alembic', 'lxml', 'kombu', 'pika', 'structlog', 'importlib.metadata')",
            "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith(heavy)}), file=sys.stderr)",
        ]
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Commands:" in done.stdout
    assert done.stderr.strip().splitlines()[-1] == "[]", done.stderr
