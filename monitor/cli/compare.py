"""``monitor compare``: two files (``BASELINE CURRENT --out DIR``) or an artwork's scans (``SLUG``).

File mode calls :func:`monitor.pipeline.compare` and
:func:`monitor.pipeline.write_outputs`; SLUG mode calls
:func:`monitor.store.repository.compare_and_store` with the shared runner of
:mod:`monitor.runners`. Both print a summary (or ``--json``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from monitor.cli._options import (
    DeviceOption,
    JsonOption,
    LightAzimuthOption,
    LightElevationOption,
    echo_json,
    fail,
    handled,
    progress_printer,
)
from monitor.config import Settings, load_settings
from monitor.errors import MonitorError
from monitor.results import Light
from monitor.runners import pipeline_runner, write_comparison
from monitor.store import db, repository

__all__ = ["compare", "compare_stored"]


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
        typer.Option(help="auto: every scale at full resolution (fine damage); grid: one grid."),
    ] = None,
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
    as_json: JsonOption = False,
) -> None:
    """Compare two scans (BASELINE CURRENT --out DIR) or an artwork's last two scans (SLUG)."""
    with handled():
        settings = load_settings()
        changes = {
            k: v
            for k, v in {
                "method": method, "depth": depth, "device": device, "scale": scale,
                "light_azimuth": light_azimuth, "light_elevation": light_elevation,
            }.items()
            if v is not None
        }
        settings = settings.replace(**changes)
        if len(scans) == 1:
            raise typer.Exit(compare_stored(
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
        bar, report = progress_printer()
        light = Light(settings.light_azimuth, settings.light_elevation)
        if bar is not None:
            with bar:  # type: ignore[attr-defined]
                result = run_compare(scans[0], scans[1], settings, light=light,
                                     px_per_mm=px_per_mm, progress=report)  # type: ignore[arg-type]
        else:
            result = run_compare(scans[0], scans[1], settings, light=light, px_per_mm=px_per_mm)
        paths = write_outputs(result, out)
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


def compare_stored(
    slug: str,
    baseline: str | None,
    current: str | None,
    force: bool,
    as_json: bool,
    home: Path | None,
    *,
    settings: Settings | None = None,
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

    Returns
    -------
    int
        Exit status: 0, or 1 after printing ``error: ...`` on stderr.
    """
    try:
        settings = settings if settings is not None else load_settings()
        store = db.open_store(db.resolve_home(home, settings), settings)
        stored = repository.compare_and_store(
            store,
            slug,
            pipeline_runner(settings),
            write_comparison,
            settings=settings,
            baseline=baseline,
            current=current,
            force=force,
        )
        detail = repository.comparison_detail(store, stored.id)
    except MonitorError as exc:
        fail(str(exc))
        return 1
    counts = {
        "bulge": sum(r.polarity == "bulge" for r in detail.regions),
        "recession": sum(r.polarity == "recession" for r in detail.regions),
    }
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
            "regions": [r.to_dict() for r in detail.regions],
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
    for r in detail.regions:
        area = f"{r.area_mm2:.3g} mm2" if r.area_mm2 is not None else f"{r.area_px:.0f} px"
        typer.echo(
            f"  #{r.id:<3} {r.polarity:<9} at ({r.centroid[0]:.0f}, {r.centroid[1]:.0f}) "
            f"area {area}  peak {r.peak:+.3g}  z {r.significance:.1f}"
        )
    return 0
