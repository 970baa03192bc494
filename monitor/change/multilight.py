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

This module takes normal maps computed by its caller: the whole route for
two capture folders (read, photometric stereo, register, compare, regions)
is :func:`monitor.multilight.compare_captures`, above ``change/`` and ``depth/``.
"""

from __future__ import annotations

import math

import kornia
import numpy as np
import torch
from scipy import ndimage

from monitor.errors import MonitorError
from monitor.photometry import (
    POISSON_MAX_PX,
    frankot_chellappa,
    local_noise,
    poisson,
    robust_sigma,
    smooth_background,
)
from monitor.results import ChangeMap, NormalMap

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
    >>> from monitor.results import NormalMap
    >>> n = np.zeros((32, 32, 3), np.float32); n[..., 2] = 1
    >>> one = np.ones((32, 32), np.float32)
    >>> nm = NormalMap(n, 0.5 * one, one, 3 * one, 0 * one, 0 * one, 0 * one, np.eye(3))
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
        slopes = torch.where(w > 0, d, fill).cpu().numpy()
    if dp.size <= POISSON_MAX_PX:
        height = poisson(slopes[0], slopes[1], weight)
    else:
        height = frankot_chellappa(slopes[0], slopes[1], device=dev)
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
