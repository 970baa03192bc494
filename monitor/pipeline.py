"""Compose the stages: io -> registration -> depth/change -> regions.

:func:`compare` is the library's one entry point for a comparison of two
image files; :func:`write_outputs` writes its files atomically. The CLI,
the store and the inbox all call these two.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from monitor import __version__
from monitor.change.methods import METHODS, depth_change, photometric_change, usable_fraction
from monitor.config import SCALES, Settings, scale_route, settings_light
from monitor.depth.base import get_estimator, select_device
from monitor.errors import MonitorError
from monitor.io import (
    analysis_scale,
    downsample,
    read_scan,
    to_linear,
    write_float_tiff,
    write_png,
)
from monitor.light import (
    check_light_values,
    estimate_pair_light,
    estimate_scan_light,
    resolve_light,
)
from monitor.photometry import trusted_pixels
from monitor.regions import find_appearance_regions, find_outline, find_regions
from monitor.registration import register, registration_to_dict, warp_to_baseline
from monitor.report.figures import colour_limit, heatmap_png, normals_rgb, overlay_png
from monitor.resources import (
    match_cv2_threads,
    peak_rss_mb,  # noqa: F401 - re-exported (bench)
)
from monitor.results import (
    AppearanceRegion,
    ChangeMap,
    Comparison,
    ImageData,
    Light,
    LightUsed,
    MultiScaleChange,
    Outline,
    Region,
    Registration,
    StageTiming,
    Status,
    height_units,
)

Progress = Callable[[str, float], None]

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


def _same_pixels(a: np.ndarray, b: np.ndarray, rows: int = 64) -> bool:
    """``np.array_equal`` of two scans, a block of rows at a time, stopping at the
    first difference (two different scans differ in the first rows: no full pass
    and no full-size comparison mask).

    Examples
    --------
    >>> x = np.zeros((200, 3), np.uint8)
    >>> _same_pixels(x, x.copy()), _same_pixels(x, np.eye(200, 3, dtype=np.uint8))
    (True, False)
    """
    if a.shape != b.shape:
        return False
    return all(np.array_equal(a[r : r + rows], b[r : r + rows]) for r in range(0, len(a), rows))


def compare(
    baseline: str | Path,
    current: str | Path,
    settings: Settings | None = None,
    *,
    light: Light | Literal["auto"] | None = None,
    light_source: str = "given",
    strict_light: bool | None = None,
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
        The lamp, ``"auto"`` to estimate it from the registered pair, or None
        for the settings' ``light_azimuth`` (default ``"auto"``). A given lamp
        is checked against the scans' estimate; a disagreement is a warning
        in ``Comparison.light_used.warnings`` (an error with ``strict_light``).
        With "auto", an estimate that knows only the axis of the lamp (not
        which end) is refused: the polarity of every region depends on it.
    light_source
        Where a given ``light`` came from: given, sidecar, ingest or default.
    strict_light
        A given lamp the scans contradict is an error (default: settings).
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
    match_cv2_threads()  # OpenCV honours OMP_NUM_THREADS as torch does
    if settings.method not in METHODS:
        choices = ", ".join(METHODS)
        raise MonitorError(f"unknown method {settings.method!r}; choose one of: {choices}")
    if settings.scale not in SCALES:
        raise MonitorError(f"unknown scale {settings.scale!r}; choose one of: {', '.join(SCALES)}")
    if light is None:
        light = settings_light(settings) or "auto"
    if isinstance(light, Light):
        check_light_values(light.azimuth_deg, light.elevation_deg, f"{light_source} light")
    elif light != "auto":
        raise MonitorError(f"light must be a Light or 'auto', got {light!r}")
    strict = settings.strict_light if strict_light is None else strict_light
    stages = _Stages(progress, ("read", "register", "resample", "light", "change", "regions"))

    with stages.stage("read"):
        base_img = read_scan(baseline, max_pixels=settings.max_pixels)
        cur_img = read_scan(current, max_pixels=settings.max_pixels)
    if _same_pixels(base_img.pixels, cur_img.pixels):
        if progress:
            progress("done", 1.0)
        # same pixels: nothing is measured, so no lamp is needed (frontal stands in)
        lamp = light if isinstance(light, Light) else Light(0.0, 90.0)
        return _identical(baseline, current, base_img.pixels, settings, lamp, px_per_mm,
                          tuple(stages.timings))
    # "auto" only for a method with a multi-scale route and a scan big enough for one
    route = scale_route(settings, base_img.pixels.shape[:2])
    if route == "auto":  # progress fractions count this route's stages
        stages.names = ("read", "register", "resample", "light", "appearance", "resample",
                        "change", "regions")
    with stages.stage("register"):
        reg = register(
            base_img.pixels,
            cur_img.pixels,
            max_px=settings.registration_max_px,
            min_inliers=settings.registration_min_inliers,
            residual_grid=settings.residual_grid,
        )
    with stages.stage("resample"):
        s = analysis_scale(base_img.pixels.shape[:2], settings.analysis_max_px)
        base_small = downsample(base_img.pixels, s)
        preview = _preview8(base_small)
        base_lin, warped, valid = resample_pair(base_small, base_img.pixels.shape[:2],
                                                cur_img.pixels, reg, s)
        if route != "auto":
            del cur_img  # the multi-scale route works on the full-resolution scans
    with stages.stage("light"):
        readable = usable_fraction(trusted_pixels(valid, base_lin, warped), valid)
        if readable < settings.min_usable_fraction:
            # too little of the overlap can be read to estimate or check a lamp: the
            # change stage says the comparison cannot tell (status "insufficient")
            lamp = light if isinstance(light, Light) else Light(180.0, settings.light_elevation)
            used = LightUsed(
                light=lamp, source=light_source if isinstance(light, Light) else "default",
                azimuth_uncertainty_deg=None, elevation_source="given",
                warnings=(f"the lamp was not estimated or checked: only {readable:.0%} of the "
                          "overlap can be read",),
            )
            light = lamp
        else:
            base_estimate = estimate_scan_light(base_lin)
            # interpolation may overshoot [0, 1] a little: the estimator wants linear RGB;
            # the current is estimated on the baseline's grid, so both are in one frame
            cur_on_base = np.where(valid[..., None], np.clip(warped, 0.0, 1.0), 0.0)
            cur_on_base = cur_on_base.astype(np.float32)
            cur_estimate = estimate_scan_light(cur_on_base, valid)
            pair_estimate = estimate_pair_light(base_lin, cur_on_base, valid)
            el_default = settings.light_elevation == Settings().light_elevation
            used = resolve_light(
                None if light == "auto" else light,
                "estimated" if light == "auto" else light_source,
                pair_estimate,
                elevation_deg=settings.light_elevation,
                elevation_source="default" if el_default else "given",
                baseline_estimate=base_estimate,
                current_estimate=cur_estimate,
                strict=strict,
            )
            light = used.light
    if route == "auto":  # the lamp is settled on the analysis grid, then every scale
        # what the grid tells apart from relief -- appearance change (stains, varnish)
        # and how much of the overlap can be read -- is measured there too: the
        # multi-scale route reports relief, the grid its context
        with stages.stage("appearance"):
            grid_change = photometric_change(base_lin, warped, valid, light, scale=s,
                                             device=select_device(settings.device))
            context = _grid_context(grid_change, reg, preview, settings, px_per_mm)
        del base_lin, warped, valid, grid_change
        # handed over, not kept here: _compare_multiscale drops the current scan once warped
        held_current = [cur_img]
        del cur_img
        result = _compare_multiscale(
            baseline, current, settings, light, px_per_mm, stages, base_img, held_current.pop(),
            reg, context,
        )
        return dataclasses.replace(result, light_used=used)
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
    in_px = height_units(change.method, change.model_id) == "px"
    with stages.stage("regions"):
        min_frac = settings.min_region_frac
        regions = find_regions(
            change, z=settings.significance_z, min_diameter_frac=min_frac, px_per_mm=px_per_mm,
            min_height=settings.min_height_change if in_px else 0.0,
        )
        context = _grid_context(change, reg, preview, settings, px_per_mm)
    appearance, outline, status, warnings = (context.appearance, context.outline,
                                             context.status, context.warnings)

    params: dict[str, object] = {
        "method": settings.method,
        "scale": "grid",
        "depth": settings.depth if settings.method == "depth" else None,
        "device": settings.device,
        "light_azimuth": light.azimuth_deg,
        "light_elevation": light.elevation_deg,
        "light_source": used.source,
        "light_azimuth_uncertainty": used.azimuth_uncertainty_deg,
        "analysis_max_px": settings.analysis_max_px,
        "registration_max_px": settings.registration_max_px,
        "significance_z": settings.significance_z,
        "min_region_frac": settings.min_region_frac,
        "min_height_change": settings.min_height_change if in_px else None,
        "min_usable_fraction": settings.min_usable_fraction,
        "status": status,
        "usable_fraction": round(change.usable_fraction, 4),
    }
    return Comparison(
        baseline_path=str(baseline),
        current_path=str(current),
        baseline_shape=(base_img.height, base_img.width),
        registration=reg,
        change=change,
        regions=regions,
        light=light,
        light_used=used,
        params=params,
        timings=tuple(stages.timings),
        software_version=__version__,
        px_per_mm=px_per_mm,
        preview=preview,
        status=status,
        warnings=warnings,
        appearance_regions=appearance,
        outline=outline,
        min_detectable_px=min_frac * max(base_img.height, base_img.width),
    )


@dataclasses.dataclass(frozen=True)
class _GridContext:
    """What a comparison reports beside its relief regions, read on the analysis grid."""

    appearance: tuple[AppearanceRegion, ...]
    outline: Outline
    status: Status
    warnings: tuple[str, ...]
    usable_fraction: float


def _grid_context(
    change: ChangeMap, reg: Registration, preview: np.ndarray, settings: Settings,
    px_per_mm: float | None,
) -> _GridContext:
    """Appearance findings, the work's outline and the usability status of a grid change map."""
    appearance = find_appearance_regions(
        change, min_diameter_frac=settings.min_region_frac, px_per_mm=px_per_mm
    )
    small_outline = find_outline(preview)
    s = change.scale
    outline = Outline(tuple(v / s for v in small_outline.bbox), small_outline.source)  # type: ignore[arg-type]
    status, warnings = _usability(change.usable_fraction, settings.min_usable_fraction)
    # a residual grid the matches could not support is the user's business (the
    # cross-validated choice not to use one is recorded in registration.json only)
    warnings = (*warnings, *(n for n in reg.notes if not n.startswith("residual warp not used")))
    return _GridContext(appearance, outline, status, warnings, change.usable_fraction)


