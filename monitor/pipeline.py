"""Compose the stages: io -> registration -> depth/change -> regions.

:func:`compare` is the library's one entry point for a comparison of two
image files; :func:`write_outputs` writes its files atomically. The CLI,
the store and the inbox all call these two.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from monitor import __version__
from monitor.change.methods import METHODS, depth_change, photometric_change
from monitor.config import Settings
from monitor.depth.base import get_estimator, select_device
from monitor.errors import MonitorError
from monitor.io import analysis_scale, downsample, read_image, to_linear, write_float_tiff
from monitor.regions import find_regions
from monitor.registration import register, registration_to_dict, warp_to_baseline
from monitor.report.figures import heatmap_png, overlay_png
from monitor.resources import peak_rss_mb  # noqa: F401 - re-exported (bench)
from monitor.results import (
    ChangeMap,
    Comparison,
    ImageData,
    Light,
    Region,
    Registration,
    StageTiming,
)

Progress = Callable[[str, float], None]

#: Settings.scale values: one analysis grid, or every scale at full resolution.
SCALES = ("grid", "auto")

#: Files :func:`write_outputs` produces, in this order.
OUTPUT_FILES = ("regions.json", "change.tif", "heatmap.png", "overlay.png", "registration.json")


class _Stages:
    """Records wall time and peak memory per stage and reports progress."""

    def __init__(self, progress: Progress | None, names: tuple[str, ...]) -> None:
        self.progress = progress
        self.names = names
        self.timings: list[StageTiming] = []

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self.progress:
            self.progress(name, len(self.timings) / len(self.names))
        start = time.perf_counter()
        yield
        self.timings.append(StageTiming(name, time.perf_counter() - start, peak_rss_mb()))
        if self.progress and len(self.timings) == len(self.names):
            self.progress("done", 1.0)


def compare(
    baseline: str | Path,
    current: str | Path,
    settings: Settings | None = None,
    *,
    light: Light | None = None,
    px_per_mm: float | None = None,
    progress: Progress | None = None,
) -> Comparison:
    """Compare two scans of one painting.

    Parameters
    ----------
    baseline, current
        Image files (PNG, JPEG, TIFF). Results are in BASELINE pixel coordinates.
    settings
        Tunables (method, depth estimator, device, resolutions, thresholds);
        defaults from :class:`monitor.config.Settings`.
    light
        Direction of the lamp; default from the settings (from the left, 30 deg).
    px_per_mm
        Baseline pixels per millimetre, when known (areas in mm^2).
    progress
        Called with (stage name, fraction done) as stages start.

    Returns
    -------
    Comparison
        Registration, change map, regions, timings and the parameters used.

    Raises
    ------
    MonitorError
        Unreadable input, images of different artworks, unknown method, ...
    """
    settings = settings or Settings()
    if settings.method not in METHODS:
        choices = ", ".join(METHODS)
        raise MonitorError(f"unknown method {settings.method!r}; choose one of: {choices}")
    if settings.scale not in SCALES:
        raise MonitorError(f"unknown scale {settings.scale!r}; choose one of: {', '.join(SCALES)}")
    if settings.scale == "auto" and settings.method != "photometric":
        raise MonitorError(
            f"scale auto needs the photometric method (got {settings.method!r}); use --scale grid"
        )
    light = light or Light(settings.light_azimuth, settings.light_elevation)
    stages = _Stages(progress, ("read", "register", "resample", "change", "regions"))

    with stages.stage("read"):
        base_img = read_image(baseline, max_pixels=settings.max_pixels)
        cur_img = read_image(current, max_pixels=settings.max_pixels)
    with stages.stage("register"):
        reg = register(
            base_img.pixels,
            cur_img.pixels,
            max_px=settings.registration_max_px,
            min_inliers=settings.registration_min_inliers,
            residual_grid=settings.residual_grid,
        )
    if settings.scale == "auto":
        return _compare_multiscale(
            baseline, current, settings, light, px_per_mm, stages, base_img, cur_img, reg
        )
    with stages.stage("resample"):
        s = analysis_scale(base_img.pixels.shape[:2], settings.analysis_max_px)
        base_small = downsample(base_img.pixels, s)
        preview = _preview8(base_small)
        base_lin = to_linear(base_small)
        # bring CURRENT to about the same pixel size as the analysis grid
        h_scale = float(np.sqrt(abs(np.linalg.det(reg.homography[:2, :2]))))
        s_cur = min(1.0, s * h_scale)
        cur_small = downsample(cur_img.pixels, s_cur)
        del cur_img
        cur_lin = to_linear(cur_small)
        s_cur_actual = cur_small.shape[1] / reg.current_shape[1]
        warped, valid = warp_to_baseline(
            cur_lin, reg, image_scale=s_cur_actual, out_shape=base_lin.shape[:2], out_scale=s
        )
        del cur_lin, cur_small
    with stages.stage("change"):
        if settings.method == "photometric":
            device = select_device(settings.device)
            change = photometric_change(base_lin, warped, valid, light, scale=s, device=device)
        elif settings.method == "pair":
            from monitor.change.pair import load_pair_model, pair_change

            device = select_device(settings.device)
            change = pair_change(base_lin, warped, valid, light, model=load_pair_model(device),
                                 scale=s, device=device)
        else:
            estimator = get_estimator(settings.depth, settings.device)
            change = depth_change(base_lin, warped, valid, light, estimator=estimator, scale=s)
    with stages.stage("regions"):
        min_frac = settings.min_region_frac
        regions = find_regions(
            change, z=settings.significance_z, min_diameter_frac=min_frac, px_per_mm=px_per_mm
        )

    params: dict[str, object] = {
        "method": settings.method,
        "scale": "grid",
        "depth": settings.depth if settings.method == "depth" else None,
        "device": settings.device,
        "light_azimuth": light.azimuth_deg,
        "light_elevation": light.elevation_deg,
        "analysis_max_px": settings.analysis_max_px,
        "registration_max_px": settings.registration_max_px,
        "significance_z": settings.significance_z,
        "min_region_frac": settings.min_region_frac,
    }
    return Comparison(
        baseline_path=str(baseline),
        current_path=str(current),
        baseline_shape=(base_img.height, base_img.width),
        registration=reg,
        change=change,
        regions=regions,
        light=light,
        params=params,
        timings=tuple(stages.timings),
        software_version=__version__,
        px_per_mm=px_per_mm,
        preview=preview,
        min_detectable_px=min_frac * max(base_img.height, base_img.width),
    )


def _compare_multiscale(
    baseline: str | Path,
    current: str | Path,
    settings: Settings,
    light: Light,
    px_per_mm: float | None,
    stages: _Stages,
    base_img: ImageData,
    cur_img: ImageData,
    reg: Registration,
) -> Comparison:
    """The ``scale="auto"`` route: every scale at full resolution, in tiles."""
    from monitor.change.multiscale import multiscale_change

    with stages.stage("resample"):
        base_lin = to_linear(base_img.pixels)
        cur_lin = to_linear(cur_img.pixels)
        del cur_img
        warped, valid = warp_to_baseline(cur_lin, reg, out_shape=base_lin.shape[:2])
        del cur_lin
    with stages.stage("change"):
        ms = multiscale_change(base_lin, warped, valid, light, px_per_mm=px_per_mm,
                               device=select_device(settings.device), tile=settings.tile)
        del warped, valid
        s = ms.preview_scale
        preview = _preview8(downsample(base_img.pixels, s))
        del base_lin
        level = next(lv for lv in ms.levels if abs(lv.pitch_px * s - 1.0) < 1e-6)
        change = ChangeMap(
            height=ms.preview, scale=s, method="photometric", noise_sigma=level.noise_sigma,
            model_id=ms.model_id, integration_direction=ms.integration_direction,
        )
    with stages.stage("regions"):
        regions: tuple[Region, ...] = ms.regions
    params: dict[str, object] = {
        "method": settings.method,
        "scale": "auto",
        "tile": settings.tile,
        "depth": None,
        "device": settings.device,
        "light_azimuth": light.azimuth_deg,
        "light_elevation": light.elevation_deg,
        "registration_max_px": settings.registration_max_px,
        "levels": [dataclasses.asdict(lv) for lv in ms.levels],
    }
    return Comparison(
        baseline_path=str(baseline),
        current_path=str(current),
        baseline_shape=(base_img.height, base_img.width),
        registration=reg,
        change=change,
        regions=regions,
        light=light,
        params=params,
        timings=tuple(stages.timings) + ms.timings,
        software_version=__version__,
        px_per_mm=px_per_mm,
        preview=preview,
        min_detectable_px=ms.min_detectable_px,
    )


def _preview8(pixels: np.ndarray) -> np.ndarray:
    """8-bit copy of an (already small) encoded image for figures."""
    if pixels.dtype == np.uint8:
        return pixels.copy()
    return (pixels.astype(np.float32) / 257.0 + 0.5).clip(0, 255).astype(np.uint8)


def full_resolution_change(comparison: Comparison) -> np.ndarray:
    """The change map resampled to the baseline's full size (float32, NaN outside overlap)."""
    h = comparison.change.height
    rows, cols = comparison.baseline_shape
    finite = np.isfinite(h)
    filled = np.where(finite, h, 0).astype(np.float32)
    if filled.shape == (rows, cols):
        out = filled
    else:
        out = cv2.resize(filled, (cols, rows), interpolation=cv2.INTER_LINEAR)
        finite = cv2.resize(finite.astype(np.uint8), (cols, rows), interpolation=cv2.INTER_NEAREST)
    out[finite == 0] = np.nan
    return out


