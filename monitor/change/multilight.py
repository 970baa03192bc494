"""Change between two multi-light captures: both slope axes, no blind direction.

A single lamp sees only the slope along its own direction; photometric stereo
(:mod:`monitor.depth.photometric_stereo`) recovers both slopes at every pixel.
The change is the difference of the two captures' slope fields (the current
one resampled onto the baseline grid and rotated by the registration),
integrated into height change with the confidence-weighted Poisson solver (or
Frankot-Chellappa above ``POISSON_MAX_PX``), with the lowest frequencies
(integration drift, lamp-intensity drift) removed. The level of detection is
the local robust spread of that map, raised where confidence is low (a pixel
neither capture could read is "could not tell", never "no change").

:func:`compare_captures` is the whole route for two capture folders: read,
photometric stereo per capture at analysis resolution, register the mean
images, compare, find regions -- returning the same
:class:`~monitor.results.Comparison` as :func:`monitor.pipeline.compare`,
so :func:`monitor.pipeline.write_outputs` writes ``regions.json``,
``change.tif``, the heatmap and the overlay unchanged.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import kornia
import numpy as np
import torch
from scipy import ndimage

from monitor import __version__
from monitor.capture import read_capture
from monitor.change.methods import local_noise, robust_sigma
from monitor.config import Settings
from monitor.depth.base import select_device
from monitor.depth.integrate import POISSON_MAX_PX, frankot_chellappa, poisson
from monitor.depth.photometric_stereo import photometric_stereo
from monitor.depth.shading import smooth_background
from monitor.errors import MonitorError
from monitor.io import downsample, from_linear, read_image, to_linear
from monitor.regions import find_regions
from monitor.registration import register, warp_to_baseline
from monitor.results import Capture, ChangeMap, Comparison, Light, NormalMap, StageTiming

MODEL_ID = "monitor/multilight-ps-v1"


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    k = 2 * int(math.ceil(3 * sigma)) + 1
    return kornia.filters.gaussian_blur2d(x[None], (k, k), (sigma, sigma), border_type="reflect")[0]


def _grey(albedo: np.ndarray) -> np.ndarray:
    return albedo.mean(axis=2) if albedo.ndim == 3 else albedo


def normal_change(
    baseline: NormalMap,
    current: NormalMap,
    valid: np.ndarray,
    *,
    scale: float = 1.0,
    background_frac: float = 0.03,
    min_confidence: float = 0.2,
    presmooth_px: float = 1.5,
    current_slopes: tuple[np.ndarray, np.ndarray] | None = None,
    current_confidence: np.ndarray | None = None,
    current_albedo: np.ndarray | None = None,
    device: torch.device | str | None = None,
) -> ChangeMap:
    """Height change from the slope difference of two normal maps on one grid.

    Parameters
    ----------
    baseline, current
        Photometric stereo of each capture, ``current`` already on the baseline
        grid (or pass its resampled, rotated slopes in ``current_slopes``).
    valid
        H x W bool: where the current capture has data.
    scale
        Analysis pixels per baseline pixel (recorded; heights are divided by it).
    background_frac
        Sigma of the low-frequency removal, fraction of the long side.
    min_confidence
        Pixels where either capture's confidence is below this carry no
        weight in the integration; their slope difference is filled from the
        surroundings.
    presmooth_px
        Confidence-weighted Gaussian smoothing of the slope difference, pixels.
    current_slopes, current_confidence, current_albedo
        The current capture's ``(dh/dx, dh/dy)``, confidence and grey albedo on the
        baseline grid,
        when they were resampled (then ``current`` is only used for its lamps).
    device
        Torch device for filtering (and Frankot-Chellappa on large maps).

    Returns
    -------
    ChangeMap
        ``method="multilight"``, height change in baseline pixel pitch (+ = towards
        the viewer), NaN outside ``valid``; ``noise_map`` the local level of detection.

    Examples
    --------
    >>> import numpy as np
    >>> from monitor.depth.photometric_stereo import photometric_stereo
    >>> from monitor.results import Light
    >>> lights = np.stack([Light(a, 40).vector() for a in (0, 120, 240)])
    >>> imgs = np.tile(0.5 * lights[:, 2][:, None, None], (1, 32, 32)).astype(np.float32)
    >>> nm = photometric_stereo(imgs, lights)
    >>> cm = normal_change(nm, nm, np.ones((32, 32), bool))
    >>> float(np.nanmax(np.abs(cm.height)))
    0.0
    """
    pb, qb = baseline.gradients()
    if current_slopes is None:
        pc, qc = current.gradients()
        conf_c = current.confidence
    else:
        pc, qc = current_slopes
        conf_c = current.confidence if current_confidence is None else current_confidence
    shape = pb.shape
    if pc.shape != shape or conf_c.shape != shape or valid.shape != shape:
        raise MonitorError(
            f"multilight change: maps differ in shape (baseline {shape}, current {pc.shape}, "
            f"valid {valid.shape})"
        )
    if not valid.any():
        raise MonitorError("multilight change: the two captures do not overlap")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    conf = np.minimum(baseline.confidence, np.nan_to_num(conf_c)) * valid
    ok = ndimage.binary_erosion(valid, iterations=2) & (conf >= min_confidence)
    ok &= np.isfinite(pc) & np.isfinite(qc)
    if ok.sum() < 16:
        raise MonitorError("multilight change: no pixel is read with confidence by both captures")
    dp = np.where(ok, np.nan_to_num(pc) - pb, 0.0).astype(np.float32)
    dq = np.where(ok, np.nan_to_num(qc) - qb, 0.0).astype(np.float32)
    long_side = max(shape)
    weight = np.where(ok, conf, 0.0).astype(np.float32)
    with torch.inference_mode():
        w = torch.from_numpy(ok.astype(np.float32)).to(dev)
        d = torch.from_numpy(np.stack([dp, dq])).to(dev)
        if presmooth_px > 0:
            # pixel noise of the two normal fields (and sub-pixel misregistration of
            # fine relief) is the largest noise; deformations are far wider
            wc = torch.from_numpy(weight).to(dev)
            d = _blur(d * wc, presmooth_px) / _blur(wc[None], presmooth_px).clamp_min(1e-6)
        # pixels read by neither capture take the slope of their surroundings
        fill = smooth_background(d, w, 0.01 * long_side)
        d = torch.where(w > 0, d, fill).cpu().numpy()
    if dp.size <= POISSON_MAX_PX:
        height = poisson(d[0], d[1], weight)
    else:
        height = frankot_chellappa(d[0], d[1], device=dev)
    with torch.inference_mode():
        # integration drift and lamp drift are smooth: remove them, estimated
        # away from strong local change (else its blurred copy leaves a halo)
        ht = torch.from_numpy(height).to(dev)
        sigma_bg = background_frac * long_side
        first = (ht - smooth_background(ht, w, sigma_bg)).cpu().numpy()
        spread = robust_sigma(first[ok])
        quiet = ~ndimage.binary_dilation(
            np.abs(first) > 3 * spread, iterations=max(2, int(0.01 * long_side))
        )
        w_bg = torch.from_numpy((ok & quiet).astype(np.float32)).to(dev)
        height = (ht - smooth_background(ht, w_bg, sigma_bg)).cpu().numpy()
    # local level of detection, raised where the captures were read with little confidence
    noise = local_noise(height, ok)
    noise = noise / np.sqrt(np.clip(conf, 0.05, 1.0))
    # photometric stereo's noise grows as 1 / albedo: dark paint is read less surely
    # than its block's median suggests
    rho_c = _grey(current.albedo) if current_albedo is None else current_albedo
    rho = np.minimum(_grey(baseline.albedo), np.nan_to_num(rho_c))
    rho_ref = float(np.median(rho[ok]))
    dark = np.clip(rho_ref / np.maximum(rho, 1e-4), 1.0, 20.0).astype(np.float32)
    with torch.inference_mode():
        dark_t = torch.from_numpy(dark).to(dev)[None]
        dark = _blur(dark_t, 3.0 * max(presmooth_px, 1.0))[0].cpu().numpy()
    noise = noise * np.maximum(dark, 1.0)
    noise[~ok] = max(float(np.max(noise)), 1e-6) * 4.0
    height = (height / scale).astype(np.float32)
    noise = (noise / scale).astype(np.float32)
    height[~valid] = np.nan
    return ChangeMap(
        height=height,
        scale=scale,
        method="multilight",
        noise_sigma=float(np.median(noise[ok])),
        noise_map=noise,
        appearance=None,
        model_id=MODEL_ID,
        weights_sha256=None,
        integration_direction=None,
    )


def _load(capture: Capture, max_px: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Linear images at analysis scale, the full-resolution mean (sRGB uint8), the scale."""
    w, h = capture.size
    s = min(1.0, max_px / max(w, h))
    mean = np.zeros((h, w, 3), np.float64)
    small: list[np.ndarray] = []
    for f in capture.paths:
        px = read_image(f).pixels
        lin = to_linear(px)
        mean += lin
        small.append(downsample(lin, s) if s < 1 else lin)
    mean /= len(capture.paths)
    return np.stack(small), from_linear(mean.astype(np.float32), 8), s