def _multiscale_of(
    settings: Settings, held: dict[str, np.ndarray], valid: np.ndarray, light: Light,
    px_per_mm: float | None,
) -> MultiScaleChange:
    """Every scale of the full-resolution pair by the settings' method; ``held`` is cleared."""
    device = select_device(settings.device)
    common: dict[str, Any] = {
        "px_per_mm": px_per_mm, "device": device, "min_height_mm": settings.fine_min_height_mm,
        "min_height_px": settings.fine_min_height_px, "release": held.clear,
    }
    if settings.method == "pair":
        from monitor.change.pair import load_pair_model
        from monitor.change.pair_multiscale import pair_multiscale_change

        return pair_multiscale_change(held["baseline"], held["current"], valid, light,
                                      model=load_pair_model(device), **common)
    from monitor.change.multiscale import multiscale_change

    return multiscale_change(held["baseline"], held["current"], valid, light,
                             tile=settings.tile, **common)


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
    context: _GridContext,
) -> Comparison:
    """The ``scale="auto"`` route: every scale at full resolution, in tiles."""
    with stages.stage("resample"):
        base_lin = to_linear(base_img.pixels)
        cur_lin = to_linear(cur_img.pixels)
        del cur_img
        warped, valid = warp_to_baseline(cur_lin, reg, out_shape=base_lin.shape[:2])
        del cur_lin
    with stages.stage("change"):
        # the scans are held only here, so multiscale_change can let them go once it
        # has their slope (release): the levels then run without 2 full-res float scans
        held = {"baseline": base_lin, "current": warped}
        del base_lin, warped
        ms = _multiscale_of(settings, held, valid, light, px_per_mm)
        del valid
        s = ms.preview_scale
        preview = _preview8(downsample(base_img.pixels, s))
        level = next(lv for lv in ms.levels if abs(lv.pitch_px * s - 1.0) < 1e-6)
        change = ChangeMap(
            height=ms.preview, scale=s, method=settings.method,
            noise_sigma=level.noise_sigma,
            model_id=ms.model_id, weights_sha256=ms.weights_sha256,
            integration_direction=ms.integration_direction,
            usable_fraction=context.usable_fraction,
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
        # the height floor: the mm setting applies with px/mm, the px one without
        "fine_min_height_mm": settings.fine_min_height_mm,
        "fine_min_height_px": settings.fine_min_height_px,
        "levels": [dataclasses.asdict(lv) for lv in ms.levels],
        "min_usable_fraction": settings.min_usable_fraction,
        "status": context.status,
        "usable_fraction": round(context.usable_fraction, 4),
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
        status=context.status,
        warnings=context.warnings,
        appearance_regions=context.appearance,
        outline=context.outline,
    )


