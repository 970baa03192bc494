"""Commands of the artwork history: init, db, artwork, ingest, history, report, verify, gc.

Thin over :mod:`monitor.store` and :mod:`monitor.report.render`: parse,
call one library function, print (``--json`` / ``--csv`` where output is
data). :func:`register` attaches the commands to the main Typer app;
``monitor compare SLUG`` (one argument) lives in :mod:`monitor.cli.compare`.

Every command takes ``--home`` (env ``MONITOR_HOME``, default
``Settings.home`` = ``~/.local/share/monitor``) and prints
``error: <one line>`` on stderr with exit status 1 on a
:class:`~monitor.errors.MonitorError`.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from monitor.cli._options import (
    CsvOption,
    HomeOption,
    JsonOption,
    NlOption,
    TableOption,
    echo_json,
    handled,
    output_format,
)
from monitor.config import Settings, load_settings
from monitor.errors import MonitorError
from monitor.store import db, repository


def _settings_and_home(home: Path | None) -> tuple[Settings, Path]:
    settings = load_settings()
    return settings, db.resolve_home(home, settings)


def _open(home: Path | None) -> tuple[Settings, db.Store]:
    settings, path = _settings_and_home(home)
    return settings, db.open_store(path, settings)


# --------------------------------------------------------------------------- init / db


def init(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Create the data home and its database (runs the migrations up to head)."""
    with handled():
        settings, path = _settings_and_home(home)
        store = db.init_home(path, settings)
        revision = db.current_revision(store.engine)
        store.engine.dispose()
    info = {"home": str(path), "database": _display_url(path, settings), "revision": revision}
    if as_json:
        echo_json(info)
    else:
        typer.echo(f"data home {path} ready (database revision {revision})")