def _jacobian(hom: np.ndarray, point: tuple[float, float]) -> np.ndarray:
    """d(baseline xy) / d(current xy) of a homography at a current point."""
    x, y = point
    v = hom @ np.array([x, y, 1.0])
    jac = np.empty((2, 2))
    for j in range(2):
        dv = hom[:, j]
        jac[:, j] = (dv[:2] * v[2] - v[:2] * dv[2]) / (v[2] ** 2)
    return jac


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
    imgs_b, mean_b, s_b = _load(cap_b, max_px)
    imgs_c, mean_c, s_c = _load(cap_c, max_px)
    timings.append(StageTiming("read", time.perf_counter() - t0, 0.0))
    t0 = time.perf_counter()
    reg = register(mean_b, mean_c)
    timings.append(StageTiming("register", time.perf_counter() - t0, 0.0))
    t0 = time.perf_counter()
    nm_b = photometric_stereo(imgs_b, cap_b.lights, device=device)
    nm_c = photometric_stereo(imgs_c, cap_c.lights, device=device)
    timings.append(StageTiming("photometric stereo", time.perf_counter() - t0, 0.0))
    t0 = time.perf_counter()
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
    out_shape = imgs_b.shape[1:3]
    warped, valid = warp_to_baseline(
        stack, reg, image_scale=s_c, out_shape=out_shape, out_scale=s_b
    )
    change = normal_change(
        nm_b,
        nm_c,
        valid & np.isfinite(warped[..., 0]),
        scale=s_b,
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
    preview = from_linear(np.clip(imgs_b.mean(axis=0), 0, 1), 8)
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
    )
