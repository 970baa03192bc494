"""``monitor serve``: the read-only web viewer of a data home (:mod:`monitor.web`)."""

from __future__ import annotations

from typing import Annotated

import typer

from monitor.cli._options import HomeOption, handled

__all__ = ["register", "serve"]


def serve(
    home: HomeOption = None,
    host: Annotated[
        str, typer.Option(help="Interface to bind (loopback by default).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
) -> None:
    """Serve the read-only web viewer of the history (Ctrl-C stops it).

    Example: monitor serve --home demo_out/home --port 8000
    """
    from monitor.web import serve as serve_app  # uvicorn/starlette only when serving

    with handled():
        serve_app(home, host, port)


def register(app: typer.Typer) -> None:
    """Add ``serve`` to ``app``."""
    app.command()(serve)