def summary(comparison: Comparison) -> dict[str, object]:
    """JSON-ready summary: the contract of ``regions.json``."""
    reg = comparison.registration
    change = comparison.change
    bulges = [r for r in comparison.regions if r.polarity == "bulge"]
    recessions = [r for r in comparison.regions if r.polarity == "recession"]
    return {
        "software": {"name": "monitor", "version": comparison.software_version},
        "baseline": comparison.baseline_path,
        "current": comparison.current_path,
        "baseline_size": [comparison.baseline_shape[1], comparison.baseline_shape[0]],
        "coordinates": "baseline pixels, x right, y down, origin at the top-left corner "
        "of the top-left pixel",
        "method": change.method,
        "model_id": change.model_id,
        "weights_sha256": change.weights_sha256,
        "units": "baseline pixel pitch (height change, + = towards the viewer)"
        if change.method in ("photometric", "pair")
        else "relative (depth estimator units, + = towards the viewer)",
        "light": asdict(comparison.light),
        "px_per_mm": comparison.px_per_mm,
        "noise_sigma": change.noise_sigma,
        "alignment": asdict(change.alignment) if change.alignment else None,
        "registration": {
            "inliers": reg.n_inliers,
            "matches": reg.n_matches,
            "rmse_px": reg.rmse_px,
        },
        "counts": {"bulge": len(bulges), "recession": len(recessions)},
        "min_detectable": _min_detectable(comparison),
        "regions": [r.to_dict() for r in comparison.regions],
        "params": comparison.params,
        "timings": [asdict(t) for t in comparison.timings],
    }


