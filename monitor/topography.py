"""One multi-light scan's relief: heatmap, height TIFF, normal map and 3-D mesh.

:func:`relief` runs photometric stereo and integration on a capture at
analysis resolution; :func:`topography` writes its files into a folder,
atomically (written beside it, moved in when complete):

``height_heatmap.png``  diverging relief heatmap, colour bar, mm scale bar when known
``height.tif``          float32 height, pixel-pitch units (+ = towards the viewer)
``normals.png``         normal map (R = x right, G = y up, B = z; 128 = 0)
``albedo.png``          recovered albedo (sRGB), ``confidence.png`` (grey, 255 = 1)
``relief.ply``          mesh with vertex colours; ``relief.glb`` mesh with the scan as texture
``topography.json``     lamps, units, vertex count, integration method, figures

The height is relative (photometric stereo fixes slopes, not an absolute
offset) and its lowest frequencies are the least certain part of it: lamps
at a finite distance and clipped (unreadable) background bend it into a
bowl. :func:`detrend` removes the surface the relief lies on (a smooth robust
background, 8 % of the long side by default), so the map shows relief relative
to the paper or canvas; shape at larger scales is not claimed. Before
photometric stereo each lamp's fall-off across the picture is removed
(:func:`monitor.photometry.irradiance_fields`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from monitor.capture import load_capture, read_capture
from monitor.depth.base import HF_PREFIX, get_estimator, select_device
from monitor.depth.photometric_stereo import normals_from_height, photometric_stereo
from monitor.depth.shading import ShadingEstimator
from monitor.errors import MonitorError
from monitor.io import (
    analysis_scale,
    downsample,
    from_linear,
    read_image,
    to_linear,
    write_float_tiff,
    write_png,
)
from monitor.light import estimate_scan_light
from monitor.mesh import height_to_mesh, write_mesh
from monitor.photometry import (
    POISSON_MAX_PX,
    integrate_normals,
    integrate_two_sided,
    irradiance_fields,
    smooth_background,
)
from monitor.report.figures import heatmap_png, normals_rgb
from monitor.results import Capture, Light, NormalMap, Topography

TOPOGRAPHY_FILES = (
    "height_heatmap.png",
    "height.tif",
    "normals.png",
    "albedo.png",
    "confidence.png",
    "relief.ply",
    "relief.glb",
    "topography.json",
)


def detrend(
    height: np.ndarray, frac: float = 0.08, *, iterations: int = 4, k: float = 2.0
) -> np.ndarray:
    """Remove the surface the relief lies on: a smooth, robust background of the height.

    After a least-squares plane, a Gaussian background (sigma ``frac`` of the
    long side) is estimated again and again from the pixels within ``k``
    robust sigmas of it, on both sides, so neither raised relief (a leaf, a
    blister) nor a recession (a loss, cupping) pulls it along and leaves a
    halo; the result is the relief relative to that surface. (A lower
    envelope, as first written, wiped recessions out: height correlation
    0.15 instead of 0.9996 on a rendered bulge + recession + ridge.)

    Parameters
    ----------
    height
        H x W height.
    frac
        Scale of the removed surface, as a fraction of the long side (0 = none).
    iterations
        Rounds of the background estimate.
    k
        Pixels further than ``k`` robust sigmas from the background do not count.

    Returns
    -------
    numpy.ndarray
        H x W float32.

    Examples
    --------
    >>> import numpy as np
    >>> ramp = np.tile(np.linspace(0, 50, 64), (48, 1))
    >>> float(np.abs(detrend(ramp)).max()) < 1.0
    True
    """
    if frac <= 0:
        return np.asarray(height, np.float32)
    # a plane first: the Gaussian's mirrored borders would bend a tilted surface
    rows, cols = height.shape
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float64)
    design = np.stack([np.ones(rows * cols), xx.ravel(), yy.ravel()], axis=1)
    coef, *_ = np.linalg.lstsq(design, np.asarray(height, np.float64).ravel(), rcond=None)
    flat = np.asarray(height, np.float64) - (design @ coef).reshape(rows, cols)
    floor = 1e-3 * float(np.ptp(flat)) + 1e-9
    with torch.inference_mode():
        ht = torch.from_numpy(np.ascontiguousarray(flat, dtype=np.float32))
        w = torch.ones_like(ht)
        sigma = frac * max(height.shape)
        bg = smooth_background(ht, w, sigma)
        for _ in range(iterations):
            r = (ht - bg).numpy()
            spread = max(1.4826 * float(np.median(np.abs(r - np.median(r)))), floor)
            w = torch.from_numpy((np.abs(r) < k * spread).astype(np.float32))
            bg = smooth_background(ht, w, sigma)
        return (ht - bg).numpy()


def opposite_pair_relief(
    image_a: np.ndarray,
    image_b: np.ndarray,
    light_a: np.ndarray,
    light_b: np.ndarray,
    *,
    detrend_frac: float = 0.08,
) -> np.ndarray:
    """Relief from two photographs under opposite lamps (one slope axis only).

    For lamps ``l_a`` and ``l_b`` of equal elevation ``e`` and opposite azimuth,
    ``(I_a - I_b) / (I_a + I_b) = -cot(e) dh/du`` (Lambertian) with ``u`` the
    in-plane direction towards ``l_a``: albedo cancels. The slope is integrated
    along ``u`` with the single-lamp route's two-sided integrator
    (:func:`monitor.photometry.integrate_two_sided`, linear output), then detrended.

    Parameters
    ----------
    image_a, image_b
        H x W or H x W x 3 linear light.
    light_a, light_b
        Vectors at the two lamps (x right, y down, z towards the viewer).
    detrend_frac
        See :func:`detrend`.

    Returns
    -------
    numpy.ndarray
        H x W float32 relative height in pixel pitch.

    Raises
    ------
    MonitorError
        Shapes differ or the lamps are not (roughly) opposite.

    Examples
    --------
    >>> import numpy as np
    >>> from monitor.results import Light
    >>> flat = np.full((32, 32), 0.4, np.float32)
    >>> h = opposite_pair_relief(flat, flat, Light(0, 45).vector(), Light(180, 45).vector())
    >>> float(np.abs(h).max()) < 1e-4
    True
    """
    a = np.asarray(image_a, np.float32)
    b = np.asarray(image_b, np.float32)
    if a.shape != b.shape or a.ndim not in (2, 3):
        raise MonitorError(f"pair relief: images differ in shape ({a.shape}, {b.shape})")
    if a.ndim == 3:
        a, b = a.mean(axis=2), b.mean(axis=2)
    la = np.asarray(light_a, np.float64) / np.linalg.norm(light_a)
    lb = np.asarray(light_b, np.float64) / np.linalg.norm(light_b)
    ua, ub = la[:2] / max(np.linalg.norm(la[:2]), 1e-9), lb[:2] / max(np.linalg.norm(lb[:2]), 1e-9)
    if float(ua @ ub) > -0.9:
        raise MonitorError("pair relief: the two lamps are not opposite (more than 25 deg off)")
    u = ua - ub
    u /= np.linalg.norm(u)
    el = 0.5 * (np.arcsin(la[2]) + np.arcsin(lb[2]))
    ok = (a + b) > 4e-3
    ratio = np.where(ok, (a - b) / np.maximum(a + b, 1e-6), 0.0)
    slope = (-np.tan(el) * ratio).astype(np.float32)
    with torch.inference_mode():
        _, linear = integrate_two_sided(torch.from_numpy(slope), (float(u[0]), float(u[1])))
    return detrend(linear.numpy(), detrend_frac)


def relief(
    images: np.ndarray,
    lights: np.ndarray,
    *,
    method: str = "auto",
    detrend_frac: float = 0.08,
    flat_field: int = 3,
    device: torch.device | str | None = None,
) -> tuple[np.ndarray, NormalMap]:
    """Height map and normal map of one multi-light capture.

    Parameters
    ----------
    images
        N x H x W (x 3) linear light, one per lamp.
    lights
        N x 3 vectors at the lamps.
    method
        Integration: ``"poisson"`` (confidence-weighted; the more accurate by
        measurement), ``"fc"`` (Frankot-Chellappa, FFT, fast) or ``"auto"``
        (Poisson up to ``POISSON_MAX_PX`` / 4 pixels, else FC).
    detrend_frac
        Scale of the surface removed under the relief (:func:`detrend`), as a
        fraction of the long side; 0 keeps the raw integral.
    flat_field
        Degree of each lamp's irradiance field removed first
        (:func:`monitor.photometry.irradiance_fields`: near lamps, spot beams); 0 = none.
    device
        Torch device.

    Returns
    -------
    (numpy.ndarray, NormalMap)
        H x W float32 height (pixel pitch, plane removed) and the normal map.

    Examples
    --------
    >>> from monitor.capture import load_capture, read_capture
    >>> cap = read_capture("../shared/real/leaves12")  # doctest: +SKIP
    >>> height, nm = relief(load_capture(cap), cap.lights)  # doctest: +SKIP
    """
    if flat_field > 0:
        fields = irradiance_fields(images, lights, degree=flat_field)
        images = images / (fields[..., None] if images.ndim == 4 else fields)
    nm = photometric_stereo(images, lights, device=device)
    h, w = nm.confidence.shape
    if method == "auto":
        method = "poisson" if h * w <= POISSON_MAX_PX // 4 else "fc"
    height = integrate_normals(nm.normals, nm.confidence, method=method, device=device)
    return detrend(height, detrend_frac), nm


def _photo_relief(
    path: Path,
    *,
    max_px: int,
    light: Light | None,
    depth: str | None,
    detrend_frac: float,
    device: torch.device | str | None,
) -> tuple[np.ndarray, NormalMap, np.ndarray, float, tuple[int, int], dict[str, object]]:
    """One photograph: relief from shading (along the lamp) or a depth network's scene depth."""
    img = read_image(path)
    full_h, full_w = img.pixels.shape[:2]
    s = analysis_scale((full_h, full_w), max_px)
    px = downsample(img.pixels, s) if s < 1 else img.pixels
    rgb = np.clip(to_linear(px), 0.0, 1.0).astype(np.float32)
    dev = select_device(device if isinstance(device, str) else ("auto" if device is None
                                                                 else str(device)))
    info: dict[str, object] = {}
    if depth is None or depth == "shading":
        if light is None:
            est = estimate_scan_light(rgb)
            if not est.confident or not np.isfinite(est.azimuth_deg):
                raise MonitorError(
                    f"{path.name}: could not tell the lamp from the photo "
                    f"(confidence {est.confidence:.2f}); give --light-azimuth"
                )
            light = Light(float(est.azimuth_deg), Light().elevation_deg)
            info["light_estimate"] = est.to_dict()
        height = ShadingEstimator(device=dev, background_frac=detrend_frac or 0.08).estimate(
            rgb, light
        ).height
        height = detrend(height, detrend_frac)
        info.update(
            source="shading",
            light={"azimuth_deg": light.azimuth_deg, "elevation_deg": light.elevation_deg,
                   "estimated": "light_estimate" in info},
            height_units="relative relief from shading along the lamp, ~pixel pitch "
            "(+ = towards the viewer); paint is read as relief too",
        )
    elif depth.startswith(HF_PREFIX):
        dm = get_estimator(depth, str(dev)).estimate(rgb, light or Light())
        height = np.asarray(dm.height, np.float32)
        height = height - float(np.nanmedian(height))
        info.update(
            source=f"depth:{dm.model_id}",
            height_units="relative depth of the depicted scene (network units, "
            "+ = towards the viewer): not the relief of the paint",
        )
    else:
        raise MonitorError(f"--depth {depth!r}: use shading or hf:ID_OR_PATH for one photo")
    nrm = normals_from_height(height)
    one = np.ones(height.shape, np.float32)
    nm = NormalMap(
        normals=nrm, albedo=rgb, confidence=one, n_used=one, n_shadow=0 * one,
        n_highlight=0 * one, residual=0 * one,
        lights=(light or Light(0.0, 90.0)).vector()[None, :], device=str(dev),
    )
    return height, nm, from_linear(rgb, 8), s, (full_w, full_h), info


