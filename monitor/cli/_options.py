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
import logging
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
    "StrictLightOption",
    "NlOption",
    "TableOption",
    "echo_json",
    "emit_rows",
    "fail",
    "handled",
    "library_warnings_to_stderr",
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
# flags carry metavar="" so that the help shows no "<bool>" value after them
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the result as JSON.", metavar="")
]
CsvOption = Annotated[
    bool, typer.Option("--csv", help="Print CSV, one row per item.", metavar="")
]
NlOption = Annotated[
    bool, typer.Option("--nl", help="Print newline-delimited JSON, one object per row.",
                       metavar="")
]
TableOption = Annotated[
    bool, typer.Option("--table", help="Print a table (the default).", metavar="")
]
LightAzimuthOption = Annotated[
    str | None,
    typer.Option(
        metavar="auto|DEG",
        help="Where the light came from: 'auto' (estimated from the scans, the default, "
        "or MONITOR_LIGHT_AZIMUTH) or degrees in [0, 360): 0 right, 90 top, 180 left, "
        "270 bottom. A given lamp the scans contradict is reported (see --strict-light).",
    ),
]
LightElevationOption = Annotated[
    float | None,
    typer.Option(help="Lamp elevation above the picture plane, degrees in (0, 90) "
                 "(default 30; the scans do not fix it)."),
]
StrictLightOption = Annotated[
    bool,
    typer.Option("--strict-light",
                 help="A given lamp the scans contradict is an error: nothing is written."),
]
DeviceOption = Annotated[str | None, typer.Option(help="auto, cpu, cuda or mps.")]


class _WarningLine(logging.Handler):
    """The library's warnings (logger ``monitor``) as ``warning: <one line>`` on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        typer.echo(f"warning: {' '.join(record.getMessage().split())}", err=True)


def library_warnings_to_stderr() -> None:
    """Show the library's warnings (logger ``monitor``) one line each, ``warning: ...``.

    Decoders' own messages are held back by :mod:`monitor.io` unless
    ``MONITOR_DEBUG`` is set; what reaches the ``monitor`` logger is one line.

    Examples
    --------
    >>> library_warnings_to_stderr()
    """
    logger = logging.getLogger("monitor")
    if not any(isinstance(h, _WarningLine) for h in logger.handlers):
        logger.addHandler(_WarningLine(logging.WARNING))
        logger.propagate = False


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
    except MemoryError:
        if os.environ.get("MONITOR_DEBUG"):
            raise
        raise fail("not enough memory for this work; lower MONITOR_ANALYSIS_MAX_PX or "
                   "MONITOR_MAX_PIXELS, or use a machine with more memory", code) from None
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


def emit_rows(
    rows: list[dict[str, Any]],
    fmt: str,
    *,
    columns: list[str] | None = None,
    title: str | None = None,
    data: object = None,
) -> None:
    """Print a listing in the chosen output format (``json``, ``csv``, ``nl`` or ``table``).

    Parameters
    ----------
    rows
        One flat dict per item (CSV / NL / table rows).
    fmt
        From :func:`output_format`.
    columns
        Column order (default: the first row's keys).
    title
        Title of the table.
    data
        What ``--json`` prints (default: ``rows``).

    Examples
    --------
    >>> emit_rows([{"id": 1, "name": "a"}], "csv")
    id,name
    1,a
    """
    cols = columns or (list(rows[0]) if rows else [])
    if fmt == "json":
        echo_json(rows if data is None else data)
    elif fmt == "nl":
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False, default=str))
    elif fmt == "csv":
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=cols, extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        typer.echo(buffer.getvalue(), nl=False)
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title)
        for col in cols:
            table.add_column(col)
        for row in rows:
            table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in cols))
        Console(soft_wrap=True).print(table)


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
