"""What every command shares: the options, the output helpers and the one error handler.

In the manner of sqlite-utils' ``output_options``: the options a command
offers are declared once here (``--home``, the output format ``--json`` /
``--csv`` / ``--nl`` / ``--table``, the light, the device) and a command
module only names them. Every command runs its library call inside
:func:`handled`, the one error handler: a :class:`~monitor.errors.MonitorError`
prints ``error: <one line>`` on stderr and exits with status 1 (or the
command's own error status); any other exception is a bug and prints one
line too, unless ``MONITOR_DEBUG`` is set.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from monitor.errors import MonitorError

__all__ = [
    "CsvOption",
    "DeviceOption",
    "HomeOption",
    "JsonOption",
    "LightAzimuthOption",
    "LightElevationOption",
    "NlOption",
    "TableOption",
    "echo_json",
    "fail",
    "handled",
    "output_format",
    "progress_printer",
]

HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        envvar="MONITOR_HOME",
        help="Data home (monitor.db + stored files); default ~/.local/share/monitor.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
CsvOption = Annotated[bool, typer.Option("--csv", help="Print one CSV row per comparison.")]
NlOption = Annotated[
    bool, typer.Option("--nl", help="Print newline-delimited JSON, one object per row.")
]
TableOption = Annotated[
    bool, typer.Option("--table", help="Print a table (the default for a terminal).")
]
LightAzimuthOption = Annotated[
    float | None,
    typer.Option(help="Where the light came from, degrees: 0 right, 90 top, 180 left "
                 "(default 180, or MONITOR_LIGHT_AZIMUTH)."),
]
LightElevationOption = Annotated[
    float | None, typer.Option(help="Lamp elevation above the picture plane, degrees.")
]
DeviceOption = Annotated[str | None, typer.Option(help="auto, cpu, cuda or mps.")]


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


@contextmanager
def handled(code: int = 1) -> Iterator[None]:
    """The one error handler of the command line.

    Parameters
    ----------
    code
        Exit status for bad input (a :class:`~monitor.errors.MonitorError`).

    Examples
    --------
    >>> import pytest
    >>> with pytest.raises(typer.Exit):
    ...     with handled():
    ...         raise MonitorError("bad input")
    """
    try:
        yield
    except MonitorError as exc:
        raise fail(str(exc), code) from None
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as exc:  # a bug, not bad input: still one line, unless debugging
        if os.environ.get("MONITOR_DEBUG") or _is_click_exception(exc):
            raise
        raise fail(f"internal error ({type(exc).__name__}: {exc}); set MONITOR_DEBUG=1 "
                   "for the traceback and please report it", code) from None


def _is_click_exception(exc: BaseException) -> bool:
    import click

    return isinstance(exc, click.exceptions.ClickException | click.exceptions.Exit)


def echo_json(data: object) -> None:
    """Print ``data`` as indented JSON (UTF-8 kept).

    Examples
    --------
    >>> echo_json({"a": 1})
    {
      "a": 1
    }
    """
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def output_format(*, json: bool = False, csv: bool = False, nl: bool = False,  # noqa: A002
                  table: bool = False, default: str = "table") -> str:
    """The one output format chosen by the flags (at most one), else ``default``.

    Raises
    ------
    MonitorError
        When more than one is given.

    Examples
    --------
    >>> output_format(csv=True)
    'csv'
    """
    chosen = [name for name, on in (("json", json), ("csv", csv), ("nl", nl),
                                    ("table", table)) if on]
    if len(chosen) > 1:
        raise MonitorError("choose one of " + " and ".join(f"--{c}" for c in chosen))
    return chosen[0] if chosen else default


def progress_printer() -> tuple[Any, Callable[[str, float], None] | None]:
    """A rich progress bar on stderr when it is a terminal, else ``(None, None)``."""
    if not sys.stderr.isatty():
        return None, None
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("{task.description:<10}"), BarColumn(), TimeElapsedColumn(), transient=True
    )
    task = bar.add_task("compare", total=1.0)

    def report(stage: str, fraction: float) -> None:
        bar.update(task, description=stage, completed=fraction)

    return bar, report
