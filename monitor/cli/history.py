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
    emit_rows,
    handled,
    output_format,
)
from monitor.config import Settings, load_settings
from monitor.errors import MonitorError
from monitor.store import db, repository

AccessionOption = Annotated[str | None, typer.Option(help="Accession (inventory) number.")]
OwnerOption = Annotated[str | None, typer.Option(help="Owner or lender.")]
VenueOption = Annotated[str | None, typer.Option(help="Venue of the loan or display.")]
ExhibitionOption = Annotated[str | None, typer.Option(help="Exhibition.")]
FrameOption = Annotated[str | None, typer.Option(help="Frame (description, condition).")]
GlazingOption = Annotated[str | None, typer.Option(help="Glazing (none, glass, acrylic...).")]


def _settings_and_home(home: Path | None) -> tuple[Settings, Path]:
    settings = load_settings()
    return settings, db.resolve_home(home, settings)


def _open(home: Path | None) -> tuple[Settings, db.Store]:
    settings, path = _settings_and_home(home)
    return settings, db.open_store(path, settings)


# --------------------------------------------------------------------------- init / db


def init(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Create the data home and its database (runs the migrations up to head).

    Example: monitor init --home ~/conservation/monitor
    """
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
    """Migrate the database up (default: to the newest revision).

    Example: monitor db upgrade
    """
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
    """Migrate the database down (base drops every table: all data is lost).

    Example: monitor db downgrade -1
    """
    with handled():
        settings, path = _settings_and_home(home)
        if db.database_url(path, settings).startswith("sqlite") and not path.is_dir():
            raise MonitorError(f"no data home at {path}")
        now = db.downgrade(db.database_url(path, settings), revision)
    _print_revision(now, as_json)


def db_current(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Print the database's revision and the newest one this version knows.

    Example: monitor db current --json
    """
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
    accession_number: AccessionOption = None,
    owner: OwnerOption = None,
    venue: VenueOption = None,
    exhibition: ExhibitionOption = None,
    frame: FrameOption = None,
    glazing: GlazingOption = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register an artwork.

    Example: monitor artwork add night-watch --title "The Night Watch" --artist Rembrandt
    --width-mm 4370 --height-mm 3630 --accession-number SK-C-5 --owner "City of Amsterdam"
    """
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
            **_loan(accession_number, owner, venue, exhibition, frame, glazing),
        )
    if as_json:
        echo_json(info.to_dict())
    else:
        typer.echo(f"added artwork {info.slug}: {info.title}")


def _loan(*values: str | None) -> dict[str, str | None]:
    return dict(zip(repository.LOAN_FIELDS, values, strict=True))


def artwork_edit(
    slug: Annotated[str, typer.Argument(help="Artwork id.")],
    title: Annotated[str | None, typer.Option(help="Title of the work.")] = None,
    artist: Annotated[str | None, typer.Option(help="Artist.")] = None,
    date: Annotated[str | None, typer.Option(help="Date of the work (free text).")] = None,
    medium: Annotated[str | None, typer.Option(help="Medium and support.")] = None,
    width_mm: Annotated[float | None, typer.Option(help="Width in millimetres.")] = None,
    height_mm: Annotated[float | None, typer.Option(help="Height in millimetres.")] = None,
    location: Annotated[str | None, typer.Option(help="Where the work is kept.")] = None,
    notes: Annotated[str | None, typer.Option(help="Free notes.")] = None,
    accession_number: AccessionOption = None,
    owner: OwnerOption = None,
    venue: VenueOption = None,
    exhibition: ExhibitionOption = None,
    frame: FrameOption = None,
    glazing: GlazingOption = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change an artwork's identification or loan fields (others are kept; "" clears one).

    Example: monitor artwork edit night-watch --venue "Rijksmuseum, Gallery of Honour"
    --exhibition "Operation Night Watch" --glazing "none"
    """
    with handled():
        _settings, store = _open(home)
        info = repository.update_artwork(
            store, slug, title=title, artist=artist, date=date, medium=medium,
            width_mm=width_mm, height_mm=height_mm, location=location, notes=notes,
            **_loan(accession_number, owner, venue, exhibition, frame, glazing),
        )
    if as_json:
        echo_json(info.to_dict())
    else:
        typer.echo(f"updated artwork {info.slug}: {info.title}")


def artwork_list(
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
    as_nl: NlOption = False,
    as_table: TableOption = False,
    home: HomeOption = None,
) -> None:
    """List the artworks.

    Example: monitor artwork list --csv > artworks.csv
    """
    with handled():
        fmt = output_format(json=as_json, csv=as_csv, nl=as_nl, table=as_table)
        _settings, store = _open(home)
        artworks = repository.list_artworks(store)
    emit_rows([a.to_dict() for a in artworks], fmt, title="Artworks",
              columns=list(repository.ArtworkInfo.__dataclass_fields__))


def artwork_show(
    slug: Annotated[str, typer.Argument(help="Artwork id.")],
    as_json: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """Show one artwork: identification, loan fields, its scans and its history in words.

    Example: monitor artwork show night-watch --json
    """
    with handled():
        _settings, store = _open(home)
        info = repository.get_artwork(store, slug)
        scans = repository.list_scans(store, slug)
        hist = repository.history(store, slug)
    if as_json:
        echo_json({"artwork": info.to_dict(), "scans": [s.to_dict() for s in scans],
                   "history": hist.summary, "comparisons": len(hist.entries)})
        return
    for key, value in info.to_dict().items():
        if value not in (None, ""):
            typer.echo(f"{key.replace('_', ' '):>17}: {value}")
    typer.echo(f"{'scans':>17}: {len(scans)}"
               + (f" ({scans[0].captured_at:%Y-%m-%d} to {scans[-1].captured_at:%Y-%m-%d})"
                  if scans else ""))
    typer.echo(f"{'history':>17}: {hist.summary} ({len(hist.entries)} comparison(s))")


def _scan_row(scan: repository.ScanInfo) -> dict[str, object]:
    return {
        "id": scan.id,
        "captured_at": scan.captured_at.isoformat(),
        "width": scan.width,
        "height": scan.height,
        "px_per_mm": scan.px_per_mm,
        "width_mm": None if not scan.px_per_mm else round(scan.width / scan.px_per_mm, 1),
        "height_mm": None if not scan.px_per_mm else round(scan.height / scan.px_per_mm, 1),
        "light_azimuth": scan.light_azimuth,
        "light_elevation": scan.light_elevation,
        "camera": scan.camera,
        "operator": scan.operator,
        "original_name": scan.original_name,
        "sha256": scan.sha256,
    }


def scans(
    slug: Annotated[str, typer.Argument(help="Artwork id.")],
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
    as_nl: NlOption = False,
    as_table: TableOption = False,
    home: HomeOption = None,
) -> None:
    """List an artwork's scans in capture order, with the ids --baseline/--current take.

    Example: monitor scans night-watch; then monitor compare night-watch --baseline 1 --current 3
    """
    with handled():
        fmt = output_format(json=as_json, csv=as_csv, nl=as_nl, table=as_table)
        _settings, store = _open(home)
        found = repository.list_scans(store, slug)
    rows = [_scan_row(s) for s in found]
    columns = None if fmt != "table" else ["id", "captured_at", "width", "height", "px_per_mm",
                                           "light_azimuth", "light_elevation", "original_name"]
    emit_rows(rows, fmt, columns=columns, title=f"Scans of {slug}")


def artwork_scans(
    slug: Annotated[str, typer.Argument(help="Artwork id.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """List an artwork's scans, oldest first (a multi-light scan shows its lamps)."""
    with handled():
        _settings, store = _open(home)
        scans = repository.list_scans(store, slug)
    if as_json:
        echo_json([s.to_dict() for s in scans])
        return
    for s in scans:
        kind = f"multi-light, {s.n_lights} lamps" if s.n_lights else "photo"
        typer.echo(f"{s.id}	{s.captured_at.isoformat()}	{s.width}x{s.height}	{kind}	"
                   f"{s.original_name or ''}")


# --------------------------------------------------------------------------- ingest


def ingest(
    slug: Annotated[str, typer.Argument(help="Artwork id.")],
    image: Annotated[
        Path, typer.Argument(help="Image file (PNG, JPEG, TIFF), or a multi-light capture "
                             "folder / .lp / .csv light file.")
    ],
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
    """Store a scan of an artwork (the same image twice is stored once).

    Example: monitor ingest night-watch scan-2024-07.tif --captured-at 2024-07-10
    --px-per-mm 4 --light-azimuth 180 --light-elevation 25
    """
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
        from monitor.capture import is_capture
        from monitor.io import read_scan

        if is_capture(image):  # a multi-light capture: folder, .lp or .csv
            result = repository.ingest_capture(store, slug, image, meta)
        else:
            result = repository.ingest_scan(
                store,
                slug,
                image,
                meta,
                reader=lambda p: read_scan(p, max_pixels=settings.max_pixels),
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
        f"{what} scan {scan.id} of {slug}: {scan.width}x{scan.height} px"
        f"{f', {scan.n_lights} lamps' if scan.n_lights else ''}, captured "
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
    """Every comparison of an artwork in time order, read in plain words.

    Each comparison is read within its series (since the first scan, or scan to
    scan): e.g. "stable since the last scan", "growing: +120 mm² in 6 months".

    Example: monitor history night-watch --csv > history.csv
    """
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
    for column in ("#", "baseline", "current", "series", "bulges", "recessions", "colour",
                   "largest bulge", "largest recession", "changed area", "reading"):
        table.add_column(column)
    for e in hist.entries:
        table.add_row(
            str(e.comparison_id),
            e.baseline_captured_at.date().isoformat(),
            e.current_captured_at.date().isoformat(),
            e.series,
            str(e.n_bulge),
            str(e.n_recession),
            str(e.n_appearance),
            _largest_text(e.largest_bulge),
            _largest_text(e.largest_recession),
            f"{e.changed_area_mm2:.3g} mm²"
            if e.changed_area_mm2 is not None
            else f"{e.changed_area_px:.0f} px²",
            e.wording,
        )
    console = Console(soft_wrap=True)
    console.print(table)
    console.print(f"the work: {hist.summary}")
    followed: dict[int, list[repository.TrackPoint]] = {}
    for point in hist.tracks:
        followed.setdefault(point.track, []).append(point)
    for number, points in sorted(followed.items()):
        if len(points) < 2:
            continue
        sizes = " -> ".join(
            (f"{p.area_mm2:.3g} mm²" if p.area_mm2 is not None else f"{p.area_px:.0f} px²")
            + f" ({p.captured_at:%Y-%m-%d})" for p in points
        )
        console.print(f"region R{number} ({points[0].polarity}), seen {len(points)} times: {sizes}")


def _largest_text(summary: repository.RegionSummary | None) -> str:
    if summary is None:
        return "-"
    if summary.area_mm2 is not None:
        area = f"{summary.area_mm2:.3g} mm²"
    else:
        area = f"{summary.area_px:.0f} px²"
    peak = (f"{summary.peak_mm:+.2g} mm" if summary.peak_mm is not None
            else f"{summary.peak:+.3g}")
    return f"#{summary.number} peak {peak}, {area}"


# --------------------------------------------------------------------------- report


def report(
    target: Annotated[str, typer.Argument(help="Comparison id, or an artwork SLUG with --latest.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="PDF file to write.")],
    latest: Annotated[
        bool, typer.Option("--latest", help="TARGET is a slug: report its latest comparison.",
                           metavar="")
    ] = False,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write the PDF condition report of a comparison (a loan condition report).

    Record the examiner's words first with 'monitor comparison annotate'.

    Example: monitor report night-watch --latest -o night-watch-2024.pdf
    """
    with handled():
        _settings, store = _open(home)
        if latest:
            comparison_id = repository.latest_comparison_id(store, repository.validate_slug(target))
        elif not target.isdigit() and _is_slug(target):
            raise MonitorError(
                f"{target!r} is not a comparison id; for an artwork's latest use "
                f"'monitor report {target} --latest -o FILE.pdf'"
            )
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


def _is_slug(text: str) -> bool:
    return repository.SLUG_PATTERN.fullmatch(text) is not None


# --------------------------------------------------------------------------- comparisons


def comparison_annotate(
    comparison_id: Annotated[int, typer.Argument(help="Comparison id (see 'monitor history').")],
    examiner: Annotated[str | None, typer.Option(help="Who examined the work.")] = None,
    examined_at: Annotated[
        str | None, typer.Option("--date", help="Date of the examination, YYYY-MM-DD "
                                 "(default in the report: the current scan's date).")
    ] = None,
    conditions: Annotated[
        str | None, typer.Option(help="Examination conditions (room, light, RH/temperature).")
    ] = None,
    condition: Annotated[
        str | None, typer.Option(help="Overall condition statement, in the examiner's words.")
    ] = None,
    recommendations: Annotated[
        str | None, typer.Option(help="Recommendations (handling, display, treatment).")
    ] = None,
    outline: Annotated[
        str | None, typer.Option(help="The work's edges in the baseline, X0,Y0,X1,Y1 in "
                                 "baseline pixels (default: found in the baseline).")
    ] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record the examiner's words on a comparison; the PDF report prints them.

    Fields not given are kept; an empty string clears one.

    Example: monitor comparison annotate 3 --examiner "A. Registrar" --date 2024-07-12
    --condition "Stable; slight cupping lower left" --recommendations "No travel restrictions"
    """
    with handled():
        _settings, store = _open(home)
        box = None
        if outline is not None:
            try:
                x0, y0, x1, y1 = (float(v) for v in outline.split(","))
            except ValueError:
                raise MonitorError(f"--outline needs X0,Y0,X1,Y1, got {outline!r}") from None
            box = (x0, y0, x1, y1)
        note = repository.annotate_comparison(
            store, comparison_id, examiner=examiner, examined_at=examined_at,
            conditions=conditions, condition=condition, recommendations=recommendations,
            outline=box,
        )
    if as_json:
        echo_json({"comparison_id": comparison_id, **note.to_dict()})
    else:
        typer.echo(f"annotated comparison {comparison_id}"
                   + (f" (examiner {note.examiner})" if note.examiner else ""))


def comparison_show(
    comparison_id: Annotated[int, typer.Argument(help="Comparison id.")],
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
    as_nl: NlOption = False,
    as_table: TableOption = False,
    home: HomeOption = None,
) -> None:
    """List a comparison's findings: relief regions and colour changes, in mm when known.

    Example: monitor comparison show 3 --csv
    """
    with handled():
        fmt = output_format(json=as_json, csv=as_csv, nl=as_nl, table=as_table)
        _settings, store = _open(home)
        detail = repository.comparison_detail(store, comparison_id)
    in_px = detail.method in ("photometric", "pair")
    rows: list[dict[str, object]] = []
    for r in detail.regions:
        d = r.to_dict(detail.px_per_mm, height_in_px=in_px)
        rows.append({"finding": str(r.id), "kind": r.polarity, "centroid_mm": d["centroid_mm"],
                     "centroid": d["centroid"], "area_mm2": d["area_mm2"], "area_px": r.area_px,
                     "peak_mm": d["peak_mm"], "peak": r.peak, "delta_e": None})
    for a in detail.appearance:
        d = a.to_dict(detail.px_per_mm)
        rows.append({"finding": f"A{a.id}", "kind": a.kind, "centroid_mm": d["centroid_mm"],
                     "centroid": d["centroid"], "area_mm2": d["area_mm2"], "area_px": a.area_px,
                     "peak_mm": None, "peak": None, "delta_e": round(a.delta_e_mean, 2)})
    emit_rows(rows, fmt, title=f"Findings of comparison {comparison_id}",
              data=detail.to_dict() if fmt == "json" else None)


# --------------------------------------------------------------------------- verify / gc


def verify(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Check that every stored row still has its file with the bytes it was stored with.

    Example: monitor verify --json
    """
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
    """Remove stored files no row refers to, and stale temporary files.

    Example: monitor gc --min-age-s 86400
    """
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
    artwork_app.command("edit")(artwork_edit)
    artwork_app.command("list")(artwork_list)
    artwork_app.command("show")(artwork_show)
    comparison_app = typer.Typer(help="Stored comparisons: findings, the examiner's record.",
                                 no_args_is_help=True)
    comparison_app.command("annotate")(comparison_annotate)
    comparison_app.command("show")(comparison_show)
    artwork_app.command("scans")(artwork_scans)
    db_app = typer.Typer(help="Database schema migrations (Alembic).", no_args_is_help=True)
    db_app.command("upgrade")(db_upgrade)
    # ignore_unknown_options lets a relative revision such as -1 through as an argument
    db_app.command("downgrade", context_settings={"ignore_unknown_options": True})(db_downgrade)
    db_app.command("current")(db_current)
    app.command("init")(init)
    app.command("ingest")(ingest)
    app.command("history")(history)
    app.command("scans")(scans)
    app.command("report")(report)
    app.command("verify")(verify)
    app.command("gc")(gc)
    app.add_typer(artwork_app, name="artwork")
    app.add_typer(comparison_app, name="comparison")
    app.add_typer(db_app, name="db")
