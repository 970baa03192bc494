"""The change's own cue to the lamp's axis: dipoles of the deformations in the log ratio.

To first order a height change ``dh`` under a lamp with in-plane direction
``u`` changes log shading by ``-(|l_xy| / l_z) u . grad dh`` (FIELD-NOTES.md):
a bump shows as a bright / dark pair along ``u``. Smoothed at a scale ``s``,
the ratio's gradient at the pair's centre is ``-c H(dh_s) u``; for a round
bulge or dent the Hessian there is isotropic, so the gradient points along
the lamp's axis, whatever the bump's sign (a bulge lit from one end is a dent
lit from the other: the blob fixes the axis, never its end). The painted
texture cancels in the ratio; what is left of it (the lamp moved a little
between the scans, registration, gloss) is spread over the canvas at the
stroke scale. So the cue keeps only strong, compact, achromatic peaks that a
dipole explains, and is absent when fewer than BLOB_MIN remain (a pair
without relief change has none).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from monitor.light.grid import _fill, _gauss
from monitor.light.params import (
    BLOB_CHROMA,
    BLOB_DIPOLE_R2,
    BLOB_MIN,
    BLOB_SCALE,
    BLOB_UNC_FLOOR_DEG,
    BLOB_Z,
)

#: Template widths tried for the dipole test, in units of the smoothing scale
#: (deformations of 1-5 % of the long side span them).
_TEMPLATE_FACTORS = (1.0, 1.5, 2.5, 4.0)
#: Peaks tested for the dipole shape at most (strongest first).
_MAX_PEAKS = 100


@dataclass(frozen=True)
class _Blobs:
    phi: float  # radians, image coordinates (x right, y down), mod pi
    uncertainty_deg: float  # ~2 sigma
    n_blobs: int
    coherence: float  # length of the mean doubled-angle vector, 0..1


def _dipole_r2(sm: np.ndarray, ok: np.ndarray, y: int, x: int, th: float, s: float) -> float:
    """Share of the smoothed ratio around ``(y, x)`` a dipole along ``th`` explains."""
    h, w = sm.shape
    best = 0.0
    for fac in _TEMPLATE_FACTORS:
        sd = fac * s
        rad = int(3.0 * sd) + 1
        y0, y1, x0, x1 = max(0, y - rad), min(h, y + rad + 1), max(0, x - rad), min(w, x + rad + 1)
        m = ok[y0:y1, x0:x1]
        if m.sum() < 10:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1]
        dx, dy = (xx - x).astype(np.float64), (yy - y).astype(np.float64)
        gauss = np.exp(-(dx * dx + dy * dy) / (2 * sd * sd))
        tmpl = ((math.cos(th) * dx + math.sin(th) * dy) * gauss)[m]
        p = sm[y0:y1, x0:x1][m].astype(np.float64)
        p = p - p.mean()
        den = float(p @ p) * float(tmpl @ tmpl)
        if den > 0:
            best = max(best, float(p @ tmpl) ** 2 / den)
    return best


def _blob_axis(ratio: np.ndarray, dchroma: np.ndarray, ok: np.ndarray) -> _Blobs | None:
    """The lamp's axis from the deformation dipoles of a pair's log ratio.

    Parameters
    ----------
    ratio
        Log luminance ratio (current over baseline) on the working grid.
    dchroma
        Change of the chromatic log channels (H x W x 3), same grid.
    ok
        Pixels trusted in both scans.

    Returns
    -------
    _Blobs or None
        None when fewer than BLOB_MIN blobs pass (no relief change to read).
    """
    s = BLOB_SCALE * float(max(ok.shape))
    hp, _ = _fill(ratio, ok, 4.0 * s)
    sm = _gauss(hp, s)
    gx = _gauss(hp, s, (0, 1))
    gy = _gauss(hp, s, (1, 0))
    inner = ndimage.binary_erosion(ok, iterations=int(3 * s) + 1)
    if inner.sum() < 100:
        return None
    mag = np.hypot(gx, gy)
    sigma = 1.4826 * float(np.median(np.abs(np.concatenate([gx[inner], gy[inner]]))))
    if sigma <= 0:
        return None
    peaks = (mag == ndimage.maximum_filter(mag, size=int(4 * s) | 1)) & inner
    peaks &= mag >= BLOB_Z * sigma
    ys, xs = np.nonzero(peaks)
    if len(ys) < BLOB_MIN:
        return None
    # the strongest first, at most _MAX_PEAKS (a bound on the time: the train and
    # validation renders had at most 45 peaks above BLOB_Z)
    order = np.argsort(-mag[ys, xs])[:_MAX_PEAKS]
    ys, xs = ys[order], xs[order]
    chroma = np.zeros_like(mag)
    for ch in range(dchroma.shape[2]):
        d, _ = _fill(np.where(ok, dchroma[..., ch], 0.0), ok, 4.0 * s)
        d = _gauss(d, s)
        chroma += d * d
    thetas, weights = [], []
    for y, x in zip(ys, xs, strict=True):
        achro = abs(float(sm[y, x])) + float(mag[y, x]) * s
        if math.sqrt(float(chroma[y, x])) > BLOB_CHROMA * achro:
            continue  # a stain or bloom: chromatic
        th = math.atan2(float(gy[y, x]), float(gx[y, x]))
        if _dipole_r2(sm, inner, int(y), int(x), th, s) < BLOB_DIPOLE_R2:
            continue  # not a dipole: texture residual
        thetas.append(th)
        weights.append((float(mag[y, x]) / sigma) ** 2)  # angle noise ~ 1 / z rad
    if len(thetas) < BLOB_MIN:
        return None
    th_a, w = np.asarray(thetas), np.asarray(weights)
    w = w / w.sum()
    vec = np.array([(w * np.cos(2 * th_a)).sum(), (w * np.sin(2 * th_a)).sum()])
    norm = float(np.hypot(*vec))
    if norm < 1e-9:
        return None
    n_eff = 1.0 / float((w * w).sum())
    perp = np.array([-vec[1], vec[0]]) / norm
    dev = np.stack([np.cos(2 * th_a), np.sin(2 * th_a)], axis=1) @ perp
    se = math.sqrt(float((w * dev * dev).sum()) / max(n_eff - 1.0, 1.0))
    unc = math.degrees(0.5 * math.atan2(2.0 * se, norm))
    phi = (0.5 * math.atan2(vec[1], vec[0])) % math.pi
    return _Blobs(phi, max(BLOB_UNC_FLOOR_DEG, min(unc, 90.0)), len(thetas), norm)
