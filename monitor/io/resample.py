"""Analysis scale and area downsampling."""

from __future__ import annotations

import math

import cv2
import numpy as np

from monitor.errors import MonitorError


def analysis_scale(shape: tuple[int, int], max_px: int) -> float:
    """Scale that brings the long side of ``shape`` to at most ``max_px``.

    Parameters
    ----------
    shape
        (height, width) in pixels (extra trailing entries are ignored).
    max_px
        Largest allowed long side.

    Returns
    -------
    float
        ``min(1, max_px / max(height, width))``.

    Examples
    --------
    >>> analysis_scale((3000, 4000), 2000), analysis_scale((300, 400), 2000)
    (0.5, 1.0)
    """
    if len(shape) < 2 or min(shape[:2]) <= 0:
        raise MonitorError(f"analysis_scale: need a positive (height, width), got {shape}")
    if max_px <= 0:
        raise MonitorError(f"analysis_scale: max_px must be positive, got {max_px}")
    return min(1.0, max_px / max(shape[0], shape[1]))


def scaled_shape(shape: tuple[int, ...], scale: float) -> tuple[int, int]:
    """(height, width) that :func:`downsample` produces for ``scale`` (< 1).

    Parameters
    ----------
    shape
        (height, width, ...) of the input.
    scale
        Output pixels per input pixel.

    Returns
    -------
    tuple of int
        ``(max(1, round(height * scale)), max(1, round(width * scale)))``.

    Examples
    --------
    >>> scaled_shape((3000, 4001, 3), 0.5)
    (1500, 2000)
    """
    return max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))


def downsample(pixels: np.ndarray, scale: float) -> np.ndarray:
    """Area-average resize to ``round(shape * scale)`` (OpenCV ``INTER_AREA``).

    The effective factor per axis is ``new / old`` (rounding makes it differ
    slightly from ``scale``). NaN in float input spreads to the output pixels
    whose footprint contains it.

    Parameters
    ----------
    pixels
        H x W or H x W x C; uint8, uint16, float32 or float64.
    scale
        Output pixels per input pixel, > 0. ``scale >= 1`` returns ``pixels``
        itself (no copy, no upsampling).

    Returns
    -------
    numpy.ndarray
        Same dtype and channel count.

    Examples
    --------
    >>> downsample(np.arange(16, dtype=np.float32).reshape(4, 4), 0.5)
    array([[ 2.5,  4.5],
           [10.5, 12.5]], dtype=float32)
    """
    try:
        scale = float(scale)
    except (TypeError, ValueError) as exc:
        raise MonitorError(f"downsample: scale must be a number, got {scale!r}") from exc
    if not (math.isfinite(scale) and scale > 0):
        raise MonitorError(f"downsample: scale must be a positive number, got {scale!r}")
    if scale >= 1:
        return pixels
    arr = np.asarray(pixels)
    if arr.ndim not in (2, 3) or min(arr.shape[:2]) < 1:
        raise MonitorError(f"downsample: need H x W or H x W x C pixels, got shape {arr.shape}")
    if arr.dtype not in (np.uint8, np.uint16, np.float32, np.float64):
        raise MonitorError(f"downsample: unsupported dtype {arr.dtype}")
    h, w = scaled_shape(arr.shape, scale)
    if (h, w) == arr.shape[:2]:
        return arr
    out = cv2.resize(np.ascontiguousarray(arr), (w, h), interpolation=cv2.INTER_AREA)
    if arr.ndim == 3 and out.ndim == 2:  # OpenCV drops a single channel axis
        out = out[:, :, None]
    return out
