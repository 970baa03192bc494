"""Multi-light captures composed end to end: above ``change/`` and ``depth/``.

``change/`` and ``depth/`` share physics only through :mod:`monitor.photometry`;
this module composes them: photometric stereo of each capture
(:func:`monitor.depth.photometric_stereo.photometric_stereo`), registration of
the mean images, the slope-difference change
(:func:`monitor.change.multilight.normal_change`) and the regions.

- :func:`capture_normals` -- one capture at analysis resolution: its normal map,
  the full-resolution mean image and the scale;
- :func:`compare_captures` -- two captures -> :class:`~monitor.results.Comparison`
  (the same contract as :func:`monitor.pipeline.compare`, so
  :func:`monitor.pipeline.write_outputs` writes ``regions.json``, ``change.tif``,
  the heatmap and the overlay unchanged);
- :func:`nearest_lamp_image` -- a capture's photograph taken nearest a given
  lamp, for comparing a capture with one ordinary photograph under that lamp.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from monitor import __version__
from monitor.capture import is_capture, read_capture
from monitor.change.multilight import normal_change
from monitor.config import Settings, settings_light
from monitor.depth.base import select_device
from monitor.depth.photometric_stereo import photometric_stereo
from monitor.errors import MonitorError
from monitor.io import analysis_scale, downsample, from_linear, read_image, to_linear
from monitor.regions import find_regions
from monitor.registration import register, warp_to_baseline
from monitor.results import Capture, Comparison, Light, NormalMap, StageTiming

__all__ = [
    "MAX_LAMP_OFFSET_DEG",
    "CaptureNormals",
    "capture_normals",
    "compare_captures",
    "compare_scans",
    "is_capture",
    "nearest_lamp_image",
]

#: A capture's photograph stands in for a single-lamp photo only if its lamp is
#: at most this far (angle between the lamp vectors) from the photo's lamp.
MAX_LAMP_OFFSET_DEG = 10.0


@dataclass(frozen=True)
class CaptureNormals:
    """A capture read at analysis resolution: linear images, normal map, mean image, scale."""

    capture: Capture
    images: np.ndarray  # N x H x W x 3 linear, analysis resolution
    mean_srgb: np.ndarray  # full-resolution mean image, sRGB uint8
    scale: float  # analysis px per full-resolution px
    normal_map: NormalMap


def capture_normals(
    capture: str | Path | Capture,
    *,
    max_px: int = 1200,
    device: torch.device | str | None = None,
) -> CaptureNormals:
    """Read a capture and run photometric stereo on it at analysis resolution.

    Parameters
    ----------
    capture
        Capture folder / light file or a capture already read.
    max_px
        Long side of the analysis grid.
    device
        Torch device for photometric stereo.

    Returns
    -------
    CaptureNormals

    Raises
    ------
    MonitorError
        From reading the capture or photometric stereo.

    Examples
    --------
    >>> cn = capture_normals("../shared/real/leaves12", max_px=400)  # doctest: +SKIP
    >>> cn.normal_map.normals.shape[2]  # doctest: +SKIP
    3
    """
    cap = capture if isinstance(capture, Capture) else read_capture(capture)
    w, h = cap.size
    s = min(1.0, max_px / max(w, h))
    mean = np.zeros((h, w, 3), np.float64)
    small: list[np.ndarray] = []
    for f in cap.paths:
        lin = to_linear(read_image(f).pixels)
        mean += lin
        small.append(downsample(lin, s) if s < 1 else lin)
    mean /= len(cap.paths)
    images = np.stack(small)
    nm = photometric_stereo(images, cap.lights, device=device)
    return CaptureNormals(cap, images, from_linear(mean.astype(np.float32), 8), s, nm)


def _jacobian(hom: np.ndarray, point: tuple[float, float]) -> np.ndarray:
    """d(baseline xy) / d(current xy) of a homography at a current point."""
    x, y = point
    v = hom @ np.array([x, y, 1.0])
    jac = np.empty((2, 2))
    for j in range(2):
        dv = hom[:, j]
        jac[:, j] = (dv[:2] * v[2] - v[:2] * dv[2]) / (v[2] ** 2)
    return jac


def _grey(albedo: np.ndarray) -> np.ndarray:
    return albedo.mean(axis=2) if albedo.ndim == 3 else albedo


def compare_captures(
    baseline: str | Path | Capture,
    current: str | Path | Capture,
    *,
    settings: Settings | None = None,
    max_px: int = 1200,
    device: torch.device | str | None = None,
    px_per_mm: float | None = None,
) -> Comparison:
    """Compare two multi-light captures of one artwork (both slope axes).

    Parameters
    ----------
    baseline, current
        Capture folders / light files (see :func:`monitor.capture.read_capture`)
        or captures already read.
    settings
        Region thresholds (``significance_z``, ``min_region_frac``) and the
        device (``settings.device``, unless ``device`` is given).
    max_px
        Long side of the analysis grid (photometric stereo and change).
    device
        Torch device for photometric stereo and filtering.
    px_per_mm
        Baseline pixels per millimetre, when known.

    Returns
    -------
    Comparison
        As :func:`monitor.pipeline.compare`: registration of the mean images,
        the ``multilight`` change map, regions; ``params`` record the lamp counts.
        ``light`` is frontal (the capture has no single lamp).

    Raises
    ------
    MonitorError
        From reading, registration (not the same artwork) or an empty overlap.

    Examples
    --------
    >>> cmp = compare_captures("scan-2024/", "scan-2026/")  # doctest: +SKIP
    >>> [r.polarity for r in cmp.regions]  # doctest: +SKIP
    ['bulge']
    """
    settings = settings or Settings()
    device = device if device is not None else select_device(settings.device)
    timings: list[StageTiming] = []
    t0 = time.perf_counter()
    cap_b = baseline if isinstance(baseline, Capture) else read_capture(baseline)
    cap_c = current if isinstance(current, Capture) else read_capture(current)
    cn_b = capture_normals(cap_b, max_px=max_px, device=device)
    cn_c = capture_normals(cap_c, max_px=max_px, device=device)
    timings.append(StageTiming("read + photometric stereo", time.perf_counter() - t0, 0.0))
    t0 = time.perf_counter()
    reg = register(cn_b.mean_srgb, cn_c.mean_srgb)
    timings.append(StageTiming("register", time.perf_counter() - t0, 0.0))
    t0 = time.perf_counter()
    nm_b, nm_c = cn_b.normal_map, cn_c.normal_map
    pc, qc = nm_c.gradients()
    # slopes are covectors: baseline slope = m * J^-T current slope (J = d xb / d xc,
    # m = the magnification, since heights are in pixels of each scan)
    ch, cw = reg.current_shape
    jac = _jacobian(reg.homography, (cw / 2.0, ch / 2.0))
    mag = math.sqrt(abs(float(np.linalg.det(jac))))
    jit = np.linalg.inv(jac).T * mag
    pcb = jit[0, 0] * pc + jit[0, 1] * qc
    qcb = jit[1, 0] * pc + jit[1, 1] * qc
    stack = np.stack([pcb, qcb, nm_c.confidence, _grey(nm_c.albedo)], axis=-1)
    stack = stack.astype(np.float32)
    out_shape = cn_b.images.shape[1:3]
    warped, valid = warp_to_baseline(
        stack, reg, image_scale=cn_c.scale, out_shape=out_shape, out_scale=cn_b.scale
    )
    change = normal_change(
        nm_b,
        nm_c,
        valid & np.isfinite(warped[..., 0]),
        scale=cn_b.scale,
        current_slopes=(warped[..., 0], warped[..., 1]),
        current_confidence=np.nan_to_num(warped[..., 2]),
        current_albedo=warped[..., 3],
        device=device,
    )
    regions = find_regions(
        change,
        z=settings.significance_z,
        min_diameter_frac=settings.min_region_frac,
        px_per_mm=px_per_mm,
    )
    timings.append(StageTiming("change", time.perf_counter() - t0, 0.0))
    preview = from_linear(np.clip(cn_b.images.mean(axis=0), 0, 1), 8)
    return Comparison(
        baseline_path=cap_b.source,
        current_path=cap_c.source,
        baseline_shape=(cap_b.size[1], cap_b.size[0]),
        registration=reg,
        change=change,
        regions=regions,
        light=Light(0.0, 90.0),
        params={
            "method": "multilight",
            "n_lights_baseline": cap_b.n_lights,
            "n_lights_current": cap_c.n_lights,
            "device": str(device),
            "analysis_max_px": max_px,
            "significance_z": settings.significance_z,
            "min_region_frac": settings.min_region_frac,
        },
        timings=tuple(timings),
        software_version=__version__,
        px_per_mm=px_per_mm,
        preview=preview,
        normal_map=nm_b,
    )


def nearest_lamp_image(
    capture: str | Path | Capture,
    light: Light,
    *,
    max_offset_deg: float = MAX_LAMP_OFFSET_DEG,
) -> tuple[str, float]:
    """The capture's photograph whose lamp is nearest ``light``, and the angle between them.

    A capture compared with one ordinary photograph is compared through its
    own photograph taken under (nearly) the photo's lamp: the single-lamp
    methods need the same lamp in both scans. Rendering the capture under an
    arbitrary lamp from its normal map is not done (the Lambertian re-render
    misses gloss and cast shadows, which would read as change).

    Parameters
    ----------
    capture
        Capture folder / light file or a capture already read.
    light
        The photograph's lamp.
    max_offset_deg
        Refuse when no lamp of the capture is this close.

    Returns
    -------
    (str, float)
        Image path and the angle in degrees between its lamp and ``light``.

    Raises
    ------
    MonitorError
        No lamp of the capture within ``max_offset_deg``.

    Examples
    --------
    >>> path, off = nearest_lamp_image("rti/", Light(180, 30))  # doctest: +SKIP
    """
    cap = capture if isinstance(capture, Capture) else read_capture(capture)
    v = np.asarray(light.vector(), np.float64)
    v /= np.linalg.norm(v)
    cos = np.clip(cap.lights @ v, -1.0, 1.0)
    k = int(np.argmax(cos))
    offset = math.degrees(math.acos(float(cos[k])))
    if offset > max_offset_deg:
        raise MonitorError(
            f"{Path(cap.source).name}: no lamp within {max_offset_deg:g} deg of the photo's lamp "
            f"(azimuth {light.azimuth_deg:g}, elevation {light.elevation_deg:g}; nearest is "
            f"{offset:.0f} deg off): give --light-azimuth/--light-elevation of the photo"
        )
    return cap.paths[k], offset


def _photo_lamp(photo: str | Path, settings: Settings) -> Light:
    """The lamp of one photograph, estimated from its shading, or a one-line refusal."""
    from monitor.light import estimate_scan_light

    img = read_image(photo, max_pixels=settings.max_pixels)
    small = downsample(img.pixels, analysis_scale(img.pixels.shape[:2], 1024))
    est = estimate_scan_light(to_linear(small))
    if not est.confident:
        raise MonitorError(
            f"cannot tell the lamp of {Path(photo).name} from its shading ({est.note}); "
            "give --light-azimuth/--light-elevation of the photo"
        )
    return est.light(float(settings.light_elevation))


def compare_scans(
    baseline: str | Path,
    current: str | Path,
    settings: Settings | None = None,
    *,
    light: Light | Literal["auto"] | None = None,
    px_per_mm: float | None = None,
) -> Comparison:
    """Compare two scans where either may be a multi-light capture.

    Both captures: :func:`compare_captures` (both slope axes). One capture and
    one photograph: the capture's photograph under the lamp nearest the
    photo's (:func:`nearest_lamp_image`) is compared with the photo by
    :func:`monitor.pipeline.compare` under the photo's lamp; ``params`` record
    which image stood in and how far its lamp was. Two photographs:
    :func:`monitor.pipeline.compare`.

    Parameters
    ----------
    baseline, current
        Image files, capture folders or light files.
    settings
        As for :func:`monitor.pipeline.compare`.
    light
        The photograph's lamp; None or ``"auto"``: the settings' lamp, else
        the photograph's own estimate (:func:`monitor.light.estimate_scan_light`),
        refused when it does not settle the lamp.
    px_per_mm
        Baseline pixels per millimetre, when known.

    Returns
    -------
    Comparison

    Raises
    ------
    MonitorError
        From either route; no lamp of the capture near the photo's lamp.

    Examples
    --------
    >>> cmp = compare_scans("rti-2024/", "rti-2026/")  # doctest: +SKIP
    >>> cmp.change.method  # doctest: +SKIP
    'multilight'
    """
    from monitor.pipeline import compare as compare_photos

    settings = settings or Settings()
    multi_b, multi_c = is_capture(baseline), is_capture(current)
    if multi_b and multi_c:
        return compare_captures(baseline, current, settings=settings, px_per_mm=px_per_mm)
    if not (multi_b or multi_c):
        return compare_photos(baseline, current, settings, light=light, px_per_mm=px_per_mm)
    if not isinstance(light, Light):
        light = settings_light(settings) or _photo_lamp(
            current if multi_b else baseline, settings
        )
    cap = read_capture(baseline if multi_b else current)
    stand_in, offset = nearest_lamp_image(cap, light)
    b, c = (stand_in, current) if multi_b else (baseline, stand_in)
    result = compare_photos(b, c, settings, light=light, px_per_mm=px_per_mm)
    params = dict(result.params)
    params.update({
        "multilight_capture": cap.source,
        "multilight_side": "baseline" if multi_b else "current",
        "multilight_n_lights": cap.n_lights,
        "multilight_stand_in": stand_in,
        "multilight_lamp_offset_deg": round(offset, 2),
    })
    return dataclasses.replace(result, params=params)
