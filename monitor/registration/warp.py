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

#: Output pixels per strip of :func:`warp_to_baseline` (float64 scratch of ~2 MB each).
_STRIP_PIXELS = 1 << 18


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

    Examples
    --------
    CURRENT shifted 7 px right of BASELINE (``H`` maps CURRENT onto BASELINE):

    >>> from monitor.results import Registration
    >>> h = np.array([[1.0, 0.0, -7.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    >>> reg = Registration(h, (100, 200), (100, 200), 80, 70, 0.4, 0.3)
    >>> baseline_to_current(np.array([[10.0, 20.0]]), reg)
    array([[17., 20.]])
    """
    reg = _check_registration(reg)
    pts = np.asarray(points_xy, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise MonitorError(f"points must be N x 2 (x, y), got shape {pts.shape}")
    if not np.all(np.isfinite(pts)):
        raise MonitorError("points must be finite")
    grid = None if reg.residual_grid is None else np.asarray(reg.residual_grid, np.float64)
    return _map_to_current(np.asarray(reg.homography, np.float64), grid, pts, reg.baseline_shape)


def _axis_scales(value: float | tuple[float, float], name: str) -> tuple[float, float]:
    """(rows, cols) scales from one number or a pair; each finite and > 0."""
    pair = tuple(value) if isinstance(value, (tuple, list, np.ndarray)) else (value, value)
    if len(pair) != 2:
        raise MonitorError(f"{name} must be a number or (rows, cols), got {value!r}")
    try:
        sy, sx = float(pair[0]), float(pair[1])
    except (TypeError, ValueError) as exc:
        raise MonitorError(f"{name} must be a number or (rows, cols), got {value!r}") from exc
    if not (math.isfinite(sy) and math.isfinite(sx) and sy > 0 and sx > 0):
        raise MonitorError(f"{name} must be > 0, got {value!r}")
    return sy, sx


def warp_to_baseline(
    image: np.ndarray,
    reg: Registration,
    *,
    image_scale: float | tuple[float, float] = 1.0,
    out_shape: tuple[int, int] | None = None,
    out_scale: float | tuple[float, float] = 1.0,
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
        Scale of ``image`` relative to the full-resolution CURRENT scan: one
        number, or ``(rows, cols)`` scales per axis -- what a resize to a
        rounded size really applies (``new / old`` per axis).
    out_shape
        (rows, cols) of the output grid; default ``round(baseline_shape * out_scale)``.
    out_scale
        Output pixels per BASELINE full-resolution pixel, one number or
        ``(rows, cols)`` per axis: pass the per-axis scale of the baseline's own
        reduction so that output pixel ``[r, c]`` covers exactly the baseline
        area the reduced baseline's pixel ``[r, c]`` does.

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
    isy, isx = _axis_scales(image_scale, "image_scale")
    osy, osx = _axis_scales(out_scale, "out_scale")
    hc, wc = reg.current_shape
    if abs(image.shape[0] - hc * isy) > 1.0 or abs(image.shape[1] - wc * isx) > 1.0:
        raise MonitorError(
            f"image is {image.shape[1]}x{image.shape[0]} px but the current scan at scale "
            f"{isx:g} x {isy:g} would be {wc * isx:.0f}x{hc * isy:.0f} px"
        )
    hb, wb = reg.baseline_shape
    if out_shape is None:
        out_shape = (max(1, round(hb * osy)), max(1, round(wb * osx)))
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
    xs = (np.arange(cols, dtype=np.float64) + 0.5) / osx
    # the per-column terms of H^-1 once (1 x cols); per strip only the per-row ones
    hx = [xs * h_inv[k, 0] for k in range(3)]
    gx_cols, gny = None, 0
    if grid is not None:
        gny = grid.shape[0]
        wx = _cubic_weights(xs * ((grid.shape[1] - 1) / wb), grid.shape[1])
        # ny x (cols * 2): the grid interpolated along x at every output column
        gx_cols = np.einsum("ijk,nj->ink", grid, wx).reshape(grid.shape[0], cols * 2)
    # strips of rows small enough that the float64 scratch stays in cache and is
    # reused (no full-size temporaries, no page faults per strip)
    strip = max(1, min(rows, _STRIP_PIXELS // cols))
    n = strip * cols
    den_b, qx_b, qy_b = (np.empty(n) for _ in range(3))
    ok_b, tmp_b = np.empty(n, bool), np.empty(n, bool)
    mx_b, my_b = np.empty(n, np.float32), np.empty(n, np.float32)
    d_b = np.empty(n * 2) if grid is not None else None
    # cv2.remap takes up to 4 channels: more are resampled 4 at a time
    sources = [img] if channels <= 4 else [
        np.ascontiguousarray(img[:, :, c0 : c0 + 4]) for c0 in range(0, channels, 4)
    ]
    for r0 in range(0, rows, strip):
        r1 = min(rows, r0 + strip)
        m = (r1 - r0) * cols
        shape2 = (r1 - r0, cols)
        ys = (np.arange(r0, r1, dtype=np.float64) + 0.5) / osy
        den, qx, qy = (b[:m].reshape(shape2) for b in (den_b, qx_b, qy_b))
        ok, bad = ok_b[:m].reshape(shape2), tmp_b[:m].reshape(shape2)
        mx, my = mx_b[:m].reshape(shape2), my_b[:m].reshape(shape2)
        # the same operations, in the same order, as the formulas
        # (ys h[k,1] + xs h[k,0] + h[k,2]) / den of the reference
        np.add((ys * h_inv[2, 1])[:, None], hx[2][None, :], out=den)
        den += h_inv[2, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            for k, q in ((0, qx), (1, qy)):
                np.add((ys * h_inv[k, 1])[:, None], hx[k][None, :], out=q)
                q += h_inv[k, 2]
                q /= den
        if gx_cols is not None and d_b is not None:
            wy = _cubic_weights(ys * ((gny - 1) / hb), gny)
            d = d_b[: m * 2].reshape(r1 - r0, cols, 2)
            np.matmul(wy, gx_cols, out=d.reshape(r1 - r0, cols * 2))
            qx += d[..., 0]
            qy += d[..., 1]
        qx *= isx  # now the source position in image pixels (corner origin)
        qy *= isy
        # inside with a 1 px margin, in front of the camera (NaN compares False)
        np.greater(den, 0, out=ok)
        for q, lim in ((qx, iw - 1.0), (qy, ih - 1.0)):
            np.greater_equal(q, 1.0, out=bad)
            ok &= bad
            np.less_equal(q, lim, out=bad)
            ok &= bad
        np.logical_not(ok, out=bad)
        # cv2's centre-origin map in float32 (rounded from float64, as astype does);
        # points beyond the horizon may overflow float32 here: they are replaced next
        with np.errstate(over="ignore", invalid="ignore"):
            np.subtract(qx, 0.5, out=mx, casting="same_kind")
            np.subtract(qy, 0.5, out=my, casting="same_kind")
        mx[bad] = -10.0
        my[bad] = -10.0
        dst = out[r0:r1]
        if len(sources) == 1:  # straight into the output rows (contiguous), no copy
            cv2.remap(sources[0], mx, my, cv2.INTER_CUBIC, dst=dst,
                      borderMode=cv2.BORDER_REPLICATE)
        else:
            for c0, src in zip(range(0, channels, 4), sources, strict=True):
                res = cv2.remap(src, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
                dst[:, :, c0 : c0 + 4] = res.reshape(r1 - r0, cols, -1)
        np.copyto(dst, 0.0, where=bad if dst.ndim == 2 else bad[..., None])
        valid[r0:r1] = ok
    return Warped(out, valid)