#: Below this share of the overlap usable, a result that is still "ok" carries a warning.
WARN_USABLE_FRACTION = 0.9


def _usability(fraction: float, minimum: float) -> tuple[Status, tuple[str, ...]]:
    """Status and warnings from the share of the overlap an estimate could use."""
    if fraction < minimum:
        return "insufficient", (
            f"insufficient: only {fraction:.0%} of the overlap is usable (clipped, masked or "
            f"too dark; at least {minimum:.0%} needed), so this comparison cannot tell "
            "whether anything changed",
        )
    if fraction < WARN_USABLE_FRACTION:
        return "ok", (
            f"only {fraction:.0%} of the overlap is usable (clipped, masked or too dark): "
            "changes were searched there only",
        )
    return "ok", ()


def _identical(
    baseline: str | Path,
    current: str | Path,
    pixels: np.ndarray,
    settings: Settings,
    light: Light,
    px_per_mm: float | None,
    timings: tuple[StageTiming, ...],
) -> Comparison:
    """The comparison of two scans with the same pixels: no change, nothing measured."""
    h, w = pixels.shape[:2]
    s = analysis_scale((h, w), settings.analysis_max_px)
    small = downsample(pixels, s)
    reg = Registration(
        homography=np.eye(3), baseline_shape=(h, w), current_shape=(h, w), n_matches=0,
        n_inliers=0, rmse_homography_px=0.0, rmse_px=0.0,
    )
    change = ChangeMap(
        height=np.zeros(small.shape[:2], np.float32), scale=small.shape[1] / w,
        method=settings.method, noise_sigma=0.0, model_id="identical pixels",
    )
    return Comparison(
        baseline_path=str(baseline), current_path=str(current), baseline_shape=(h, w),
        registration=reg, change=change, regions=(), light=light,
        params={"method": settings.method, "status": "identical", "usable_fraction": 1.0},
        timings=timings, software_version=__version__, px_per_mm=px_per_mm,
        preview=_preview8(small), status="identical",
        warnings=("no change: the two scans are identical (the same pixels), so there is "
                  "nothing to measure",),
    )


