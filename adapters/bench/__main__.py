"""`python -m adapters.bench bench ...`: the bench command without the rest of `hmc-broker`."""

import typer

from adapters.bench.cli import register

app = typer.Typer(no_args_is_help=True)


@app.callback()
def main() -> None:
    """HMC Broker benchmark."""


register(app)

if __name__ == "__main__":
    app()
