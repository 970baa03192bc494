"""``monitor compare``: two files (``BASELINE CURRENT --out DIR``) or an artwork's scans (``SLUG``).

File mode calls :func:`monitor.pipeline.compare` and
:func:`monitor.pipeline.write_outputs`; SLUG mode calls
:func:`monitor.store.repository.compare_and_store` with the shared runner of
:mod:`monitor.runners`. Both print a summary (or ``--json``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from monitor.capture import is_capture
from monitor.cli._options import (
    DeviceOption,
    JsonOption,
    LightAzimuthOption,
    LightElevationOption,
    StrictLightOption,
    echo_json,
    fail,
    handled,
    progress_printer,
)
from monitor.config import (
    Settings,
    check_elevation,
    load_settings,
    parse_light_azimuth,
    settings_light,
)
from monitor.errors import MonitorError
from monitor.results import AppearanceRegion, Light, LightUsed, Region
from monitor.runners import pipeline_runner, write_comparison
from monitor.store import db, repository

__all__ = ["appearance_line", "compare", "compare_multilight", "compare_stored", "region_line"]

#: Exit status of ``monitor compare`` when the comparison cannot tell (status
#: ``insufficient``: too little of the overlap usable); outputs are still written.
INSUFFICIENT_EXIT = 3


def compare(
    scans: Annotated[
        list[str],
        typer.Argument(help="BASELINE CURRENT image files, or one artwork SLUG from the store."),
    ],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output folder (file comparison).")
    ] = None,
    light_azimuth: LightAzimuthOption = None,
    light_elevation: LightElevationOption = None,
    method: Annotated[
        str | None, typer.Option(help="Change method: photometric, pair (learned) or depth.")
    ] = None,
    depth: Annotated[
        str | None, typer.Option(help="For --method depth: shading, relief or hf:ID.")
    ] = None,
    device: DeviceOption = None,
    scale: Annotated[
        str | None,
        typer.Option(help="auto (default): every scale at full resolution, fine damage included "
                     "(photometric and pair; depth uses the grid); grid: one 1600-px grid."),
    ] = None,
    px_per_mm: Annotated[
        float | None, typer.Option(help="Baseline pixels per millimetre, for areas in mm^2.")
    ] = None,
    baseline: Annotated[
        str | None, typer.Option(help="Stored scan id to compare from (SLUG mode).")
    ] = None,
    current: Annotated[str | None, typer.Option(help="Stored scan id (SLUG mode).")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Recompute even if stored (SLUG mode).", metavar="")
    ] = False,
    allow_reversed: Annotated[
        bool, typer.Option("--allow-reversed", metavar="",
                           help="Compare a current scan older than its baseline (SLUG mode).")
    ] = False,
    home: Annotated[
        Path | None, typer.Option(envvar="MONITOR_HOME", help="Data home (SLUG mode).")
    ] = None,
    as_json: JsonOption = False,
    strict_light: StrictLightOption = False,
) -> None:
    """Compare two scans (BASELINE CURRENT -o DIR) or an artwork's last two scans (SLUG).

    Heights, sizes and positions are printed in mm when the scale is known
    (--px-per-mm, or the stored scans' scale); colour changes that are not
    relief are listed apart (A1, A2 ...).

    The lamp: ``--light-azimuth auto`` (the default) estimates it from the
    registered pair; a given lamp is used and checked against the scans (a
    disagreement is printed as a warning, recorded in regions.json, the store
    and the report; ``--strict-light`` makes it an error). When the scans show
    the lamp's axis but not which end, "auto" is refused with the two
    candidate azimuths: the polarity of every region depends on it.

    Example: monitor compare before.png after.png -o out --px-per-mm 4;
    monitor compare night-watch --baseline 1 --current 3
    """
    with handled():
        settings = load_settings()
        given_az = None if light_azimuth is None else parse_light_azimuth(
            light_azimuth, "--light-azimuth")
        if light_elevation is not None:
            check_elevation(light_elevation, "--light-elevation")
        changes: dict[str, object] = {
            k: v
            for k, v in {
                "method": method, "depth": depth, "device": device, "scale": scale,
                "light_elevation": light_elevation,
                "strict_light": True if strict_light else None,
            }.items()
            if v is not None
        }
        if light_azimuth is not None:
            changes["light_azimuth"] = "auto" if given_az is None else f"{given_az:g}"
        settings = settings.replace(source="flag", **changes)
        flag_light = (
            None if given_az is None else Light(given_az, float(settings.light_elevation))
        )
        if len(scans) == 2 and any(is_capture(s) for s in scans):
            # a multi-light capture on either side: monitor.multilight routes it
            raise typer.Exit(compare_multilight(scans[0], scans[1], out, settings,
                                                px_per_mm, as_json))
        if len(scans) == 1:
            raise typer.Exit(compare_stored(
                scans[0], baseline, current, force, as_json, home, settings=settings,
                allow_reversed=allow_reversed,
                light=flag_light,
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
        bar, report = progress_printer()
        light: Light | Literal["auto"] = settings_light(settings) or "auto"
        if bar is not None:
            with bar:
                result = run_compare(scans[0], scans[1], settings, light=light,
                                     px_per_mm=px_per_mm, progress=report)
        else:
            result = run_compare(scans[0], scans[1], settings, light=light, px_per_mm=px_per_mm)
        paths = write_outputs(result, out)
    _warn_light(result.light_used)
    info = summary(result)
    info["outputs"] = {name: str(p) for name, p in paths.items()}
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        if result.status == "insufficient":
            raise typer.Exit(INSUFFICIENT_EXIT)
        return
    if result.status == "identical":
        typer.echo(f"{info['message']}; outputs in {out}")
        return
    counts = info["counts"]
    typer.echo(
        f"{len(result.regions)} region(s): {counts['bulge']} bulge, "  # type: ignore[index]
        f"{counts['recession']} recession; registration RMSE "  # type: ignore[index]
        f"{result.registration.rmse_px:.2f} px over {result.registration.n_inliers} inliers"
    )
    in_px = result.change.method in ("photometric", "pair")
    for r in result.regions:
        typer.echo(region_line(r, result.px_per_mm, in_px))
    for a in result.appearance_regions:
        typer.echo(appearance_line(a, result.px_per_mm))
    typer.echo(_light_line(result.light_used, result.light))
    typer.echo(f"outputs in {out}")
    if result.status == "insufficient":
        # the files are written (they show what could be seen), but "no region" here
        # means "could not tell": a script must not read it as "no change"
        raise typer.Exit(INSUFFICIENT_EXIT)


def region_line(region: Region, px_per_mm: float | None, height_in_px: bool) -> str:
    """One printed line per relief region, in mm when the scale is known.

    Examples
    --------
    >>> r = Region(1, "bulge", (40.0, 20.0), (30.0, 10.0, 50.0, 30.0), 320.0, 2.0, 1.0, 9.0, 20.0)
    >>> region_line(r, 4.0, True)
    '  #1   bulge     at (10, 5) mm  area 20 mm²  peak +0.5 mm  z 9.0'
    >>> region_line(r, None, True)
    '  #1   bulge     at (40, 20) px  area 320 px²  peak +2 px  z 9.0'
    """
    x, y = region.centroid
    if px_per_mm:
        where = f"({x / px_per_mm:.0f}, {y / px_per_mm:.0f}) mm"
        area = (f"{region.area_mm2:.3g} mm²" if region.area_mm2 is not None
                else f"{region.area_px / px_per_mm**2:.3g} mm²")
    else:
        where = f"({x:.0f}, {y:.0f}) px"
        area = f"{region.area_px:.0f} px²"
    if height_in_px:
        peak = (f"{region.peak / px_per_mm:+.2g} mm" if px_per_mm
                else f"{region.peak:+.3g} px")
    else:
        peak = f"{region.peak:+.3g} rel."
    return (f"  #{region.id:<3} {region.polarity:<9} at {where}  area {area}  peak {peak}  "
            f"z {region.significance:.1f}")


def appearance_line(a: AppearanceRegion, px_per_mm: float | None) -> str:
    """One printed line per appearance finding (colour change, not relief).

    Examples
    --------
    >>> a = AppearanceRegion(1, "discoloration", (40.0, 20.0), (30.0, 10.0, 50.0, 30.0),
    ...                      320.0, 6.5, 12.0, -2.4, 0.7, 20.0)
    >>> appearance_line(a, 4.0)
    '  A1   discoloration at (10, 5) mm  area 20 mm²  CIEDE2000 6.5 (max 12)'
    """
    x, y = a.centroid
    if px_per_mm:
        where = f"({x / px_per_mm:.0f}, {y / px_per_mm:.0f}) mm"
        area = f"{a.area_px / px_per_mm**2:.3g} mm²"
    else:
        where = f"({x:.0f}, {y:.0f}) px"
        area = f"{a.area_px:.0f} px²"
    return (f"  A{a.id:<3} {a.kind} at {where}  area {area}  "
            f"CIEDE2000 {a.delta_e_mean:.1f} (max {a.delta_e_max:.0f})")


def compare_multilight(
    baseline: str,
    current: str,
    out: Path | None,
    settings: Settings,
    px_per_mm: float | None,
    as_json: bool,
) -> int:
    """``monitor compare A B --out DIR`` where A or B is a multi-light capture.

    Calls :func:`monitor.multilight.compare_scans` (both captures: both slope
    axes; one capture: its photograph nearest the photo's lamp) and writes the
    usual outputs. Returns the exit status (errors raise MonitorError).
    """
    from monitor.multilight import compare_scans
    from monitor.pipeline import summary, write_outputs

    if out is None:
        raise MonitorError("--out DIR is required when comparing two scans")
    for path in (baseline, current):
        if not Path(path).exists():
            raise MonitorError(f"no such file or capture folder: {path}")
    light = settings_light(settings)  # None: "auto" (a photo's lamp is then estimated)
    result = compare_scans(baseline, current, settings, light=light, px_per_mm=px_per_mm)
    paths = write_outputs(result, out)
    info = summary(result)
    info["outputs"] = {name: str(p) for name, p in paths.items()}
    if as_json:
        echo_json(info)
        return 0
    counts = info["counts"]
    lamps = result.params.get("n_lights_baseline")
    how = (f"multi-light ({lamps} and {result.params.get('n_lights_current')} lamps)"
           if lamps is not None else
           f"capture image {Path(str(result.params['multilight_stand_in'])).name} "
           f"(lamp {result.params['multilight_lamp_offset_deg']} deg from the photo's)")
    typer.echo(
        f"{len(result.regions)} region(s): {counts['bulge']} bulge, "  # type: ignore[index]
        f"{counts['recession']} recession; {how}; outputs in {out}"  # type: ignore[index]
    )
    return 0


def _warn_light(used: LightUsed | None) -> None:
    """A given lamp the scans contradict: say so on stderr."""
    for message in () if used is None else used.warnings:
        typer.echo(f"warning: {message}", err=True)


def _light_line(used: LightUsed | None, light: Light) -> str:
    """One line: the lamp used and where it came from."""
    if used is None:
        return f"light: azimuth {light.azimuth_deg:.0f} deg, elevation {light.elevation_deg:.0f}"
    unc = (f" +/- {used.azimuth_uncertainty_deg:.0f}"
           if used.azimuth_uncertainty_deg is not None else "")
    return (f"light: azimuth {light.azimuth_deg:.0f}{unc} deg ({used.source}), elevation "
            f"{light.elevation_deg:.0f} deg ({used.elevation_source})")


def compare_stored(
    slug: str,
    baseline: str | None,
    current: str | None,
    force: bool,
    as_json: bool,
    home: Path | None,
    *,
    settings: Settings | None = None,
    allow_reversed: bool = False,
    light: Light | None = None,
) -> int:
    """``monitor compare SLUG``: compare two stored scans (default newest vs previous) and store.

    Parameters
    ----------
    slug
        Artwork id.
    baseline, current
        Scan id or sha256 prefix; None for the default pair.
    force
        Recompute even when the same comparison is stored.
    as_json
        Print JSON instead of text.
    home
        Data home (None: ``MONITOR_HOME`` / settings).
    settings
        Comparison settings (the caller's, with CLI overrides); loaded when None.
    allow_reversed
        Compare a current scan captured before its baseline.
    light
        A lamp given by flag: it applies to this comparison and is recorded.

    Returns
    -------
    int
        Exit status: 0, or 1 after printing ``error: ...`` on stderr.
    """
    try:
        settings = settings if settings is not None else load_settings()
        store = db.open_store(db.resolve_home(home, settings), settings)
        from monitor.pipeline import result_fingerprint  # resolves the device: imports torch

        stored = repository.compare_and_store(
            store,
            slug,
            pipeline_runner(settings),
            write_comparison,
            settings=settings,
            baseline=baseline,
            current=current,
            force=force,
            fingerprint=result_fingerprint(settings),
            allow_reversed=allow_reversed,
            light=light,
        )
        detail = repository.comparison_detail(store, stored.id)
        if detail.light_disagrees and detail.light_message:
            typer.echo(f"warning: {detail.light_message}", err=True)
    except MonitorError as exc:
        fail(str(exc))
        return 1
    counts = {
        "bulge": sum(r.polarity == "bulge" for r in detail.regions),
        "recession": sum(r.polarity == "recession" for r in detail.regions),
        "appearance": len(detail.appearance),
    }
    in_px = detail.method in ("photometric", "pair")
    if as_json:
        out: dict[str, Any] = {
            "comparison_id": detail.id,
            "reused": stored.reused,
            "replaced_id": stored.replaced_id,
            "artwork": slug,
            "baseline_scan": detail.baseline.id,
            "current_scan": detail.current.id,
            "counts": counts,
            "changed_area_px": detail.changed_area_px,
            "changed_area_mm2": detail.changed_area_mm2,
            "registration": {
                "rmse_px": detail.rmse_px,
                "inliers": detail.n_inliers,
                "matches": detail.n_matches,
            },
            "px_per_mm": detail.px_per_mm,
            "regions": [r.to_dict(detail.px_per_mm, height_in_px=in_px) for r in detail.regions],
            "appearance": [a.to_dict(detail.px_per_mm) for a in detail.appearance],
            "light": detail.to_dict()["light"],
            "artifacts": {k: str(v) for k, v in detail.artifacts.items()},
        }
        echo_json(out)
        return 0
    state = "reused stored" if stored.reused else "stored"
    typer.echo(
        f"{state} comparison {detail.id} of {slug}: scan {detail.baseline.id} -> "
        f"{detail.current.id}; {len(detail.regions)} region(s): {counts['bulge']} bulge, "
        f"{counts['recession']} recession; registration RMSE {detail.rmse_px:.2f} px"
    )
    unc = "" if detail.light_uncertainty is None else f" +/- {detail.light_uncertainty:.0f}"
    typer.echo(f"light: azimuth {detail.light.azimuth_deg:.0f}{unc} deg "
               f"({detail.light_source or 'not recorded'})")
    for r in detail.regions:
        typer.echo(region_line(r, detail.px_per_mm, in_px))
    for a in detail.appearance:
        typer.echo(appearance_line(a, detail.px_per_mm))
    return 0