def _min_detectable(comparison: Comparison) -> dict[str, float | None] | None:
    """Smallest region diameter the comparison could report: baseline px and mm."""
    px = comparison.min_detectable_px
    if px is None:
        return None
    mm = None if not comparison.px_per_mm else round(px / comparison.px_per_mm, 4)
    return {"px": round(px, 2), "mm": mm}


def write_outputs(comparison: Comparison, out_dir: str | Path) -> dict[str, Path]:
    """Write the comparison's files into ``out_dir`` atomically.

    Files are written into a temporary folder beside ``out_dir`` and moved in
    only when all of them exist, so a failure leaves ``out_dir`` without
    partial outputs. Existing files of the same names are replaced.

    Returns
    -------
    dict
        File name -> path, for :data:`OUTPUT_FILES`.
    """
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (tmp / "regions.json").write_text(json.dumps(summary(comparison), indent=2) + "\n")
        reg_dict = registration_to_dict(comparison.registration)
        (tmp / "registration.json").write_text(json.dumps(reg_dict, indent=2) + "\n")
        write_float_tiff(tmp / "change.tif", full_resolution_change(comparison))
        change = comparison.change
        units = "px" if change.method in ("photometric", "pair") else "rel."
        heatmap_png(
            change.height,
            tmp / "heatmap.png",
            units=units,
            title=f"height change ({change.method})",
            px_per_mm=None if comparison.px_per_mm is None else comparison.px_per_mm * change.scale,
        )
        overlay_png(comparison.preview, comparison.regions, tmp / "overlay.png",
                    scale=change.scale)
        if not out.exists():
            os.rename(tmp, out)  # one atomic step: the folder appears complete
        else:
            for name in OUTPUT_FILES:
                os.replace(tmp / name, out / name)
        return {name: out / name for name in OUTPUT_FILES}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
