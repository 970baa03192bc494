"""Mapping points and resampling images from CURRENT onto the BASELINE grid."""

from __future__ import annotations

import math

import cv2
import numpy as np

from monitor.checks import check_image
from monitor.errors import MonitorError
from monitor.registration.inputs import _check_registration
from monitor.registration.residual import _cubic_weights, _map_to_current
from monitor.results import Registration, Warped


def baseline_to_current(points_xy: np.ndarray, reg: Registration) -> np.ndarray:
    """Map BASELINE points to CURRENT: ``H^-1(p) + d(p)``.

    Parameters
    ----------
    points_xy
        N x 2 array of (x, y) baseline full-resolution corner-origin coordinates.
    reg
        The registration.

    Returns
    -------
    numpy.ndarray
        N x 2 float64 CURRENT coordinates (NaN where the point maps beyond the horizon).
    """
    reg = _check_registration(reg)
    pts = np.asarray(points_xy, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise MonitorError(f"points must be N x 2 (x, y), got shape {pts.shape}")
    if not np.all(np.isfinite(pts)):
        raise MonitorError("points must be finite")
    grid = None if reg.residual_grid is None else np.asarray(reg.residual_grid, np.float64)
    return _map_to_current(np.asarray(reg.homography, np.float64), grid, pts, reg.baseline_shape)


def warp_to_baseline(
    image: np.ndarray,
    reg: Registration,
    *,
    image_scale: float = 1.0,
    out_shape: tuple[int, int] | None = None,
    out_scale: float = 1.0,
) -> Warped:
    """Resample CURRENT content onto the BASELINE grid (bicubic, in row strips).

    Parameters
    ----------
    image
        The CURRENT scan as float32 H x W or H x W x C, at ``image_scale`` (image pixel
        coordinates = ``image_scale`` x CURRENT full-resolution coordinates). For
        ``out_scale < 1`` pass an image already reduced to about that scale (the
        resampling does not low-pass filter).
    reg
        The registration.
    image_scale
        Scale of ``image`` relative to the full-resolution CURRENT scan.
    out_shape
        (rows, cols) of the output grid; default ``round(baseline_shape * out_scale)``.
    out_scale
        Output pixels per BASELINE full-resolution pixel.

    Returns
    -------
    Warped
        ``image``: the warped float32 image (0 outside the valid area); ``valid``: a
        bool mask, True where the source point lies inside ``image`` with a 1 px
        margin. Unpacks as ``image, valid``.

    Examples
    --------
    >>> reg = Registration(np.eye(3), (8, 8), (8, 8), 10, 10, 0.0, 0.0)
    >>> w = warp_to_baseline(np.ones((8, 8), np.float32), reg)
    >>> w.image.shape, bool(w.valid[4, 4])
    ((8, 8), True)
    """
    reg = _check_registration(reg)
    if not isinstance(image, np.ndarray) or not np.issubdtype(image.dtype, np.floating):
        raise MonitorError("image must be a float32 numpy array (e.g. linear light)")
    check_image(image, "H W | H W C", name="warp: image", min_side=2)
    if not (math.isfinite(image_scale) and image_scale > 0):
        raise MonitorError(f"image_scale must be > 0, got {image_scale}")
    if not (math.isfinite(out_scale) and out_scale > 0):
        raise MonitorError(f"out_scale must be > 0, got {out_scale}")
    hc, wc = reg.current_shape
    if abs(image.shape[0] - hc * image_scale) > 1.0 or abs(image.shape[1] - wc * image_scale) > 1.0:
        raise MonitorError(
            f"image is {image.shape[1]}x{image.shape[0]} px but the current scan at scale "
            f"{image_scale:g} would be {wc * image_scale:.0f}x{hc * image_scale:.0f} px"
        )
    hb, wb = reg.baseline_shape
    if out_shape is None:
        out_shape = (max(1, round(hb * out_scale)), max(1, round(wb * out_scale)))
    rows, cols = int(out_shape[0]), int(out_shape[1])
    if rows < 1 or cols < 1:
        raise MonitorError(f"out_shape must be positive, got {out_shape}")
    img = np.ascontiguousarray(image, dtype=np.float32)
    ih, iw = img.shape[:2]
    channels = 1 if img.ndim == 2 else img.shape[2]
    out = np.zeros((rows, cols) if img.ndim == 2 else (rows, cols, channels), np.float32)
    valid = np.zeros((rows, cols), bool)

    h_inv = np.linalg.inv(np.asarray(reg.homography, np.float64))
    grid = None if reg.residual_grid is None else np.asarray(reg.residual_grid, np.float64)
    xs = (np.arange(cols, dtype=np.float64) + 0.5) / out_scale
    wx = None
    if grid is not None:
        wx = _cubic_weights(xs * ((grid.shape[1] - 1) / wb), grid.shape[1])
        gx_cols = np.einsum("ijk,nj->ink", grid, wx)  # ny x cols x 2
    strip = max(1, 2_000_000 // cols)
    for r0 in range(0, rows, strip):
        r1 = min(rows, r0 + strip)
        ys = (np.arange(r0, r1, dtype=np.float64) + 0.5) / out_scale
        den = ys[:, None] * h_inv[2, 1] + xs[None, :] * h_inv[2, 0] + h_inv[2, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            qx = (ys[:, None] * h_inv[0, 1] + xs[None, :] * h_inv[0, 0] + h_inv[0, 2]) / den
            qy = (ys[:, None] * h_inv[1, 1] + xs[None, :] * h_inv[1, 0] + h_inv[1, 2]) / den
        if grid is not None:
            wy = _cubic_weights(ys * ((grid.shape[0] - 1) / hb), grid.shape[0])
            d = np.einsum("ri,ick->rck", wy, gx_cols)
            qx += d[..., 0]
            qy += d[..., 1]
        ux = qx * image_scale
        uy = qy * image_scale
        ok = (den > 0) & (ux >= 1.0) & (ux <= iw - 1.0) & (uy >= 1.0) & (uy <= ih - 1.0)
        mx = np.where(ok, ux - 0.5, -10.0).astype(np.float32)
        my = np.where(ok, uy - 0.5, -10.0).astype(np.float32)
        for c0 in range(0, channels, 4):
            src = img if img.ndim == 2 else np.ascontiguousarray(img[:, :, c0 : c0 + 4])
            res = cv2.remap(src, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
            if img.ndim == 2:
                out[r0:r1] = res
            else:
                out[r0:r1, :, c0 : c0 + 4] = res.reshape(r1 - r0, cols, -1)
        out[r0:r1][~ok] = 0.0
        valid[r0:r1] = ok
    return Warped(out, valid)