@functools.lru_cache(maxsize=32)
def _files_sha256(paths: tuple[str, ...], stamp: tuple[tuple[int, int], ...]) -> str:
    """Hash of several files' names and bytes (``stamp``: size/mtime, to invalidate)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).name.encode() + b"|")
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _weights_of(paths: list[Path]) -> str:
    files = sorted(str(p) for p in paths if p.is_file())
    stamps = tuple((os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in files)
    return _files_sha256(tuple(files), stamps) if files else "missing"


def _hf_folder(ref: str) -> Path | None:
    path = Path(ref).expanduser()
    if ref.startswith((".", "/", "~")) or path.exists():
        return path
    try:  # a hub id: its snapshot in the local cache, when there is one
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(ref, local_files_only=True))
    except Exception:  # not cached, no huggingface_hub: the id alone names it
        return None


def result_fingerprint(settings: Settings) -> dict[str, object]:
    """What, beyond the settings, decides a comparison's numbers: device and weights.

    The store's cache key includes this, so that a comparison computed on
    another device (CUDA runs the networks in reduced precision) or with other
    weights (``monitor train``, a replaced ``hf:`` folder) is not reused.

    Parameters
    ----------
    settings
        The comparison's settings (method, depth estimator, device).

    Returns
    -------
    dict
        ``device`` (the resolved device type) and ``weights`` (sha256 of the
        weight files the method reads, or None when it reads none).

    Examples
    --------
    >>> result_fingerprint(Settings(device="cpu"))
    {'device': 'cpu', 'weights': None}
    """
    from monitor.nets import WEIGHTS_DIR

    device = select_device(settings.device).type
    weights: str | None = None
    if settings.method == "pair":
        weights = _weights_of([WEIGHTS_DIR / "pair.safetensors"])
    elif settings.method == "depth" and settings.depth == "relief":
        weights = _weights_of([WEIGHTS_DIR / "relief.safetensors"])
    elif settings.method == "depth" and settings.depth.startswith("hf:"):
        ref = settings.depth[3:].strip()
        folder = _hf_folder(ref)
        if folder is None or not folder.is_dir():
            weights = f"hf:{ref}"
        else:
            names = ("*.safetensors", "*.bin", "config.json", "preprocessor_config.json")
            weights = _weights_of([p for n in names for p in folder.glob(n)])
    return {"device": device, "weights": weights}


def resample_pair(
    base_small: np.ndarray,
    base_shape: tuple[int, int],
    current: np.ndarray,
    reg: Registration,
    scale: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both scans on the analysis grid: the reduced baseline and the warped current.

    Parameters
    ----------
    base_small
        The baseline reduced by :func:`monitor.io.downsample` with ``scale``
        (encoded pixels).
    base_shape
        (rows, cols) of the full-resolution baseline.
    current
        The full-resolution CURRENT scan (encoded pixels).
    reg
        CURRENT -> BASELINE registration at full resolution.
    scale
        The analysis scale asked for (the reductions round it per axis).

    Returns
    -------
    tuple of numpy.ndarray
        Baseline and warped current in linear light (H' x W' x 3 float32) and
        the bool mask where the current has data.

    Examples
    --------
    >>> base_lin, warped, valid = resample_pair(small, (960, 1280), cur, reg, 0.5)  # doctest: +SKIP
    """
    base_lin = to_linear(base_small)
    # bring CURRENT to about the same pixel size as the analysis grid
    h_scale = float(np.sqrt(abs(np.linalg.det(reg.homography[:2, :2]))))
    cur_small = downsample(current, min(1.0, scale * h_scale))
    cur_lin = to_linear(cur_small)
    del cur_small
    # the scales each reduction really applied, per axis (rounded sizes): the warp
    # must land output pixel [r, c] on the reduced baseline's pixel [r, c]
    warped, valid = warp_to_baseline(
        cur_lin, reg, image_scale=(cur_lin.shape[0] / current.shape[0],
                                   cur_lin.shape[1] / current.shape[1]),
        out_shape=base_lin.shape[:2],
        out_scale=(base_lin.shape[0] / base_shape[0], base_lin.shape[1] / base_shape[1]),
    )
    return base_lin, warped, valid


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
        out: np.ndarray = filled
    else:
        out = cv2.resize(filled, (cols, rows), interpolation=cv2.INTER_LINEAR)
        finite = cv2.resize(finite.astype(np.uint8), (cols, rows), interpolation=cv2.INTER_NEAREST)
    out[finite == 0] = np.nan
    return out


