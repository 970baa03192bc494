"""Commands of scheduled runs: ``monitor run`` (one pass over the inbox) and ``monitor schedule``.

Thin over :mod:`monitor.inbox`. :func:`register` attaches the commands to
the main Typer app. See ``docs/inbox.md`` for the inbox layout.

Exit statuses of ``monitor run``: 0 all done, 1 error (nothing was done:
no data home, no inbox, bad settings), 3 nothing to do, 4 some files failed
(quarantined, or left in the inbox to retry), 75 another run holds the lock.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from monitor import inbox as lib
from monitor.cli._options import HomeOption, JsonOption, echo_json, handled
from monitor.config import load_settings
from monitor.store import db

InboxOption = Annotated[
    Path | None,
    typer.Option("--inbox", help="Inbox folder (default MONITOR_INBOX, else <home>/inbox).",
                 show_default=False),
]
ReportsOption = Annotated[
    Path | None,
    typer.Option("--reports", help="Folder of the PDF reports (default MONITOR_REPORTS, else "
                 "<home>/reports).", show_default=False),
]


def _progress_bar() -> tuple[object | None, lib.Progress | None]:
    """A rich progress bar on stderr when it is a terminal, else nothing."""
    if not sys.stderr.isatty():
        return None, None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    bar = Progress(
        TextColumn("inbox"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.description}"), console=Console(stderr=True), transient=True,
    )
    task = bar.add_task("", total=None)

    def report(done: int, total: int, label: str) -> None:
        bar.update(task, completed=done, total=total, description=label)

    return bar, report


def _print_text(summary: lib.RunSummary) -> None:
    if summary.busy:
        typer.echo(f"another run holds the lock of {summary.home}; nothing done")
        return
    for item in summary.items:
        line = f"{item.outcome:<16} {item.file}"
        if item.comparison_id is not None:
            line += (f"  comparison {item.comparison_id}: {item.regions} region(s), "
                     f"max z {item.max_significance or 0:.1f}")
        if item.report:
            line += f"  report {item.report}"
        if item.reason:
            line += f"  ({item.reason})"
        typer.echo(line)
    for rel in summary.waiting:
        typer.echo(f"{'waiting':<16} {rel}  (modified recently; next run)")
    counts = ", ".join(f"{n} {k}" for k, n in sorted(summary.counts.items())) or "no files"
    typer.echo(f"{summary.status}: {counts} in {summary.seconds:.1f} s")


def run(
    inbox: InboxOption = None,
    reports: ReportsOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show what would be done.")
    ] = False,
    as_json: JsonOption = False,
    wait: Annotated[
        bool,
        typer.Option("--wait/--no-wait",
                     help="When another run holds the lock: wait for it (up to --wait-timeout) "
                     "or exit at once with status 75."),
    ] = False,
    wait_timeout: Annotated[
        float | None,
        typer.Option(help="Seconds to wait with --wait (default MONITOR_LOCK_WAIT_S, 300)."),
    ] = None,
    home: HomeOption = None,
) -> None:
    """One pass over the inbox: ingest new scans, compare, write reports, file them away.

    Exit status: 0 all done, 3 nothing to do, 4 some files failed (quarantined
    or left to retry), 75 another run holds the lock, 1 error.
    """
    bar = None
    with handled(lib.EXIT_ERROR):
        settings = load_settings()
        path = db.resolve_home(home, settings)
        wait_s = 0.0
        if wait:
            wait_s = settings.lock_wait_s if wait_timeout is None else wait_timeout
        progress = None
        if not as_json and not dry_run:
            bar, progress = _progress_bar()
        if bar is not None:
            bar.start()  # type: ignore[attr-defined]
        try:
            summary = lib.run_inbox(path, settings, inbox=inbox, reports=reports,
                                    dry_run=dry_run, wait_s=wait_s, progress=progress)
        finally:
            if bar is not None:
                bar.stop()  # type: ignore[attr-defined]
    if as_json:
        echo_json(summary.to_dict())
    else:
        _print_text(summary)
    raise typer.Exit(summary.exit_code)


def schedule_print(
    every: Annotated[
        str, typer.Option(help="How often: Nm (N divides 60), Nh (N divides 24), 1d or 1w.")
    ] = "1d",
    at: Annotated[str, typer.Option(help="Time of day HH:MM for 1d / 1w.")] = "02:30",
    name: Annotated[str, typer.Option(help="Name of the systemd units.")] = "monitor-inbox",
    inbox: InboxOption = None,
    reports: ReportsOption = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print a systemd service + timer and a crontab line that run 'monitor run'."""
    with handled(lib.EXIT_ERROR):
        settings = load_settings()
        path = db.resolve_home(home, settings)
        inbox_path, reports_path = lib.resolve_paths(path, settings, inbox, reports)
        schedule = lib.schedule_files(
            every, home=path, inbox=inbox_path, reports=reports_path, at=at, name=name,
            config=lib.config_in_use(),
        )
    if not inbox_path.is_dir():
        typer.echo(f"note: the inbox {inbox_path} does not exist yet; create it", err=True)
    if as_json:
        echo_json(schedule.to_dict())
        return
    typer.echo(f"# ---- {name}.service")
    typer.echo(schedule.service)
    typer.echo(f"# ---- {name}.timer")
    typer.echo(schedule.timer)
    typer.echo("# ---- or one crontab line (crontab -e)")
    typer.echo(schedule.crontab, nl=False)


def register(app: typer.Typer) -> None:
    """Attach ``run`` and ``schedule print`` to the main app.

    Parameters
    ----------
    app
        The ``monitor`` Typer app.
    """
    schedule_app = typer.Typer(help="Run 'monitor run' on a timer.", no_args_is_help=True)
    schedule_app.command("print")(schedule_print)
    app.command("run")(run)
    app.add_typer(schedule_app, name="schedule")
