"""The ``monitor`` command line: thin over the library (parse, call one function, print).

One module per command group, each with a ``register(app)``:

- :mod:`monitor.cli.compare` -- ``compare`` (two files, or an artwork SLUG);
- :mod:`monitor.cli.history` -- ``init``, ``db``, ``artwork``, ``ingest``,
  ``history``, ``report``, ``verify``, ``gc``;
- :mod:`monitor.cli.inbox` -- ``run``, ``schedule``;
- :mod:`monitor.cli.train` -- ``train``;
- :mod:`monitor.cli.serve` -- ``serve`` (the web viewer).

:mod:`monitor.cli._options` holds the shared options (home, output format,
light, device) and the one error handler: every command prints
``error: <one line>`` on stderr and exits non-zero when the library raises
:class:`monitor.errors.MonitorError`. The console script is
``monitor = "monitor.cli:app"``; ``python -m monitor.cli`` works too.
"""

from __future__ import annotations

import typer

from monitor import __version__
from monitor.cli import history, inbox, serve, train
from monitor.cli._options import fail
from monitor.cli.compare import compare

__all__ = ["app", "compare", "fail", "main"]

app = typer.Typer(
    help="Did the painting's surface move? Compare scans, keep their history, write reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(compare)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


history.register(app)
inbox.register(app)
train.register(app)
serve.register(app)


def main() -> None:  # pragma: no cover - console entry
    """Run the command line."""
    app()
