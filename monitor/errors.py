"""The one exception type the library raises for bad input or impossible work."""

from __future__ import annotations


class MonitorError(Exception):
    """A problem a user can act on, described in one line.

    Every stage raises this (never a bare ``ValueError`` from deep inside) when
    its input is wrong or the work cannot be done. The CLI prints
    ``error: <message>`` on stderr and exits non-zero.
    """

    def __init__(self, message: str) -> None:
        one_line = " ".join(str(message).split())
        super().__init__(one_line)


class MonitorWarning(UserWarning):
    """Something the user should know about a result that is still produced.

    Raised through :func:`warnings.warn` (a default processor stood in for a
    missing one, a setting was reduced to what the data support, ...); the
    same sentence is recorded with the result where one is written.
    """
