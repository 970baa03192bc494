"""What every command module shares: the one-line error exit.

Below ``cli.py`` and the command modules it registers, so that none of them
imports ``cli.py`` back (no import cycle).
"""

from __future__ import annotations

import typer

__all__ = ["fail"]


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print a one-line error on stderr and return the Exit to raise.

    Parameters
    ----------
    message
        The one line (no ``error:`` prefix).
    code
        Exit status.

    Returns
    -------
    typer.Exit
        To be raised by the caller (``raise fail(...) from None``).

    Examples
    --------
    >>> fail("no such file: x.png").exit_code
    1
    """
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)