def status_message(comparison: Comparison) -> str:
    """One plain sentence: what the comparison found, or why it cannot tell.

    Parameters
    ----------
    comparison
        A result of :func:`compare`.

    Returns
    -------
    str

    Examples
    --------
    >>> status_message(result)  # doctest: +SKIP
    'no change: the two scans are identical (the same pixels), so there is nothing to measure'
    """
    if comparison.status in ("identical", "insufficient"):
        return comparison.warnings[0]
    n = len(comparison.regions)
    if n == 0:
        return "no significant change found"
    return f"{n} region{'s' if n != 1 else ''} of significant change"


def level_of_detection(comparison: Comparison) -> float:
    """Smallest significant change of a comparison: ``significance_z`` x the noise level.

    In the change map's units (baseline pixel pitch for photometric / pair).
    """
    z = float(comparison.params.get("significance_z", 6.0) or 6.0)  # type: ignore[arg-type]
    return z * float(comparison.change.noise_sigma)


def display_units(
    method: str, px_per_mm: float | None, model_id: str = ""
) -> tuple[str, str, float]:
    """How heights of ``method`` are shown: (kind, unit label, factor from map units).

    Photometric and pair heights are in baseline pixel pitch: mm when the scale
    is known (factor ``1 / px_per_mm``), else px; depth-difference heights
    are relative and stay so.

    Examples
    --------
    >>> display_units("photometric", 4.0)
    ('height', 'mm', 0.25)
    >>> display_units("depth", 4.0)
    ('height', 'rel.', 1.0)
    """
    if height_units(method, model_id) == "px":
        if px_per_mm:
            return "height", "mm", 1.0 / px_per_mm
        return "height", "px", 1.0
    return "height", "rel.", 1.0


