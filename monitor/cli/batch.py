"""``monitor batch``: a campaign, the pending comparisons of many artworks fanned out on Dask.

Thin over :func:`monitor.campaign.run_campaign` and
:func:`monitor.campaign.plan_campaign` (see ``docs/campaign.md``).

Exit statuses: 0 every pending comparison done or skipped (or nothing to
do), 1 error (nothing was run: no data home, no scheduler, bad settings),
4 some comparisons failed (each listed with its reason).
"""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Annotated

import typer

from monitor import campaign
from monitor.cli._options import HomeOption, JsonOption, echo_json, handled
from monitor.config import load_settings
from monitor.store import db

__all__ = ["EXIT_FAILED", "batch", "register"]

#: Exit status when some comparisons failed (as ``monitor run``).
EXIT_FAILED = 4


def _line(outcome: campaign.TaskOutcome) -> str:
    t = outcome.task
    what = f"{outcome.status:<7} {t.slug} scan {t.baseline_scan_id} -> {t.current_scan_id}"
    if outcome.status == "done":
        return f"{what}: comparison {outcome.comparison_id} ({outcome.seconds:.1f} s)"
    return f"{what}: {outcome.reason}"


def batch(
    slugs: Annotated[
        list[str] | None,
        typer.Argument(help="Artworks to compare (default: every artwork).", show_default=False),
    ] = None,
    home: HomeOption = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", "-w", min=1,
                     help="Worker processes of the local Dask cluster (default: one per core).",
                     show_default=False),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option("--scheduler", envvar="MONITOR_DASK_SCHEDULER",
                     help="Address of a running Dask scheduler (tcp://host:8786); its workers "
                     "must mount the data home at the same path.", show_default=False),
    ] = None,
    retries: Annotated[
        int, typer.Option(min=0, help="Re-runs of a task that raised (worker loss apart).")
    ] = campaign.DEFAULT_RETRIES,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the pending comparisons; run nothing.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Compare every artwork's scans not compared yet, in parallel on Dask; print a summary."""
    with handled():
        settings = load_settings()
        path = db.resolve_home(home, settings)
        if dry_run:
            tasks, skipped = campaign.plan_campaign(path, settings, slugs or None)
            if as_json:
                echo_json({"pending": [asdict(t) for t in tasks],
                           "skipped": [o.to_dict() for o in skipped]})
            else:
                for t in tasks:
                    typer.echo(f"pending {t.slug} scan {t.baseline_scan_id} -> "
                               f"{t.current_scan_id}")
                typer.echo(f"{len(tasks)} pending, {len(skipped)} skipped")
            return

        def progress(done: int, total: int, outcome: campaign.TaskOutcome) -> None:
            typer.echo(f"[{done}/{total}] {_line(outcome)}", err=True)

        summary = campaign.run_campaign(
            path, settings, slugs or None, workers=workers or os.cpu_count() or 1,
            scheduler=scheduler, retries=retries, progress=progress,
        )
    if as_json:
        echo_json(summary.to_dict())
    else:
        c = summary.counts
        typer.echo(
            f"campaign: {c['done']} done, {c['skipped']} skipped, {c['failed']} failed in "
            f"{summary.wall_s:.1f} s ({summary.comparisons_per_minute:.1f} comparisons/min, "
            f"{summary.workers} worker(s), scheduler {summary.scheduler})"
        )
        for outcome in summary.failures:
            typer.echo(f"  {_line(outcome)}")
    if summary.failures:
        raise typer.Exit(EXIT_FAILED)


def register(app: typer.Typer) -> None:
    """Attach ``batch`` to the main app.

    Parameters
    ----------
    app
        The ``monitor`` Typer app.
    """
    app.command("batch")(batch)
