"""The cues: axis (structure tensor), end (raised-relief skew, near-lamp convergence), shadows."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

from monitor.light.grid import (
    _fill,
    _gauss,
    _tiles,
)
from monitor.light.params import (
    CLIP_LOW,
    GRAD_SIGMA,
    HIGHPASS_SIGMA,
    INTEGRATION_EPS,
    LUMA,
    MIN_GRADIENT,
    MIN_TILE_VALID,
    MIN_TILES,
    SHADOW_BINS,
    SHADOW_BLACK,
    SHADOW_MIN_GROUND,
    SHADOW_MIN_GROUND_LUM,
    SHADOW_MIN_MODULATION,
    SHADOW_MIN_SHADOW,
    SHADOW_MIN_UNC,
    SHADOW_NEUTRAL,
    SHADOW_OBJECT,
    SHADOW_REL,
    SIGN_HIGHPASS_SIGMA,
)


def _axis_vectors(
    loglum: np.ndarray, chroma: np.ndarray | None, ok: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-tile doubled-angle vectors ``a (cos 2phi, sin 2phi)``, tile weights, centres.

    ``phi`` is the principal direction of the (chroma-weighted, magnitude-
    normalised) gradient structure tensor in image coordinates (x right, y
    down); ``a`` its anisotropy ``(l1 - l2) / (l1 + l2)``. Centres are
    ``(x, y)`` from the image centre in units of the long side.
    """
    hp, _ = _fill(loglum, ok, HIGHPASS_SIGMA)
    gx = _gauss(hp, GRAD_SIGMA, (0, 1))
    gy = _gauss(hp, GRAD_SIGMA, (1, 0))
    mag2 = gx * gx + gy * gy
    # gradients within reach of an invalid pixel see the zero fill: not used
    inner = ndimage.binary_erosion(ok, iterations=int(math.ceil(3 * GRAD_SIGMA)))
    wgt = inner.astype(np.float32)
    if chroma is not None:
        cg = np.zeros_like(mag2)
        for ch in range(chroma.shape[2]):
            cx = _gauss(chroma[..., ch], GRAD_SIGMA, (0, 1))
            cy = _gauss(chroma[..., ch], GRAD_SIGMA, (1, 0))
            cg += cx * cx + cy * cy
        wgt = wgt * mag2 / (mag2 + 4.0 * cg + 1e-12)
    # magnitude^1 weighting: strong paint edges do not outvote the texture
    scale = wgt / np.sqrt(mag2 + 1e-12)
    jxx, jyy, jxy = scale * gx * gx, scale * gy * gy, scale * gx * gy
    vecs, wts, centres = [], [], []
    long_side = float(max(ok.shape))
    for sy, sx in _tiles(ok.shape):
        if ok[sy, sx].mean() < MIN_TILE_VALID:
            continue
        if float(np.sqrt(mag2[sy, sx].mean())) < MIN_GRADIENT:
            continue  # flat: no shading to read (float round-off has a direction too)
        a, b, c = float(jxx[sy, sx].sum()), float(jyy[sy, sx].sum()), float(jxy[sy, sx].sum())
        tr = a + b
        if tr <= 0:
            continue
        vecs.append(((a - b) / tr, 2.0 * c / tr))
        wts.append(tr)
        centres.append(
            (
                (0.5 * (sx.start + sx.stop) - 0.5 * ok.shape[1]) / long_side,
                (0.5 * (sy.start + sy.stop) - 0.5 * ok.shape[0]) / long_side,
            )
        )
    return (
        np.asarray(vecs, np.float64).reshape(-1, 2),
        np.asarray(wts, np.float64),
        np.asarray(centres, np.float64).reshape(-1, 2),
    )


@dataclass(frozen=True)
class _Axis:
    phi: float  # radians, image coordinates, mod pi
    uncertainty_deg: float  # ~2 sigma
    anisotropy: float
    n_tiles: int


def _combine_axis(vecs: np.ndarray, wts: np.ndarray) -> _Axis | None:
    if len(vecs) < MIN_TILES:
        return None
    w = wts / wts.sum()
    mean = (w[:, None] * vecs).sum(axis=0)
    norm = float(np.hypot(*mean))
    if norm < 1e-9:
        return None
    phi = 0.5 * math.atan2(mean[1], mean[0])
    perp = np.array([-mean[1], mean[0]]) / norm
    n_eff = 1.0 / float((w * w).sum())
    dev = (vecs - mean) @ perp
    se = math.sqrt(float((w * dev * dev).sum()) / max(n_eff - 1.0, 1.0))
    unc = math.degrees(0.5 * math.atan2(2.0 * se, norm))  # ~2 sigma, doubled angle halved
    return _Axis(phi=phi % math.pi, uncertainty_deg=unc, anisotropy=norm, n_tiles=len(vecs))


