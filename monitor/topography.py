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
bowl. :func:`detrend` removes the surface the relief lies on (a smooth lower
envelope, 8 % of the long side by default), so the map shows relief relative
to the paper or canvas; shape at larger scales is not claimed.
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
from monitor.depth.integrate import POISSON_MAX_PX, integrate_normals
from monitor.depth.photometric_stereo import photometric_stereo
from monitor.depth.shading import integrate_two_sided, smooth_background
from monitor.errors import MonitorError
from monitor.io import from_linear, write_float_tiff, write_png
from monitor.mesh import height_to_mesh, write_mesh
from monitor.report.figures import heatmap_png
from monitor.results import Capture, NormalMap, Topography

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


def detrend(height: np.ndarray, frac: float = 0.08, *, iterations: int = 4) -> np.ndarray:
    """Remove the surface the relief lies on: a smooth lower envelope of the height.

    After a least-squares plane, a Gaussian background (sigma ``frac`` of the
    long side) is estimated again and again from the pixels that are not above it (within one robust
    sigma), so raised relief (a leaf, a blister) does not pull it up and
    leaves no halo; the result is the relief relative to that surface.

    Parameters
    ----------
    height
        H x W height.
    frac
        Scale of the removed surface, as a fraction of the long side (0 = none).
    iterations
        Rounds of the envelope estimate.

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
            w = torch.from_numpy((r < spread).astype(np.float32))
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
    (:func:`monitor.depth.shading.integrate_two_sided`, linear output), then detrended.

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
    nm = photometric_stereo(images, lights, device=device)
    h, w = nm.confidence.shape
    if method == "auto":
        method = "poisson" if h * w <= POISSON_MAX_PX // 4 else "fc"
    height = integrate_normals(nm.normals, nm.confidence, method=method, device=device)
    return detrend(height, detrend_frac), nm


def _normals_rgb(normals: np.ndarray) -> np.ndarray:
    n = normals * np.array([1.0, -1.0, 1.0], np.float32)  # y up, as normal maps are drawn
    return np.round((np.clip(n, -1, 1) + 1.0) * 127.5).astype(np.uint8)


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
    device: torch.device | str | None = None,
) -> Topography:
    """Write one multi-light scan's relief heatmap, height, normals and mesh into ``out_dir``.

    Parameters
    ----------
    scan
        Capture folder / light file (:func:`monitor.capture.read_capture`) or a capture.
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
    method, detrend_frac, device
        Integration method, removed surface and torch device (see :func:`relief`).

    Returns
    -------
    Topography
        Height, normal map and the paths written.

    Raises
    ------
    MonitorError
        From reading the capture, photometric stereo or writing.

    Examples
    --------
    >>> topo = topography("../shared/real/leaves12", "out/leaves")  # doctest: +SKIP
    >>> sorted(topo.files)[:2]  # doctest: +SKIP
    ['albedo.png', 'confidence.png']
    """
    cap = scan if isinstance(scan, Capture) else read_capture(scan)
    images = load_capture(cap, max_px=max_px)
    height, nm = relief(images, cap.lights, method=method, detrend_frac=detrend_frac, device=device)
    scale = images.shape[2] / cap.size[0]  # analysis px per full-resolution px
    # heights are in analysis pixel pitch: full-resolution pixels are 1/scale smaller
    height_full = (height / scale).astype(np.float32)
    ppm_analysis = None if px_per_mm is None else px_per_mm * scale
    scan_rgb = from_linear(np.clip(images.mean(axis=0), 0, 1), 8)
    albedo = nm.albedo if nm.albedo.ndim == 3 else np.repeat(nm.albedo[..., None], 3, 2)
    alb = albedo / max(float(np.percentile(albedo, 99.5)), 1e-6)
    mesh = height_to_mesh(
        height, colours=scan_rgb, max_vertices=max_vertices, px_per_mm=ppm_analysis,
        z_scale=z_scale,
    )
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        units = "px" if px_per_mm is None else "px (full resolution)"
        heatmap_png(
            height_full, tmp / "height_heatmap.png", units=units,
            title=f"relief from {cap.n_lights} lamps (+ = towards the viewer)",
            px_per_mm=ppm_analysis,
        )
        write_float_tiff(tmp / "height.tif", height_full)
        write_png(tmp / "normals.png", _normals_rgb(nm.normals))
        write_png(tmp / "albedo.png", from_linear(np.clip(alb, 0, 1), 8))
        conf8 = np.round(np.clip(nm.confidence, 0, 1) * 255).astype(np.uint8)
        write_png(tmp / "confidence.png", np.repeat(conf8[..., None], 3, 2))
        write_mesh(mesh, tmp / "relief.ply")
        write_mesh(mesh, tmp / "relief.glb")
        info = {
            "capture": cap.source,
            "n_lights": cap.n_lights,
            "analysis_size": [int(images.shape[2]), int(images.shape[1])],
            "height_units": "full-resolution pixel pitch (+ = towards the viewer), relative",
            "mesh_units": mesh.metadata["units"],
            "mesh_vertices": len(mesh.vertices),
            "mesh_z_scale": z_scale,
            "px_per_mm": px_per_mm,
            "detrend_frac": detrend_frac,
            "integration": method if method != "auto" else (
                "poisson" if height.size <= POISSON_MAX_PX // 4 else "fc"),
            "median_confidence": float(np.median(nm.confidence)),
            "mean_lamps_rejected": {
                "shadow": float(nm.n_shadow.mean()),
                "highlight": float(nm.n_highlight.mean()),
            },
        }
        (tmp / "topography.json").write_text(json.dumps(info, indent=2) + "\n")
        if not out.exists():
            os.rename(tmp, out)
        else:
            if not out.is_dir():
                raise MonitorError(f"{out}: exists and is not a folder")
            for name in TOPOGRAPHY_FILES:
                os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Topography(
        height=height_full,
        normal_map=nm,
        files={name: str(out / name) for name in TOPOGRAPHY_FILES},
        n_lights=cap.n_lights,
        n_vertices=len(mesh.vertices),
        px_per_mm=px_per_mm,
    )