def summary(comparison: Comparison) -> dict[str, object]:
    """JSON-ready summary: the contract of ``regions.json``."""
    reg = comparison.registration
    change = comparison.change
    bulges = [r for r in comparison.regions if r.polarity == "bulge"]
    recessions = [r for r in comparison.regions if r.polarity == "recession"]
    in_px = height_units(change.method, change.model_id) == "px"
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
        if height_units(change.method, change.model_id) == "px"
        else "relative (depth estimator units, + = towards the viewer)",
        "light": _light_summary(comparison),
        "px_per_mm": comparison.px_per_mm,
        "noise_sigma": change.noise_sigma,
        "alignment": asdict(change.alignment) if change.alignment else None,
        "registration": {
            "inliers": reg.n_inliers,
            "matches": reg.n_matches,
            "rmse_px": reg.rmse_px,
        },
        "status": comparison.status,
        "usable_fraction": change.usable_fraction,
        "message": status_message(comparison),
        "warnings": list(comparison.warnings),
        "level_of_detection": level_of_detection(comparison),
        "level_of_detection_mm": None
        if comparison.px_per_mm is None or not in_px
        else level_of_detection(comparison) / comparison.px_per_mm,
        "outline": None if comparison.outline is None
        else comparison.outline.to_dict(comparison.px_per_mm),
        "counts": {"bulge": len(bulges), "recession": len(recessions),
                   "appearance": len(comparison.appearance_regions)},
        "min_detectable": _min_detectable(comparison),
        "regions": [r.to_dict(comparison.px_per_mm, height_in_px=in_px)
                    for r in comparison.regions],
        "appearance": [a.to_dict(comparison.px_per_mm) for a in comparison.appearance_regions],
        "params": comparison.params,
        "timings": [asdict(t) for t in comparison.timings],
    }


