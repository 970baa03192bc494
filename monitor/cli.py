"""The ``monitor`` command line: thin over the library (parse, call, print).

Every command prints ``error: <one line>`` on stderr and exits 1 when the
library raises :class:`monitor.errors.MonitorError`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from monitor import __version__
from monitor.config import load_settings
from monitor.errors import MonitorError
from monitor.results import Light

app = typer.Typer(
    help="Did the painting's surface move? Compare scans, keep their history, write reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class _WarningLine(logging.Handler):
    """The library's warnings (logger ``monitor``) as ``warning: <one line>`` on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        typer.echo(f"warning: {' '.join(record.getMessage().split())}", err=True)


def _library_warnings_to_stderr() -> None:
    logger = logging.getLogger("monitor")
    if not any(isinstance(h, _WarningLine) for h in logger.handlers):
        logger.addHandler(_WarningLine(logging.WARNING))
        logger.propagate = False


_library_warnings_to_stderr()


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print a one-line error on stderr and return the Exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _progress_printer() -> tuple[object, object]:
    """A rich progress bar on stderr when it is a terminal, else nothing."""
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


@app.command()
def compare(
    scans: Annotated[
        list[str],
        typer.Argument(help="BASELINE CURRENT image files, or one artwork SLUG from the store."),
    ],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output folder (file comparison).")
    ] = None,
    light_azimuth: Annotated[
        float | None,
        typer.Option(help="Where the light came from, degrees: 0 right, 90 top, 180 left "
                     "(default 180, or MONITOR_LIGHT_AZIMUTH)."),
    ] = None,
    light_elevation: Annotated[
        float | None, typer.Option(help="Lamp elevation above the picture plane, degrees.")
    ] = None,
    method: Annotated[
        str | None, typer.Option(help="Change method: photometric, pair (learned) or depth.")
    ] = None,
    depth: Annotated[
        str | None, typer.Option(help="For --method depth: shading, relief or hf:ID.")
    ] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or mps.")] = None,
    px_per_mm: Annotated[
        float | None, typer.Option(help="Baseline pixels per millimetre, for areas in mm^2.")
    ] = None,
    baseline: Annotated[
        str | None, typer.Option(help="Stored scan id to compare from (SLUG mode).")
    ] = None,
    current: Annotated[str | None, typer.Option(help="Stored scan id (SLUG mode).")] = None,
    force: Annotated[bool, typer.Option(help="Recompute even if stored (SLUG mode).")] = False,
    home: Annotated[
        Path | None, typer.Option(envvar="MONITOR_HOME", help="Data home (SLUG mode).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Compare two scans (BASELINE CURRENT --out DIR) or an artwork's last two scans (SLUG)."""
    try:
        settings = load_settings()
        changes = {
            k: v
            for k, v in {
                "method": method, "depth": depth, "device": device,
                "light_azimuth": light_azimuth, "light_elevation": light_elevation,
            }.items()
            if v is not None
        }
        settings = settings.replace(**changes)
        if len(scans) == 1:
            from monitor import cli_history

            raise typer.Exit(cli_history.compare_stored(
                scans[0], baseline, current, force, as_json, home, settings=settings
            ))
        if len(scans) != 2:
            raise MonitorError("give two image files (BASELINE CURRENT) or one artwork slug")
        if out is None:
            raise MonitorError("--out DIR is required when comparing two files")
        from monitor.pipeline import compare as run_compare
        from monitor.pipeline import summary, write_outputs

        for path in scans:
            if not Path(path).exists():
                raise MonitorError(f"no such file: {path}")
        bar, report = _progress_printer()
        light = Light(settings.light_azimuth, settings.light_elevation)
        if bar is not None:
            with bar:  # type: ignore[attr-defined]
                result = run_compare(scans[0], scans[1], settings, light=light,
                                     px_per_mm=px_per_mm, progress=report)  # type: ignore[arg-type]
        else:
            result = run_compare(scans[0], scans[1], settings, light=light, px_per_mm=px_per_mm)
        paths = write_outputs(result, out)
    except MonitorError as exc:
        raise fail(str(exc)) from None
    except (typer.Exit, KeyboardInterrupt):
        raise
    except Exception as exc:  # a bug, not bad input: still one line, unless debugging
        if os.environ.get("MONITOR_DEBUG"):
            raise
        raise fail(f"internal error ({type(exc).__name__}: {exc}); set MONITOR_DEBUG=1 "
                   "for the traceback and please report it") from None
    info = summary(result)
    info["outputs"] = {name: str(p) for name, p in paths.items()}
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    counts = info["counts"]
    typer.echo(
        f"{len(result.regions)} region(s): {counts['bulge']} bulge, "  # type: ignore[index]
        f"{counts['recession']} recession; registration RMSE "  # type: ignore[index]
        f"{result.registration.rmse_px:.2f} px over {result.registration.n_inliers} inliers"
    )
    for r in result.regions:
        typer.echo(
            f"  #{r.id:<3} {r.polarity:<9} at ({r.centroid[0]:.0f}, {r.centroid[1]:.0f}) "
            f"area {r.area_px:.0f} px  peak {r.peak:+.3g}  z {r.significance:.1f}"
        )
    typer.echo(f"outputs in {out}")


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def _register_commands() -> None:
    from monitor import cli_history, cli_inbox, cli_train

    cli_history.register(app)
    cli_inbox.register(app)
    cli_train.register(app)


_register_commands()


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
