"""Refinement: Lucas-Kanade patch matching at full resolution around the model's prediction."""

from __future__ import annotations

import math
from typing import cast

import cv2
import numpy as np

from monitor.registration.residual import _map_to_current

_PATCH = 48  # full-resolution refinement patch side (px)


_MIN_PATCH = 16  # smallest patch side, used near the image border


_PATCH_MARGIN = 3  # extra border for smoothing and gradients


_LK_SIGMA = 1.0  # Gaussian pre-smoothing of refinement patches (px)


_LK_ITERATIONS = 6


_LK_CONVERGED = 0.01  # px


_MIN_PATCH_STD = 2.0  # grey levels (0..255)


_MIN_GRAD_ENERGY = 0.5  # smallest structure-tensor eigenvalue per pixel ((grey/px)^2)


_MIN_NCC = 0.6


def _smooth(image: np.ndarray) -> np.ndarray:
    """The Lucas-Kanade pre-smoothing (Gaussian, ``_LK_SIGMA``, reflected border)."""
    return np.asarray(cv2.GaussianBlur(image, (0, 0), _LK_SIGMA, borderType=cv2.BORDER_REFLECT))


def _grey_crop(image: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """Float32 grey crop ``image[y0:y1, x0:x1]`` on a 0..255 scale."""
    crop = image[y0:y1, x0:x1]
    if crop.ndim == 3:
        crop = cv2.cvtColor(np.ascontiguousarray(crop[:, :, :3]), cv2.COLOR_RGB2GRAY)
    out = crop.astype(np.float32)
    if image.dtype == np.uint16:
        out *= 1.0 / 257.0
    return out


def _refine(
    baseline: np.ndarray,
    current: np.ndarray,
    centres: np.ndarray,
    model: tuple[np.ndarray, np.ndarray | None],
    search: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Re-locate correspondences at full resolution around ``centres`` (BASELINE points).

    For each point a P x P BASELINE patch is compared with the CURRENT image resampled
    into the baseline frame through ``model`` (``M``: baseline -> current, linearised
    over the patch). The residual shift ``e`` (``M(u) = T(u + e)`` for the true map
    ``T``) is measured once by phase correlation (coarse, large capture range) and then
    by Lucas-Kanade iterations with a local gain and offset on lightly smoothed patches
    (phase correlation alone whitens the spectrum and so trusts aliased fine detail).
    The correspondence is ``(c, M(c - e))`` with the exact model; ``|e|`` is limited to
    ``search`` px.

    Returns
    -------
    tuple[numpy.ndarray, numpy.ndarray]
        Refined (pts_b, pts_c), N x 2 each; unreliable patches are dropped.
    """
    hb, wb = baseline.shape[:2]
    hc, wc = current.shape[:2]
    m = _PATCH_MARGIN
    h, grid = model
    centres = np.round(np.asarray(centres, dtype=np.float64).reshape(-1, 2))
    # patch side: _PATCH, smaller near the border (down to _MIN_PATCH), multiple of 4
    room = (
        np.minimum.reduce([centres[:, 0], centres[:, 1], wb - centres[:, 0], hb - centres[:, 1]])
        - m
    )
    sides = (np.minimum(_PATCH, 2 * room) // 4 * 4).astype(np.int64)
    use = sides >= _MIN_PATCH
    centres, sides = centres[use], sides[use]
    if len(centres) == 0:
        return np.zeros((0, 2)), np.zeros((0, 2))
    # local affine approximation of M at every centre (central differences)
    step = np.full((len(centres), 1), _PATCH / 4.0)
    probes = np.concatenate(
        [
            centres,
            centres + step * (1, 0),
            centres - step * (1, 0),
            centres + step * (0, 1),
            centres - step * (0, 1),
        ]
    )
    mapped = _map_to_current(h, grid, probes, (hb, wb)).reshape(5, len(centres), 2)
    q0 = mapped[0]
    jac = np.stack([mapped[1] - mapped[2], mapped[3] - mapped[4]], axis=2) / (2 * step[:, :, None])
    # the CURRENT crop (patch + margin + search range) must fit as well
    with np.errstate(invalid="ignore"):
        room_c = np.minimum.reduce([q0[:, 0], q0[:, 1], wc - q0[:, 0], hc - q0[:, 1]])
        stretch = np.abs(jac).sum(axis=2).max(axis=1)
        side_c = 2 * ((room_c - search - 3) / stretch - m)
        sides = np.minimum(sides, np.nan_to_num(side_c, nan=-1.0)) // 4 * 4
    sides = sides.astype(np.int64)
    out_b: list[np.ndarray] = []
    out_c: list[np.ndarray] = []
    windows: dict[int, np.ndarray] = {}

    for k in range(len(centres)):
        if not np.all(np.isfinite(jac[k])) or not np.all(np.isfinite(q0[k])):
            continue
        p = int(sides[k])
        if p < _MIN_PATCH:
            continue
        half, full = p // 2, p + 2 * m
        cx, cy = int(centres[k, 0]), int(centres[k, 1])
        x0, y0 = cx - half, cy - half
        if p not in windows:
            windows[p] = cv2.createHanningWindow((p, p), cv2.CV_32F).astype(np.float64)
        win = windows[p]
        wsum = float(win.sum())
        inner = (slice(m, m + p), slice(m, m + p))
        a_full = _smooth(_grey_crop(baseline, x0 - m, y0 - m, x0 + p + m, y0 + p + m))
        # numpy's stubs type the gradient of a 2-D array as a scalar or Any: it is two arrays
        gy_a, gx_a = cast("tuple[np.ndarray, np.ndarray]", np.gradient(a_full.astype(np.float64)))
        a = a_full[inner].astype(np.float64)
        if float(a.std()) < _MIN_PATCH_STD:
            continue
        gx, gy = gx_a[inner], gy_a[inner]
        # structure tensor: reject edges (aperture problem) and flat patches
        sxx, syy, sxy = (win * gx * gx).sum(), (win * gy * gy).sum(), (win * gx * gy).sum()
        lam_min = 0.5 * (sxx + syy - math.hypot(sxx - syy, 2 * sxy))
        if lam_min / wsum < _MIN_GRAD_ENERGY:
            continue
        design = np.stack([gx.ravel(), gy.ravel(), a.ravel(), np.ones(p * p)], axis=1)
        wd = design * win.ravel()[:, None]
        normal = design.T @ wd
        # one CURRENT crop covering every shift the search may try
        reach = (half + m) * np.abs(jac[k]).sum(axis=1) + search + 2
        qx0, qy0 = int(math.floor(q0[k, 0] - reach[0])), int(math.floor(q0[k, 1] - reach[1]))
        qx1, qy1 = int(math.ceil(q0[k, 0] + reach[0])), int(math.ceil(q0[k, 1] + reach[1]))
        if qx0 < 0 or qy0 < 0 or qx1 > wc or qy1 > hc:
            continue
        crop = _grey_crop(current, qx0, qy0, qx1, qy1)
        c = centres[k]
        # patch pixel (i, j) is the baseline point u = (x0 - m + j + 0.5, y0 - m + i + 0.5)
        u00 = np.array([x0 - m + 0.5, y0 - m + 0.5])
        shift = np.zeros(2)
        ok = False
        ncc = 0.0
        for it in range(1 + _LK_ITERATIONS):
            t = q0[k] + jac[k] @ (u00 - shift - c) - 0.5 - (qx0, qy0)
            aff = np.hstack([jac[k], t[:, None]])
            b_full = cv2.warpAffine(
                crop,
                aff,
                (full, full),
                flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_REPLICATE,
            )
            b = _smooth(np.asarray(b_full))[inner].astype(np.float64)
            if it == 0:
                # coarse: b(u) = a(u - s), i.e. the model error is e = -s
                (sx, sy), _resp = cv2.phaseCorrelate(
                    (a - (a * win).sum() / wsum).astype(np.float32),
                    (b - (b * win).sum() / wsum).astype(np.float32),
                    win.astype(np.float32),
                )
                delta = -np.array([sx, sy])
            else:
                # b ~ g a + o + g grad(a) . e
                sol = np.linalg.solve(normal, wd.T @ b.ravel())
                if sol[2] <= 0.05:
                    break
                delta = sol[:2] / sol[2]
                fit = design @ sol
                bc = b.ravel() - (b.ravel() * win.ravel()).sum() / wsum
                fc = fit - (fit * win.ravel()).sum() / wsum
                ncc = float((win.ravel() * bc * fc).sum()) / math.sqrt(
                    float((win.ravel() * bc * bc).sum() * (win.ravel() * fc * fc).sum()) + 1e-12
                )
            shift = shift + delta
            if np.hypot(*shift) > min(p / 4, search):
                break
            if it > 0 and np.hypot(*delta) < _LK_CONVERGED:
                ok = True
                break
        if not ok or ncc < _MIN_NCC:
            continue
        out_b.append(c)
        out_c.append(c - shift)
    if not out_b:
        return np.zeros((0, 2)), np.zeros((0, 2))
    pts_b = np.array(out_b)
    return pts_b, _map_to_current(h, grid, np.array(out_c), (hb, wb))
