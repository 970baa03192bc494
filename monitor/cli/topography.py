"""``monitor topography SCAN --out DIR``: one scan's relief as a heatmap, height TIFF and mesh.

SCAN is a multi-light capture (a folder with its ``.lp`` / ``.csv`` light file,
or the light file): relief by photometric stereo; or ONE photograph: relief
from shading along its lamp (given, or estimated from the photo), or with
``--depth hf:ID_OR_PATH`` the depicted scene's depth from a network. Calls
:func:`monitor.topography.topography` and prints what it wrote.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from monitor.cli._options import (
    DeviceOption,
    JsonOption,
    LightAzimuthOption,
    LightElevationOption,
    echo_json,
    handled,
)

__all__ = ["register", "topography"]


def topography(
    scan: Annotated[
        Path, typer.Argument(help="Capture folder, .lp / .csv light file, or one photograph.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    px_per_mm: Annotated[
        float | None, typer.Option(help="Pixels per millimetre: mm scale bar, mesh in mm.")
    ] = None,
    max_vertices: Annotated[int, typer.Option(help="Mesh vertex budget.")] = 250_000,
    z_scale: Annotated[float, typer.Option(help="Vertical exaggeration of the mesh.")] = 1.0,
    max_px: Annotated[int, typer.Option(help="Long side of the analysis grid.")] = 1600,
    lamp_falloff: Annotated[
        int, typer.Option(help="Capture only: degree of each lamp's fall-off removed (0 = off).")
    ] = 3,
    depth: Annotated[
        str | None,
        typer.Option(help="One photo only: shading (default) or hf:ID_OR_PATH (scene depth)."),
    ] = None,
    light_azimuth: LightAzimuthOption = None,
    light_elevation: LightElevationOption = None,
    device: DeviceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Relief heatmap, height.tif, normals.png and relief.ply / relief.glb of one scan.

    Example: monitor topography ../shared/real/leaves12 --out leaves_topo --max-vertices 60000
    """
    with handled():
        from monitor.config import check_elevation, parse_light_azimuth
        from monitor.results import Light
        from monitor.topography import topography as run_topography

        # "auto" (or no flag): the photo's lamp is estimated from its shading
        az = None if light_azimuth is None else parse_light_azimuth(
            light_azimuth, "--light-azimuth")
        if light_elevation is not None:
            check_elevation(light_elevation, "--light-elevation")
        light = None
        if az is not None:
            light = Light(az, Light().elevation_deg if light_elevation is None
                          else light_elevation)
        topo = run_topography(
            scan, out, max_px=max_px, max_vertices=max_vertices, px_per_mm=px_per_mm,
            z_scale=z_scale, device=device, light=light, depth=depth, flat_field=lamp_falloff,
        )
    if as_json:
        echo_json({
            "source": topo.source,
            "n_lights": topo.n_lights,
            "mesh_vertices": topo.n_vertices,
            "px_per_mm": topo.px_per_mm,
            "files": topo.files,
        })
        return
    what = {"multilight": f"photometric stereo of {topo.n_lights} lamps",
            "shading": "shading of one photo along its lamp"}.get(
        topo.source, f"scene depth from {topo.source.removeprefix('depth:')}")
    typer.echo(f"relief from {what}; mesh {topo.n_vertices} vertices; outputs in {out}")


def register(app: typer.Typer) -> None:
    """Add ``topography`` to ``app``."""
    app.command()(topography)