def _display_url(home: Path, settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(db.database_url(home, settings)).render_as_string(hide_password=True)


def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Migrate the database up (default: to the newest revision)."""
    with handled():
        settings, path = _settings_and_home(home)
        if db.database_url(path, settings).startswith("sqlite") and not path.is_dir():
            raise MonitorError(f"no data home at {path}; run 'monitor init --home {path}'")
        now = db.upgrade(db.database_url(path, settings), revision)
    _print_revision(now, as_json)


def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision: an id, -1, or base.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Migrate the database down (base drops every table: all data is lost)."""
    with handled():
        settings, path = _settings_and_home(home)
        if db.database_url(path, settings).startswith("sqlite") and not path.is_dir():
            raise MonitorError(f"no data home at {path}")
        now = db.downgrade(db.database_url(path, settings), revision)
    _print_revision(now, as_json)


def db_current(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Print the database's revision and the newest one this version knows."""
    with handled():
        settings, path = _settings_and_home(home)
        engine = db.make_engine(db.database_url(path, settings))
        try:
            now = db.current_revision(engine)
        finally:
            engine.dispose()
        head = db.head_revision()
    if as_json:
        echo_json({"revision": now, "head": head})
    else:
        typer.echo(f"database revision {now or 'empty'}; newest {head}")


def _print_revision(revision: str | None, as_json: bool) -> None:
    if as_json:
        echo_json({"revision": revision})
    else:
        typer.echo(f"database at revision {revision or 'base (empty)'}")


# --------------------------------------------------------------------------- artworks


def artwork_add(
    slug: Annotated[str, typer.Argument(help="Stable id: lowercase letters, digits, - and _.")],
    title: Annotated[str, typer.Option(help="Title of the work.")],
    artist: Annotated[str | None, typer.Option(help="Artist.")] = None,
    date: Annotated[str | None, typer.Option(help="Date of the work (free text).")] = None,
    medium: Annotated[str | None, typer.Option(help="Medium and support.")] = None,
    width_mm: Annotated[float | None, typer.Option(help="Width in millimetres.")] = None,
    height_mm: Annotated[float | None, typer.Option(help="Height in millimetres.")] = None,
    location: Annotated[str | None, typer.Option(help="Where the work is kept.")] = None,
    notes: Annotated[str | None, typer.Option(help="Free notes.")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register an artwork."""
    with handled():
        _settings, store = _open(home)
        info = repository.add_artwork(
            store,
            slug,
            title,
            artist=artist,
            date=date,
            medium=medium,
            width_mm=width_mm,
            height_mm=height_mm,
            location=location,
            notes=notes,
        )
    if as_json:
        echo_json(info.to_dict())
    else:
        typer.echo(f"added artwork {info.slug}: {info.title}")


def artwork_list(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """List the artworks."""
    with handled():
        _settings, store = _open(home)
        artworks = repository.list_artworks(store)
    if as_json:
        echo_json([a.to_dict() for a in artworks])
        return
    for art in artworks:
        typer.echo(f"{art.slug}\t{art.title}" + (f"\t{art.artist}" if art.artist else ""))


# --------------------------------------------------------------------------- ingest


def ingest(
    slug: Annotated[str, typer.Argument(help="Artwork id.")],
    image: Annotated[Path, typer.Argument(help="Image file (PNG, JPEG, TIFF).")],
    captured_at: Annotated[
        str | None,
        typer.Option(help="ISO 8601 capture time (default: EXIF, else now); naive = UTC."),
    ] = None,
    px_per_mm: Annotated[float | None, typer.Option(help="Pixels per millimetre.")] = None,
    light_azimuth: Annotated[
        float | None,
        typer.Option(help="Where the light came from, degrees: 0 right, 90 top, 180 left."),
    ] = None,
    light_elevation: Annotated[
        float | None, typer.Option(help="Lamp elevation above the picture plane, degrees.")
    ] = None,
    camera: Annotated[str | None, typer.Option(help="Camera and lens.")] = None,
    operator: Annotated[str | None, typer.Option(help="Who took the scan.")] = None,
    notes: Annotated[str | None, typer.Option(help="Free notes.")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Store a scan of an artwork (the same image twice is stored once)."""
    with handled():
        settings, store = _open(home)
        meta = repository.ScanMeta(
            captured_at=None if captured_at is None else repository.parse_time(captured_at),
            px_per_mm=px_per_mm,
            light_azimuth=light_azimuth,
            light_elevation=light_elevation,
            camera=camera,
            operator=operator,
            notes=notes,
        )
        from monitor.io import read_image

        result = repository.ingest_scan(
            store,
            slug,
            image,
            meta,
            reader=lambda p: read_image(p, max_pixels=settings.max_pixels),
        )
    if as_json:
        echo_json(
            {
                "scan": result.scan.to_dict(),
                "created": result.created,
                "file_stored": result.file_stored,
                "captured_at_source": result.captured_at_source,
            }
        )
        return
    scan = result.scan
    what = "stored" if result.created else "already stored as"
    typer.echo(
        f"{what} scan {scan.id} of {slug}: {scan.width}x{scan.height} px, captured "
        f"{scan.captured_at.isoformat()} ({result.captured_at_source}), sha256 {scan.sha256[:12]}"
    )


# --------------------------------------------------------------------------- compare


# --------------------------------------------------------------------------- history


def history(
    slug: Annotated[str, typer.Argument(help="Artwork id.")],
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
    as_nl: NlOption = False,
    as_table: TableOption = False,
    home: HomeOption = None,
) -> None:
    """Every comparison of an artwork in time order, with region counts and the trend."""
    with handled():
        fmt = output_format(json=as_json, csv=as_csv, nl=as_nl, table=as_table)
        _settings, store = _open(home)
        hist = repository.history(store, slug)
    if fmt == "json":
        echo_json(hist.to_dict())
        return
    if fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(repository.HISTORY_CSV_COLUMNS))
        writer.writeheader()
        writer.writerows(repository.history_rows(hist))
        return
    if fmt == "nl":
        for row in repository.history_rows(hist):
            typer.echo(json.dumps(row, ensure_ascii=False, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{hist.artwork.title} ({hist.artwork.slug})")
    for column in ("#", "baseline", "current", "bulges", "recessions", "largest bulge",
                   "largest recession", "changed area"):
        table.add_column(column)
    for e in hist.entries:
        table.add_row(
            str(e.comparison_id),
            e.baseline_captured_at.date().isoformat(),
            e.current_captured_at.date().isoformat(),
            str(e.n_bulge),
            str(e.n_recession),
            _largest_text(e.largest_bulge),
            _largest_text(e.largest_recession),
            f"{e.changed_area_mm2:.3g} mm2"
            if e.changed_area_mm2 is not None
            else f"{e.changed_area_px:.0f} px",
        )
    console = Console(soft_wrap=True)
    console.print(table)
    console.print(f"trend of the changed area: {hist.trend}")


def _largest_text(summary: repository.RegionSummary | None) -> str:
    if summary is None:
        return "-"
    if summary.area_mm2 is not None:
        area = f"{summary.area_mm2:.3g} mm2"
    else:
        area = f"{summary.area_px:.0f} px"
    return f"#{summary.number} peak {summary.peak:+.3g}, {area}"


# --------------------------------------------------------------------------- report


def report(
    target: Annotated[str, typer.Argument(help="Comparison id, or an artwork SLUG with --latest.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="PDF file to write.")],
    latest: Annotated[
        bool, typer.Option("--latest", help="TARGET is a slug: report its latest comparison.")
    ] = False,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write the PDF condition report of a comparison."""
    with handled():
        _settings, store = _open(home)
        if latest:
            comparison_id = repository.latest_comparison_id(store, repository.validate_slug(target))
        elif target.isdigit():
            comparison_id = int(target)
        else:
            raise MonitorError(
                f"{target!r} is not a comparison id; for an artwork use SLUG --latest"
            )
        from monitor.report.render import write_report

        rendered = write_report(store, comparison_id, output)
    if as_json:
        echo_json(
            {
                "comparison_id": comparison_id,
                "path": str(rendered.path),
                "pages": rendered.pages,
                "refused_resources": list(rendered.refused),
            }
        )
    else:
        typer.echo(f"wrote {rendered.path} ({rendered.pages} pages) for comparison {comparison_id}")


# --------------------------------------------------------------------------- verify / gc


def verify(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Check that every stored row still has its file with the bytes it was stored with."""
    with handled():
        _settings, store = _open(home)
        result = repository.verify_store(store)
    if as_json:
        echo_json(result.to_dict())
    else:
        for problem in result.problems:
            typer.echo(problem.line())
        typer.echo(result.summary())
    if not result.ok:
        raise typer.Exit(1)


def gc(
    min_age_s: Annotated[
        float, typer.Option(help="Leave files modified less than this many seconds ago.")
    ] = 3600.0,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Remove stored files no row refers to, and stale temporary files."""
    with handled():
        if min_age_s < 0:
            raise MonitorError("--min-age-s must not be negative")
        _settings, store = _open(home)
        removed = repository.collect_garbage(store, min_age_s=min_age_s)
    if as_json:
        echo_json({"removed": removed})
    else:
        for rel in removed:
            typer.echo(f"removed {rel}")
        typer.echo(f"removed {len(removed)} file(s)")


# --------------------------------------------------------------------------- wiring


def register(app: typer.Typer) -> None:
    """Attach the history commands to the main app.

    Parameters
    ----------
    app
        The ``monitor`` Typer app (``compare`` stays the app's own command and
        dispatches to :func:`compare_stored` for a single SLUG argument).
    """
    artwork_app = typer.Typer(help="Artworks in the store.", no_args_is_help=True)
    artwork_app.command("add")(artwork_add)
    artwork_app.command("list")(artwork_list)
    db_app = typer.Typer(help="Database schema migrations (Alembic).", no_args_is_help=True)
    db_app.command("upgrade")(db_upgrade)
    # ignore_unknown_options lets a relative revision such as -1 through as an argument
    db_app.command("downgrade", context_settings={"ignore_unknown_options": True})(db_downgrade)
    db_app.command("current")(db_current)
    app.command("init")(init)
    app.command("ingest")(ingest)
    app.command("history")(history)
    app.command("report")(report)
    app.command("verify")(verify)
    app.command("gc")(gc)
    app.add_typer(artwork_app, name="artwork")
    app.add_typer(db_app, name="db")