def topography(
    scan: str | Path | Capture,
    out_dir: str | Path,
    *,
    max_px: int = 1600,
    max_vertices: int = 250_000,
    px_per_mm: float | None = None,
    z_scale: float = 1.0,
    method: str = "auto",
    detrend_frac: float = 0.08,
    flat_field: int = 3,
    device: torch.device | str | None = None,
    light: Light | None = None,
    depth: str | None = None,
) -> Topography:
    """Write one scan's relief heatmap, height, normals and mesh into ``out_dir``.

    Parameters
    ----------
    scan
        A multi-light capture: folder / light file (:func:`monitor.capture.read_capture`)
        or a capture; or ONE photograph (PNG, JPEG, TIFF).
    out_dir
        Output folder (created; files of the same names are replaced).
    max_px
        Long side of the analysis grid.
    max_vertices
        Mesh vertex budget.
    px_per_mm
        Full-resolution pixels per millimetre, when known (mm scale bar, mesh in mm).
    z_scale
        Vertical exaggeration of the mesh (the heatmap and TIFF are true height).
    method, detrend_frac, flat_field, device
        Integration method, removed surface, lamp fall-off correction and torch
        device (see :func:`relief`).
    light
        One photograph only: its lamp; None estimates it
        (:func:`monitor.light.estimate_scan_light`, azimuth only, elevation 30 deg)
        and refuses when the photo cannot tell.
    depth
        One photograph only: ``None`` / ``"shading"`` (relief from shading along the
        lamp: the surface, paint read as relief too) or ``"hf:ID_OR_PATH"`` (a depth
        network: the depth of the depicted scene, not the surface of the paint).

    Returns
    -------
    Topography
        Height, normal map, the paths written and ``source`` (``"multilight"``,
        ``"shading"`` or ``"depth:<model>"``).

    Raises
    ------
    MonitorError
        From reading the scan, photometric stereo, the lamp estimate or writing;
        ``depth`` given for a multi-light capture.

    Examples
    --------
    >>> topo = topography("../shared/real/leaves12", "out/leaves")  # doctest: +SKIP
    >>> sorted(topo.files)[:2]  # doctest: +SKIP
    ['albedo.png', 'confidence.png']
    """
    if max_vertices < 4:
        raise MonitorError(f"--max-vertices must be at least 4, got {max_vertices}")
    if not (np.isfinite(z_scale) and z_scale > 0):
        raise MonitorError(f"--z-scale must be positive, got {z_scale}")
    if px_per_mm is not None and not (np.isfinite(px_per_mm) and px_per_mm > 0):
        raise MonitorError(f"--px-per-mm must be positive, got {px_per_mm}")
    info: dict[str, object]
    if isinstance(scan, Capture) or Path(scan).is_dir() or Path(scan).suffix.lower() in (
        ".lp", ".csv"
    ):
        if depth is not None:
            raise MonitorError("--depth is for one photograph; a multi-light capture has "
                               "its own relief from photometric stereo")
        cap = scan if isinstance(scan, Capture) else read_capture(scan)
        images = load_capture(cap, max_px=max_px)
        height, nm = relief(images, cap.lights, method=method, detrend_frac=detrend_frac,
                            flat_field=flat_field, device=device)
        full_size = cap.size
        scan_rgb = from_linear(np.clip(images.mean(axis=0), 0, 1), 8)
        n_lights = cap.n_lights
        integration = method if method != "auto" else (
            "poisson" if height.size <= POISSON_MAX_PX // 4 else "fc")
        info = {
            "source": "multilight",
            "capture": cap.source,
            "height_units": "full-resolution pixel pitch (+ = towards the viewer), relative",
            "integration": integration,
            "lamp_falloff_degree": flat_field,
        }
        title = f"relief from {n_lights} lamps (+ = towards the viewer)"
    else:
        path = Path(scan)
        if not path.is_file():
            raise MonitorError(f"{path}: no such photograph, capture folder or light file")
        height, nm, scan_rgb, _, full_size, info = _photo_relief(
            path, max_px=max_px, light=light, depth=depth, detrend_frac=detrend_frac,
            device=device,
        )
        info["photo"] = str(path.resolve())
        n_lights = 1 if info["source"] == "shading" else 0
        title = ("relief from shading, one lamp" if n_lights else
                 "depth of the depicted scene (network)") + " (+ = towards the viewer)"
    source = str(info["source"])
    scale = height.shape[1] / full_size[0]  # analysis px per full-resolution px
    # heights are in analysis pixel pitch: full-resolution pixels are 1/scale smaller
    height_full = (height / scale).astype(np.float32)
    ppm_analysis = None if px_per_mm is None else px_per_mm * scale
    mesh_height = height
    if source.startswith("depth:"):
        # network depth has no unit: shown at 10 % of the long side, said so in the json
        span = float(np.nanpercentile(height, 99.5) - np.nanpercentile(height, 0.5))
        mesh_height = height * (0.1 * max(height.shape) / max(span, 1e-9))
        info["mesh_depth_normalised_to"] = "0.1 x the long side"
    albedo = nm.albedo if nm.albedo.ndim == 3 else np.repeat(nm.albedo[..., None], 3, 2)
    alb = albedo / max(float(np.percentile(albedo, 99.5)), 1e-6)
    mesh = height_to_mesh(
        mesh_height, colours=scan_rgb, max_vertices=max_vertices, px_per_mm=ppm_analysis,
        z_scale=z_scale,
    )
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise MonitorError(f"{out}: exists and is not a folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        units = "px" if px_per_mm is None else "px (full resolution)"
        if source.startswith("depth:"):
            units = "rel."
        heatmap_png(
            height_full, tmp / "height_heatmap.png", units=units, title=title,
            px_per_mm=ppm_analysis, quantity="height",
        )
        write_float_tiff(tmp / "height.tif", height_full)
        write_png(tmp / "normals.png", normals_rgb(nm.normals))
        write_png(tmp / "albedo.png", from_linear(np.clip(alb, 0, 1), 8))
        conf8 = np.round(np.clip(nm.confidence, 0, 1) * 255).astype(np.uint8)
        write_png(tmp / "confidence.png", np.repeat(conf8[..., None], 3, 2))
        write_mesh(mesh, tmp / "relief.ply")
        write_mesh(mesh, tmp / "relief.glb")
        info.update({
            "n_lights": n_lights,
            "analysis_size": [int(height.shape[1]), int(height.shape[0])],
            "mesh_units": mesh.metadata["units"],
            "mesh_vertices": len(mesh.vertices),
            "mesh_vertex_budget": max_vertices,
            "mesh_z_scale": z_scale,
            "px_per_mm": px_per_mm,
            "detrend_frac": detrend_frac,
            "median_confidence": float(np.median(nm.confidence)),
            "mean_lamps_rejected": {
                "shadow": float(nm.n_shadow.mean()),
                "highlight": float(nm.n_highlight.mean()),
            },
        })
        (tmp / "topography.json").write_text(json.dumps(info, indent=2) + "\n")
        if not out.exists():
            os.rename(tmp, out)
        else:
            for name in TOPOGRAPHY_FILES:
                os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Topography(
        height=height_full,
        normal_map=nm,
        files={name: str(out / name) for name in TOPOGRAPHY_FILES},
        n_lights=n_lights,
        n_vertices=len(mesh.vertices),
        px_per_mm=px_per_mm,
        source=source,
    )