def _light_summary(comparison: Comparison) -> dict[str, object]:
    """The lamp used, its source and uncertainty, and the scans' evidence."""
    if comparison.light_used is None:
        return {**asdict(comparison.light), "source": "given"}
    used = comparison.light_used.to_dict()
    return {
        "azimuth_deg": comparison.light.azimuth_deg,
        "elevation_deg": comparison.light.elevation_deg,
        **{k: v for k, v in used.items() if k not in ("azimuth_deg", "elevation_deg")},
    }


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_stale_outputs(out: Path) -> list[Path]:
    """Remove temporary folders beside ``out`` left by runs that died (kill -9, power loss).

    A run's temporary folder is named ``.<out>.tmp-<pid>-<random>``; only
    those whose process no longer exists are removed, so another run writing
    to the same folder right now keeps its own.

    Parameters
    ----------
    out
        The output folder.

    Returns
    -------
    list of Path
        The folders removed.

    Examples
    --------
    >>> clean_stale_outputs(Path("/nonexistent/out"))
    []
    """
    removed = []
    try:
        siblings = list(out.parent.glob(f".{out.name}.tmp-*-*"))
    except OSError:
        return []
    for path in siblings:
        pid_text = path.name[len(f".{out.name}.tmp-"):].split("-", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or _pid_alive(int(pid_text)):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


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
    partial outputs. Existing files of the same names are replaced. The
    temporary folder carries this process's id; leftovers of runs that died
    are removed first (:func:`clean_stale_outputs`).

    Returns
    -------
    dict
        File name -> path, for :data:`OUTPUT_FILES`.
    """
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_outputs(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
    try:
        (tmp / "regions.json").write_text(json.dumps(summary(comparison), indent=2) + "\n")
        reg_dict = registration_to_dict(comparison.registration)
        (tmp / "registration.json").write_text(json.dumps(reg_dict, indent=2) + "\n")
        write_float_tiff(tmp / "change.tif", full_resolution_change(comparison))
        change = comparison.change
        values, units, factor = display_units(
            change.method, comparison.px_per_mm, change.model_id
        )
        lod = level_of_detection(comparison) * factor
        heatmap_png(
            change.height * factor,
            tmp / "heatmap.png",
            units=units,
            title=f"height change ({change.method})",
            vmax=colour_limit([r.peak * factor for r in comparison.regions], lod),
            lod=lod,
            px_per_mm=None if comparison.px_per_mm is None else comparison.px_per_mm * change.scale,
            regions=comparison.regions,
            appearance=comparison.appearance_regions,
            region_scale=change.scale,
        )
        if comparison.preview is None:
            raise MonitorError("comparison has no preview image for the overlay")
        overlay_png(comparison.preview, comparison.regions, tmp / "overlay.png",
                    scale=change.scale, appearance=comparison.appearance_regions,
                    px_per_mm=comparison.px_per_mm, width_in=7.0)
        names: tuple[str, ...] = OUTPUT_FILES
        if comparison.normal_map is not None:  # multi-light: the baseline's normal map
            write_png(tmp / "normals.png", normals_rgb(comparison.normal_map.normals))
            names = (*OUTPUT_FILES, "normals.png")
        if not out.exists():
            os.rename(tmp, out)  # one atomic step: the folder appears complete
        else:
            for name in names:
                os.replace(tmp / name, out / name)
        return {name: out / name for name in names}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