def _integrate_along(hp: np.ndarray, ux: float, uy: float) -> np.ndarray:
    """Height (up to scale) from log shading, integrated towards ``(ux, uy)``.

    With ``log s ~ -c d . grad h`` and ``u = d`` the result is ``+c' h``.
    """
    h, w = hp.shape
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    ku = 2.0 * math.pi * (fx * ux + fy * uy)
    k2 = (2.0 * math.pi) ** 2 * (fx * fx + fy * fy)
    spec = np.fft.rfft2(hp)
    # d/du <-> i ku; h = -(1 / (i ku)) * log s = i ku / ku^2 * log s (regularised)
    out = spec * (1j * ku) / (ku * ku + INTEGRATION_EPS**2 * k2 + 1e-9)
    out[0, 0] = 0.0
    return np.fft.irfft2(out, s=(h, w)).astype(np.float32)


def _sign_cue(loglum: np.ndarray, ok: np.ndarray, phi: float) -> tuple[float, float, int]:
    """Evidence that the lamp lies at ``+u = (cos phi, sin phi)`` (image coords).

    Returns (t statistic of the per-tile skew of the integrated height,
    mean skew, tiles used). Positive: the lamp is towards ``+u``.
    """
    hp, _ = _fill(loglum, ok, SIGN_HIGHPASS_SIGMA)
    height = _integrate_along(hp, math.cos(phi), math.sin(phi))
    height, _ = _fill(height, ok, SIGN_HIGHPASS_SIGMA)
    skews = []
    for sy, sx in _tiles(ok.shape):
        m = ok[sy, sx]
        if m.mean() < MIN_TILE_VALID:
            continue
        v = height[sy, sx][m].astype(np.float64)
        v = v - v.mean()
        s2 = float((v * v).mean())
        if s2 <= 0:
            continue
        skews.append(float((v**3).mean()) / s2**1.5)
    if len(skews) < MIN_TILES:
        return 0.0, 0.0, len(skews)
    sk = np.asarray(skews)
    se = float(sk.std(ddof=1)) / math.sqrt(len(sk)) + 1e-9
    return float(sk.mean()) / se, float(sk.mean()), len(sk)


def _convergence_cue(
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], phi: float
) -> float:
    """Evidence from a near lamp that it lies at ``+u = (cos phi, sin phi)``.

    A lamp at a finite distance lights each point from the direction of the
    lamp's foot ``F`` on the canvas plane: the local axes converge towards
    ``F``. A tile at offset ``p`` from the centre then has its axis turned by
    ``atan2(-p.u_perp, R - p.u)`` from ``u`` when the lamp is at ``+u``
    (``F = R u``) and by ``atan2(+p.u_perp, R + p.u)`` when it is at ``-u``:
    the two ends predict opposite rotations across the image. The turn
    (the tile's doubled-angle vector projected on the perpendicular of the
    mean axis, one intercept per cue) is regressed on ``p.u_perp``.

    A distant lamp (or a flip of relief and lamp) gives no slope; painted
    structure that turns across the image gives one of either sign, so the
    statistic (t of the slope, positive: lamp towards ``+u``) only confirms
    another cue (see SIGN_T_LOW).
    """
    perp2 = np.array([-math.sin(2.0 * phi), math.cos(2.0 * phi)])
    uperp = np.array([-math.sin(phi), math.cos(phi)])
    ys, cols, xs = [], [], []
    for i, (vecs, _, centres) in enumerate(parts):
        if len(vecs) < MIN_TILES:
            continue
        ys.append(vecs @ perp2)
        xs.append(centres @ uperp)
        cols.append(np.full(len(vecs), i))
    if not ys:
        return 0.0
    y, x, col = np.concatenate(ys), np.concatenate(xs), np.concatenate(cols)
    groups = np.unique(col)
    design = np.zeros((len(y), len(groups) + 1))
    for j, g in enumerate(groups):
        design[col == g, j] = 1.0
    design[:, -1] = x
    if len(y) <= design.shape[1] + 2 or float(np.ptp(x)) <= 0.0:
        return 0.0
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ beta
    s2 = float(resid @ resid) / (len(y) - design.shape[1])
    cov = s2 * np.linalg.pinv(design.T @ design)
    se = math.sqrt(max(float(cov[-1, -1]), 1e-18))
    return float(-beta[-1] / se)


