"""The working grid: input checks, downsampling, log luminance, Gaussian filters, tiles."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

from monitor.errors import MonitorError
from monitor.light.params import (
    CLIP_HIGH,
    CLIP_LOW,
    LUMA,
    TILE,
    WORK_SIDE,
)

# --------------------------------------------------------------------------- helpers


def _check_rgb(name: str, rgb: object) -> np.ndarray:
    """Type, shape and dtype at entry; the value range is checked on the working grid."""
    if not isinstance(rgb, np.ndarray):
        raise MonitorError(f"{name} must be a numpy array, got {type(rgb).__name__}")
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise MonitorError(f"{name} must be H x W x 3 linear RGB, got shape {rgb.shape}")
    if rgb.dtype.kind != "f":
        raise MonitorError(f"{name} must be float linear RGB in [0, 1], got {rgb.dtype}")
    if min(rgb.shape[:2]) < 32:
        raise MonitorError(
            f"{name} is too small for a light estimate: {rgb.shape[1]}x{rgb.shape[0]}"
        )
    return rgb


def _check_range(name: str, small: np.ndarray) -> None:
    """Range check on the working grid (block means).

    A scan in the wrong units (0-255, a negative offset) shows in every block;
    a few stray pixels above 1 inside a block do not matter to the estimate
    (clipped pixels are ignored anyway), so the full-resolution scan is not
    scanned again: one pass over it (the downsample) is all the estimator costs.
    """
    fin = small[np.isfinite(small)]
    if fin.size == 0:
        return
    lo, hi = float(fin.min()), float(fin.max())
    if lo < -1e-6 or hi > 1.0 + 1e-6:
        raise MonitorError(
            f"{name} must be linear RGB in [0, 1]; got values in [{lo:.3g}, {hi:.3g}]"
        )


def _check_valid(valid: object, shape: tuple[int, int]) -> np.ndarray | None:
    if valid is None:
        return None
    if not isinstance(valid, np.ndarray) or valid.shape != shape:
        got = getattr(valid, "shape", type(valid).__name__)
        raise MonitorError(f"valid must be a boolean H x W mask of shape {shape}, got {got}")
    return valid.astype(bool, copy=False)


def _downsample(
    rgb: np.ndarray, valid: np.ndarray | None, name: str = "rgb_linear"
) -> tuple[np.ndarray, np.ndarray]:
    """Block-average to a long side <= WORK_SIDE in one pass; checks on the small grid.

    Returns the small image (H' x W' x 3, float32) and its mask: blocks whose
    pixels are all finite (a NaN spreads to its block) and all in ``valid``.
    ``cv2.resize`` with ``INTER_AREA`` at an integer factor is the exact block
    mean (a 24 MP scan: ~0.1 s against ~1.3 s for a numpy reshape-mean).
    """
    h, w = rgb.shape[:2]
    f = max(1, math.ceil(max(h, w) / WORK_SIDE))
    hh, ww = (h // f) * f, (w // f) * f
    x: np.ndarray = rgb[:hh, :ww]
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float32)
    small: np.ndarray
    if f == 1:
        small = np.ascontiguousarray(x, dtype=np.float32)
    else:
        small = cv2.resize(x, (ww // f, hh // f), interpolation=cv2.INTER_AREA)
        small = small.astype(np.float32, copy=False)
    _check_range(name, small)
    ok: np.ndarray = np.asarray(np.isfinite(small).all(axis=2))
    if valid is not None:
        v = valid[:hh, :ww]
        if f == 1:
            ok &= v
        else:
            frac = cv2.resize(
                v.view(np.uint8) * np.uint8(255), (ww // f, hh // f), interpolation=cv2.INTER_AREA
            )
            ok &= frac == 255
    small = np.where(ok[..., None], small, 0.0).astype(np.float32)
    return small, ok


@dataclass(frozen=True)
class _Prepared:
    loglum: np.ndarray  # log luminance on the working grid
    chroma: np.ndarray  # log channels minus their mean (H' x W' x 3)
    ok: np.ndarray  # trusted for shading: valid, unclipped, eroded
    small: np.ndarray  # the working-grid linear RGB (zero outside ``valid``)
    valid: np.ndarray  # valid blocks, clipped ones included


def _prepare(rgb: np.ndarray, valid: np.ndarray | None, name: str = "rgb_linear") -> _Prepared:
    """Log luminance, chromatic log channels and the trusted mask on the working grid."""
    small, ok_small = _downsample(rgb, valid, name)
    valid_small = ok_small.copy()
    lum = small @ LUMA
    ok_small &= (small.max(axis=2) < CLIP_HIGH) & (lum > CLIP_LOW)
    ok_small = ndimage.binary_erosion(ok_small, iterations=2)
    logc = np.log(np.maximum(small, CLIP_LOW))
    loglum = np.log(np.maximum(lum, CLIP_LOW))
    chroma = logc - logc.mean(axis=2, keepdims=True)
    return _Prepared(
        loglum.astype(np.float32), chroma.astype(np.float32), ok_small, small, valid_small
    )


def _kernel(sigma: float, order: int) -> np.ndarray:
    """Gaussian (derivative) taps as :func:`scipy.ndimage.gaussian_filter` uses them."""
    radius = int(4.0 * sigma + 0.5)
    xs = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-0.5 * (xs / sigma) ** 2)
    g /= g.sum()
    if order == 1:
        g = -xs / sigma**2 * g
    return g[::-1].astype(np.float32)  # correlation taps


def _gauss(x: np.ndarray, sigma: float, order: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Separable Gaussian (order per axis: y, x), edges replicated (``mode="nearest"``).

    ``cv2.sepFilter2D`` gives the same numbers as ``ndimage.gaussian_filter``
    several times faster on the working grid.
    """
    return cv2.sepFilter2D(
        np.ascontiguousarray(x, dtype=np.float32),
        cv2.CV_32F,
        _kernel(sigma, order[1]),
        _kernel(sigma, order[0]),
        borderType=cv2.BORDER_REPLICATE,
    )


def _fill(x: np.ndarray, ok: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """High-pass by a normalised-convolution background; zero outside ``ok``."""
    wgt = ok.astype(np.float32)
    num = _gauss(np.where(ok, x, 0.0), sigma)
    den = _gauss(wgt, sigma)
    bg = num / np.maximum(den, 1e-6)
    return np.where(ok, x - bg, 0.0).astype(np.float32), bg


def _tiles(shape: tuple[int, int]) -> list[tuple[slice, slice]]:
    h, w = shape
    ny, nx = max(1, round(h / TILE)), max(1, round(w / TILE))
    ys = np.linspace(0, h, ny + 1).astype(int)
    xs = np.linspace(0, w, nx + 1).astype(int)
    return [
        (slice(ys[i], ys[i + 1]), slice(xs[j], xs[j + 1])) for i in range(ny) for j in range(nx)
    ]