def _azimuth_of(phi: float) -> float:
    """Image direction (radians, y down) -> azimuth degrees (CCW, 0 = right)."""
    return math.degrees(math.atan2(-math.sin(phi), math.cos(phi))) % 360.0


@dataclass(frozen=True)
class _Shadow:
    azimuth_deg: float
    uncertainty_deg: float
    modulation: float
    n_edge: int


def _shadow_cue(small: np.ndarray, valid: np.ndarray) -> _Shadow | None:
    """The lamp from cast shadows: shadows lie on the far side of objects from it.

    Objects are coloured (or black) regions on a neutral ground; shadows are
    neutral pixels clearly darker than the local ground. For each direction
    of the objects' outward normal, the fraction of the outline with shadow
    next to it is measured; the lamp is opposite the direction where that
    fraction peaks (first harmonic over the orientation bins). Normalising
    per orientation keeps long outlines (a leaf's long sides, a stretcher
    bar) from outvoting the rest. Returns None when the scan has no such
    ground, too little shadow, or no clear peak.
    """
    if not valid.any():
        return None
    lum = small @ LUMA
    logc = np.log(np.maximum(small, CLIP_LOW))
    chroma = np.sqrt(((logc - logc.mean(axis=2, keepdims=True)) ** 2).sum(axis=2))
    neutral = (chroma < SHADOW_NEUTRAL) & valid
    if neutral.mean() < SHADOW_MIN_GROUND or float(np.median(lum[neutral])) < SHADOW_MIN_GROUND_LUM:
        return None
    bright = np.where(neutral, lum, 0.0).astype(np.float32)
    ground = ndimage.maximum_filter(cv2.GaussianBlur(bright, (0, 0), 2.0), size=41)
    ground = cv2.GaussianBlur(ground, (0, 0), 10.0)
    rel = lum / np.maximum(ground, CLIP_LOW)
    shadow = neutral & (rel < SHADOW_REL) & (rel > SHADOW_BLACK)
    if shadow.mean() < SHADOW_MIN_SHADOW:
        return None
    obj = ((chroma > SHADOW_OBJECT) | (rel <= SHADOW_BLACK)) & valid
    soft = cv2.GaussianBlur(obj.astype(np.float32), (0, 0), 2.0)
    gy, gx = np.gradient(soft)
    edge = (np.hypot(gx, gy) > 0.05) & ndimage.binary_erosion(valid, iterations=3)
    if edge.sum() < 200:
        return None
    near = cv2.GaussianBlur(shadow.astype(np.float32), (0, 0), 2.0)
    theta = np.arctan2(-gy[edge], -gx[edge])  # outward normal, image coordinates
    nb = SHADOW_BINS
    b = np.floor((theta + math.pi) / (2.0 * math.pi) * nb).astype(int) % nb
    cnt = np.bincount(b, minlength=nb).astype(np.float64)
    frac = np.bincount(b, weights=near[edge], minlength=nb) / np.maximum(cnt, 1.0)
    good = cnt >= 20
    if good.sum() < 0.75 * nb or frac[good].mean() <= 0:
        return None
    ang = (np.arange(nb) + 0.5) / nb * 2.0 * math.pi - math.pi
    m = frac[good] - frac[good].mean()
    c, sn = np.cos(ang[good]), np.sin(ang[good])
    # least-squares first harmonic on the bins present; the lamp is opposite
    a1, b1 = 2.0 * float((m * c).mean()), 2.0 * float((m * sn).mean())
    amp = math.hypot(a1, b1)
    modulation = amp / float(frac[good].mean())
    if modulation < SHADOW_MIN_MODULATION:
        return None
    resid = m - (a1 * c + b1 * sn)
    sigma = float(resid.std()) / (amp * math.sqrt(good.sum() / 2.0) + 1e-12)
    unc = max(SHADOW_MIN_UNC, math.degrees(2.0 * sigma))
    az = _azimuth_of(math.atan2(-b1, -a1))
    return _Shadow(az, min(unc, 90.0), modulation, int(edge.sum()))


