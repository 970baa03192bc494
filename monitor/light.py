"""Where the lamp was: estimate the light's azimuth from the scans themselves.

Physics (FIELD-NOTES.md, "Where the lamp was"). Under a distant lamp with
in-plane direction ``d`` (unit, towards the lamp) and small slopes, the log
shading is ``log s ~ const - (|l_xy| / l_z) d . grad h``. Two consequences:

* **Axis** (azimuth mod 180). For a height field whose spectrum is isotropic
  (canvas weave, impasto in all directions, a round bulge) the gradient
  structure tensor of the shading is ``J ~ I + 2 d d^T``: its principal axis
  is the light's axis, with an eigenvalue ratio near 3 : 1 (Pentland 1982;
  Lee and Rosenfeld 1985 use the same first-order model). Paint edges add
  gradients of their own; they are down-weighted where they are chromatic
  (relief shades every channel alike, paint changes them unequally).
* **Sign** (which end of the axis). ``h`` under ``d`` and ``-h`` under ``-d``
  give the *same* image, clipped dark flanks and all: the convex / concave
  ambiguity is exact for a distant Lambertian lamp. The sign therefore comes
  from a prior: paint relief (impasto strokes, raised objects with their
  shadows) is mostly *raised*, so the height integrated along the correct
  direction has a positive skew, and along the wrong one a negative skew.

A pair adds the change itself: the log ratio of two registered scans cancels
the paint, leaving the shading of the relief change (a bright/dark pair along
the light axis). It sharpens the axis; it carries no sign (bulges and dents
are equally likely), so the pair's sign comes from both scans' texture.

Elevation only scales the shading contrast by ``cot(elevation)`` times an
unknown slope scale, so it is not identifiable from one lamp without a
height prior: ``elevation_deg`` is ``None`` and the note says so.

Every estimate carries an uncertainty in degrees from the spread of the cue
over image tiles, and a confidence in [0, 1]; "could not tell" is an estimate
with confidence 0 and an uncertainty of 180 degrees, never a default lamp.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

from monitor.config import check_elevation, parse_light_azimuth
from monitor.errors import MonitorError
from monitor.results import LIGHT_SOURCES, Light, LightCheck, LightEstimate, LightUsed

#: Long side of the working grid (the overview the cues are measured on).
WORK_SIDE = 1024
#: Tile side on the working grid (uncertainty from the spread over tiles).
TILE = 96
#: A tile needs this fraction of valid pixels.
MIN_TILE_VALID = 0.6
#: Fewer usable tiles than this: could not tell.
MIN_TILES = 4
#: A tile whose rms log-luminance gradient (per working pixel) is below this is flat.
MIN_GRADIENT = 1e-3
#: Pixels at or above this linear value in any channel are clipped (ignored).
CLIP_HIGH = 0.985
#: Pixels below this linear luminance carry no shading (ignored).
CLIP_LOW = 1e-3
#: Gaussian derivative scale of the axis cue, working pixels.
GRAD_SIGMA = 1.0
#: Background removed before the axis cue (high-pass), working pixels.
HIGHPASS_SIGMA = 12.0
#: Finer high-pass of the sign cue: fine relief (strokes, weave) outweighs the
#: paint there (measured on test renders: 12 px -> 78 % right ends, 3 px -> 97 %).
SIGN_HIGHPASS_SIGMA = 3.0
#: Regularisation of the integration along the light (fraction of |k|).
INTEGRATION_EPS = 0.5
#: |t| of the sign cue from which the end of the axis is reported. On the test
#: renders (bench/light_eval.py, 400x300) wrong ends reached |t| = 2.6 at normal
#: elevation; right ends had |t| >= 3 on every raking and 56 % of normal scans.
#: Checked on the validation split (``--split validation``): no confident wrong end.
SIGN_T = 3.0
#: Second tier of the pair's end (a weaker raised-relief prior confirmed by a
#: physical cue): |t| of the skew from SIGN_T_LOW, the near-lamp convergence
#: cue (:func:`_convergence_cue`) agreeing with |t| >= CONV_T, and the pair's
#: axis known to AXIS_TIGHT_DEG. Chosen on 34 train- and validation-split
#: renders at 960x720, normal elevation (18 near lamps): every right end had a
#: positive skew t but one (-0.2); the convergence t of distant lamps ranged
#: -12..+11 (painted structure turns the local axes too), so it only confirms;
#: no wrong end passed the tier. Checked on the validation split at 400x300.
SIGN_T_LOW = 1.8
CONV_T = 2.0
AXIS_TIGHT_DEG = 8.0
#: The pair's end is reported only when its axis is known to this (the pair's
#: combined ~2 sigma): on the same 34 renders every pair above 10 deg had its
#: axis 45-50 deg off (painted structure outweighing the relief), and an end
#: read along a wrong axis is a confident wrong lamp. Raking pairs: <= 3.2.
AXIS_END_DEG = 9.0
#: Both axis limits are for AXIS_REF_TILES tiles (960x720: 76-80) and scale with
#: 1 / sqrt(tiles): the failure they catch is painted structure turning the
#: tiles' axes (a spread), not the sampling error of a small scan.
AXIS_REF_TILES = 80
#: Two scans' estimates further apart than this (or their summed uncertainty)
#: mean two lamps (see :func:`check_same_lamp`).
SAME_LAMP_EST_DEG = 60.0
#: Cast-shadow cue (objects on a neutral ground, e.g. relief on paper or a
#: raised object on a pale ground). Chosen on the odd-numbered half of
#: leaves12 (the even half held out: both halves gave 6 of 6 within 30 deg
#: over the whole grid cn in {0.3, 0.5}, rs in {0.7, 0.85}, blur in {1.5, 3}).
#: Log-chroma norm below which a pixel is neutral (paper, grey shadow).
SHADOW_NEUTRAL = 0.3
#: Log-chroma norm above which a pixel belongs to a (coloured) object.
SHADOW_OBJECT = 0.8
#: A neutral pixel darker than this fraction of the local ground is in shadow
#: (and brighter than SHADOW_BLACK: below that it is a dark object).
SHADOW_REL = 0.7
SHADOW_BLACK = 0.1
#: Orientation bins of the object outline's outward normal.
SHADOW_BINS = 24
#: The cue is used when a pale neutral ground (median linear luminance at least
#: SHADOW_MIN_GROUND_LUM) covers this fraction of the scan, shadows this
#: fraction, and the first harmonic of the shadowed fraction per orientation is
#: at least SHADOW_MIN_MODULATION of its mean. Measured: leaves12 ground 0.61-0.66
#: of the photo at luminance 0.80-1.0; benchmark renders (no cast shadows) at
#: most 0.32 at luminance <= 0.23 (a realism render at 0.21 fired the cue
#: falsely with the earlier floor of 0.2).
SHADOW_MIN_GROUND = 0.4
SHADOW_MIN_GROUND_LUM = 0.5
SHADOW_MIN_SHADOW = 0.002
SHADOW_MIN_MODULATION = 0.35
#: Real lamps are known to ~15 deg (leaves12 README) and the cue errs up to ~20
#: there: floor of the
#: cast-shadow estimate's uncertainty.
SHADOW_MIN_UNC = 20.0
#: Floor of a reported azimuth uncertainty (~2 sigma), degrees. The tile spread
#: gives +/- 2-6 deg where the estimates err by up to 12 (light_eval, raking
#: pairs, p90 9.4) and 15 (docs/benchmarks.md): the floor keeps the stated
#: uncertainty honest; confidence and the checks do not use it.
UNC_FLOOR_DEG = 10.0
#: Estimates at or above this confidence are called confident.
CONFIDENT = 0.5
#: A given azimuth this far (degrees) from a confident estimate disagrees.
DISAGREE_DEG = 45.0

_LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


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
    lum = small @ _LUMA
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


def _unknown(method: str, note: str, n_tiles: int = 0) -> LightEstimate:
    return LightEstimate(
        azimuth_deg=math.nan,
        azimuth_uncertainty_deg=180.0,
        elevation_deg=None,
        elevation_uncertainty_deg=None,
        confidence=0.0,
        method=method,
        axis_deg=math.nan,
        axis_uncertainty_deg=90.0,
        sign_evidence=0.0,
        anisotropy=0.0,
        n_tiles=n_tiles,
        note=note,
    )


_ELEVATION_NOTE = (
    "elevation not estimated: one lamp's shading fixes it only up to the unknown slope scale"
)


def _finish(
    axis: _Axis,
    t_sign: float,
    method: str,
    extra: str = "",
    evidence: float | None = None,
) -> LightEstimate:
    """Turn an axis and the sign evidence into an estimate with its confidence."""
    phi = axis.phi if t_sign >= 0 else axis.phi + math.pi
    az = _azimuth_of(phi)
    axis_unc = min(90.0, axis.uncertainty_deg)
    # sign certainty from the t statistic: 0 below |t| = 1, 0.8 (end of the axis
    # reported) at |t| = SIGN_T, 1 from |t| = 3.5
    sign_conf = float(np.clip((abs(t_sign) - 1.0) / (SIGN_T - 1.0) * 0.8, 0.0, 1.0))
    axis_conf = max(0.0, 1.0 - axis_unc / 30.0)
    confidence = float(np.clip(axis_conf * sign_conf, 0.0, 1.0))
    # the tile spread underrates the error (benchmark: +/- 2 deg reported, 15 deg
    # seen): the reported azimuth uncertainty has a floor
    unc = max(UNC_FLOOR_DEG, axis_unc) if sign_conf >= 0.8 else 180.0
    if unc >= 180.0:  # the end of the axis is unknown: never "confident"
        confidence = min(confidence, 0.45)
    notes = [_ELEVATION_NOTE]
    if sign_conf < 0.8:
        notes.insert(0, "axis found but not which end (raised/recessed relief ambiguity)")
    if axis_unc >= 30.0:
        notes.insert(0, "weak directional shading: axis uncertain")
    if extra:
        notes.insert(0, extra)
    return LightEstimate(
        azimuth_deg=az,
        azimuth_uncertainty_deg=float(unc),
        elevation_deg=None,
        elevation_uncertainty_deg=None,
        confidence=confidence,
        method=method,
        axis_deg=az % 180.0,
        axis_uncertainty_deg=float(axis_unc),
        sign_evidence=float(t_sign if evidence is None else evidence),
        anisotropy=float(axis.anisotropy),
        n_tiles=axis.n_tiles,
        note="; ".join(notes),
    )


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
    lum = small @ _LUMA
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


def _from_shadow(sh: _Shadow, axis: _Axis | None, method: str) -> LightEstimate:
    """An estimate from the cast-shadow cue (it knows the end of the axis)."""
    notes = [f"from cast shadows (modulation {sh.modulation:.2f})", _ELEVATION_NOTE]
    if axis is not None:
        texture_axis = _azimuth_of(axis.phi) % 180.0
        d = angular_difference(texture_axis, sh.azimuth_deg % 180.0)
        if min(d, 180.0 - d) > 30.0:
            notes.insert(1, "the shading-texture axis disagrees (object outlines dominate it)")
    # modulation >= 2 x the threshold counts as a clear peak
    strength = float(np.clip(sh.modulation / (2.0 * SHADOW_MIN_MODULATION), 0.0, 1.0))
    confidence = strength * max(0.0, 1.0 - sh.uncertainty_deg / 90.0)
    return LightEstimate(
        azimuth_deg=sh.azimuth_deg,
        azimuth_uncertainty_deg=sh.uncertainty_deg,
        elevation_deg=None,
        elevation_uncertainty_deg=None,
        confidence=confidence,
        method=method + " + cast shadows",
        axis_deg=sh.azimuth_deg % 180.0,
        axis_uncertainty_deg=sh.uncertainty_deg,
        sign_evidence=float(sh.modulation),
        anisotropy=float(axis.anisotropy) if axis is not None else 0.0,
        n_tiles=axis.n_tiles if axis is not None else 0,
        note="; ".join(notes),
    )


# --------------------------------------------------------------------------- public


def estimate_scan_light(
    rgb_linear: np.ndarray, valid: np.ndarray | None = None, *, elevation: bool = True
) -> LightEstimate:
    """Estimate one scan's lamp from its own shading.

    Parameters
    ----------
    rgb_linear
        H x W x 3 linear RGB in [0, 1] (float); NaN marks pixels outside the scan.
    valid
        Optional H x W mask of pixels to use (default: every finite pixel).
    elevation
        Try to estimate the elevation too. Not identifiable from a single lamp
        without a height prior, so today the estimate's ``elevation_deg`` is
        always ``None`` and its note says why.

    Returns
    -------
    LightEstimate
        Azimuth with a ~2 sigma uncertainty; ``confidence`` 0 and uncertainty
        180 degrees when the scan shows no usable shading ("could not tell").

    Raises
    ------
    MonitorError
        For an input of the wrong type, shape or range.

    Examples
    --------
    >>> from monitor import synth
    >>> from monitor.io import to_linear
    >>> from monitor.results import Light
    >>> spec = synth.PairSpec(seed=3, size=(320, 240), light_baseline=Light(90.0, 25.0))
    >>> est = estimate_scan_light(to_linear(synth.render_pair(spec).baseline))
    >>> abs((est.azimuth_deg - 90.0 + 180.0) % 360.0 - 180.0) < 30.0
    True
    """
    rgb = _check_rgb("rgb_linear", rgb_linear)
    ok = _check_valid(valid, rgb.shape[:2])
    del elevation  # see the docstring: no elevation cue is measured yet
    method = "structure-tensor axis + raised-relief skew sign"
    prep = _prepare(rgb, ok)
    loglum, chroma, okw = prep.loglum, prep.chroma, prep.ok
    shadow = _shadow_cue(prep.small, prep.valid)
    if okw.mean() < 0.05:
        if shadow is not None:
            return _from_shadow(shadow, None, method)
        return _unknown(method, "could not tell: too few unclipped valid pixels")
    vecs, wts, _ = _axis_vectors(loglum, chroma, okw)
    axis = _combine_axis(vecs, wts)
    if shadow is not None:
        return _from_shadow(shadow, axis, method)
    if axis is None:
        return _unknown(method, "could not tell: no directional shading", len(vecs))
    t_sign, _, _ = _sign_cue(loglum, okw, axis.phi)
    return _finish(axis, t_sign, method)


def estimate_pair_light(
    baseline_linear: np.ndarray,
    current_linear: np.ndarray,
    valid: np.ndarray | None = None,
    *,
    elevation: bool = True,
) -> LightEstimate:
    """Estimate the lamp of a registered pair from both scans and from the change.

    The axis combines the scans' texture cue with the log-ratio cue (the
    relief change without the paint); the sign comes from both scans' texture
    (the change itself has none: bulges and dents are equally likely).

    Parameters
    ----------
    baseline_linear, current_linear
        H x W x 3 linear RGB in [0, 1] on the same (baseline) grid, CURRENT
        already warped onto BASELINE; NaN outside the overlap.
    valid
        Optional H x W mask of the overlap.
    elevation
        As in :func:`estimate_scan_light` (not estimated today).

    Returns
    -------
    LightEstimate
        One lamp for the pair. Use :func:`estimate_scan_light` on each scan
        and :func:`compare_light` to find two scans lit differently.

    Raises
    ------
    MonitorError
        For inputs of the wrong type, shape or range, or of different shapes.

    Examples
    --------
    >>> from monitor import synth
    >>> from monitor.io import to_linear
    >>> from monitor.results import Light
    >>> lamp = Light(300.0, 25.0)
    >>> spec = synth.PairSpec(seed=4, size=(320, 240), light_baseline=lamp, light_current=lamp)
    >>> pair = synth.render_pair(spec)
    >>> cur = synth.warp_current_to_baseline(to_linear(pair.current), pair.homography,
    ...                                      pair.lens_k1, (320, 240))
    >>> est = estimate_pair_light(to_linear(pair.baseline), cur)
    >>> abs((est.azimuth_deg - 300.0 + 180.0) % 360.0 - 180.0) < 30.0
    True
    """
    base = _check_rgb("baseline_linear", baseline_linear)
    cur = _check_rgb("current_linear", current_linear)
    if base.shape != cur.shape:
        raise MonitorError(
            f"baseline and current must share one grid, got {base.shape} and {cur.shape}"
        )
    ok = _check_valid(valid, base.shape[:2])
    del elevation
    method = "pair: structure-tensor axis (texture + log ratio) + raised-relief skew sign"
    # without a mask the overlap is where both scans are finite: a NaN
    # invalidates its block on the working grid (no full-resolution pass)
    pb = _prepare(base, ok, "baseline_linear")
    pc = _prepare(cur, ok, "current_linear")
    lb, cb, okb = pb.loglum, pb.chroma, pb.ok
    lc, cc, okc = pc.loglum, pc.chroma, pc.ok
    both = okb & okc
    if both.mean() < 0.05:
        return _unknown(method, "could not tell: too few unclipped pixels in the overlap")
    parts = [_axis_vectors(lb, cb, both), _axis_vectors(lc, cc, both)]
    ratio = lc - lb
    ratio = ratio - float(np.median(ratio[both]))
    parts.append(_axis_vectors(ratio, None, both))
    # inverse-variance weighting of each cue's mean doubled-angle vector; the two
    # scans share their texture, so they count as one cue (their mean vector,
    # their mean spread), the log ratio as the other
    axes = [_combine_axis(vecs, wts) for vecs, wts, _ in parts]
    cues: list[tuple[np.ndarray, float]] = []
    scans = [ax for ax in axes[:2] if ax is not None]
    if scans:
        v = sum(
            (np.array([math.cos(2 * ax.phi), math.sin(2 * ax.phi)]) for ax in scans),
            np.zeros(2),
        )
        sig = float(np.mean([math.radians(max(ax.uncertainty_deg, 0.5)) for ax in scans]))
        cues.append((v / max(float(np.linalg.norm(v)), 1e-12), 1.0 / sig**2))
    if axes[2] is not None:
        ax = axes[2]
        sig = math.radians(max(ax.uncertainty_deg, 0.5))
        cues.append((np.array([math.cos(2 * ax.phi), math.sin(2 * ax.phi)]), 1.0 / sig**2))
    if not cues:
        return _unknown(method, "could not tell: no directional shading in either scan")
    info = np.asarray([c[1] for c in cues])
    vec = (np.asarray([c[0] for c in cues]) * info[:, None]).sum(axis=0) / info.sum()
    phi = (0.5 * math.atan2(vec[1], vec[0])) % math.pi
    unc = math.degrees(1.0 / math.sqrt(info.sum()))
    axis = _Axis(
        phi=phi, uncertainty_deg=unc, anisotropy=float(np.hypot(*vec)), n_tiles=len(parts[0][0])
    )
    t_b, _, _ = _sign_cue(lb, both, phi)
    t_c, _, _ = _sign_cue(lc, both, phi)
    # the two scans share their texture: their evidence is not independent
    t_sign = 0.5 * (t_b + t_c)
    # the limits are spreads over the tiles (see AXIS_REF_TILES)
    size = math.sqrt(AXIS_REF_TILES / max(axis.n_tiles, 1))
    if unc > AXIS_END_DEG * size:
        extra = (
            f"axis known only to {unc:.0f} deg: the end is not read along it "
            f"(raised-relief skew t {t_sign:.1f})"
        )
        return _finish(axis, 0.0, method, extra, evidence=t_sign)
    if abs(t_sign) >= SIGN_T:
        return _finish(axis, t_sign, method)
    t_conv = _convergence_cue(parts, phi)
    if (
        abs(t_sign) >= SIGN_T_LOW
        and abs(t_conv) >= CONV_T
        and t_conv * t_sign > 0
        and unc <= AXIS_TIGHT_DEG * size
    ):
        extra = (
            f"end from the raised-relief skew (t {t_sign:.1f}) confirmed by the near-lamp "
            f"convergence of the local axes (t {t_conv:.1f})"
        )
        return _finish(
            axis, math.copysign(SIGN_T, t_sign), method + " + near-lamp convergence",
            extra, evidence=t_sign,
        )
    return _finish(axis, t_sign, method)


def angular_difference(a_deg: float, b_deg: float) -> float:
    """Smallest angle between two azimuths, degrees in [0, 180].

    Examples
    --------
    >>> angular_difference(350.0, 10.0)
    20.0
    """
    return abs((a_deg - b_deg + 180.0) % 360.0 - 180.0)


def compare_light(given: Light, estimate: LightEstimate) -> LightCheck:
    """Check a claimed lamp against the evidence of the scans.

    A given azimuth disagrees when the estimate is confident and the two are
    more than ``max(DISAGREE_DEG, uncertainty)`` apart, or when only the axis
    is known and the given azimuth is more than that from the axis (a lamp
    claimed 90 degrees off is caught even when the end is unknown).

    Parameters
    ----------
    given
        The lamp a user, sidecar or record claims.
    estimate
        The scans' estimate.

    Returns
    -------
    LightCheck

    Examples
    --------
    >>> est = LightEstimate(10.0, 8.0, None, None, 0.9, "m", 10.0, 8.0, 5.0, 0.3, 40, "")
    >>> compare_light(Light(190.0, 25.0), est).opposite
    True
    """
    if not (math.isfinite(given.azimuth_deg) and 0.0 <= given.azimuth_deg < 360.0):
        raise MonitorError(f"given light azimuth must be in [0, 360), got {given.azimuth_deg}")
    if not estimate.known:
        return LightCheck(
            given,
            estimate,
            math.nan,
            math.nan,
            False,
            False,
            False,
            "light not checked: the scans could not tell where the lamp was",
        )
    diff = angular_difference(given.azimuth_deg, estimate.azimuth_deg)
    axis_diff = min(diff, 180.0 - diff)
    tol_axis = max(DISAGREE_DEG, estimate.axis_uncertainty_deg)
    sign_known = estimate.azimuth_uncertainty_deg < 180.0 and estimate.confidence >= CONFIDENT
    tol = max(DISAGREE_DEG, estimate.azimuth_uncertainty_deg)
    if sign_known:
        disagrees = diff > tol
        opposite = diff > 180.0 - tol
    else:
        tol = tol_axis
        disagrees = axis_diff > tol_axis and estimate.axis_uncertainty_deg < 45.0
        opposite = False
    if disagrees:
        what = "points the opposite way to" if opposite else "disagrees with"
        msg = (
            f"given light azimuth {given.azimuth_deg:.0f} deg {what} the scans' estimate "
            f"{estimate.azimuth_deg:.0f} +/- {estimate.azimuth_uncertainty_deg:.0f} deg"
        )
    else:
        msg = (
            f"given light azimuth {given.azimuth_deg:.0f} deg agrees with the scans' estimate "
            f"{estimate.azimuth_deg:.0f} +/- {estimate.azimuth_uncertainty_deg:.0f} deg"
        )
    return LightCheck(given, estimate, diff, tol, disagrees, opposite, sign_known, msg)


def check_light_values(azimuth_deg: float, elevation_deg: float, where: str = "light") -> None:
    """Refuse an azimuth outside [0, 360) or an elevation outside (0, 90).

    The same check as :func:`monitor.config.parse_light_azimuth` and
    :func:`monitor.config.check_elevation` (the one validation of the house).

    Examples
    --------
    >>> check_light_values(180.0, 30.0)
    >>> check_light_values(400.0, 30.0)
    Traceback (most recent call last):
    ...
    monitor.errors.MonitorError: light azimuth = 400.0: must be 'auto' or a number from 0 up to \
(not including) 360 degrees
    """
    parse_light_azimuth(float(azimuth_deg), f"{where} azimuth")
    check_elevation(float(elevation_deg), f"{where} elevation")


def check_same_lamp(
    baseline: LightEstimate | Light | None, current: LightEstimate | Light | None
) -> None:
    """Refuse a pair whose scans were clearly lit from different directions.

    The change estimators assume one lamp for both scans: a shading change
    from moving the lamp would read as relief. Two recorded lamps differ when
    they are more than ``DISAGREE_DEG`` apart; two estimates when both know
    the end and differ by more than ``max(SAME_LAMP_EST_DEG, u_b + u_c)``, or
    when the axes differ by that much (single-scan axes err up to ~40 deg at
    normal elevation, so estimates get the wider margin).

    Raises
    ------
    MonitorError
        One line that says which lamps and why the pair is refused.

    Examples
    --------
    >>> check_same_lamp(Light(180.0, 30.0), Light(170.0, 30.0))
    >>> check_same_lamp(Light(180.0, 30.0), Light(0.0, 30.0))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    monitor.errors.MonitorError: baseline and current were lit from different directions ...
    """
    if baseline is None or current is None:
        return
    tail = (
        "the comparison assumes one lamp, so a moved lamp would read as relief; "
        "compare scans lit alike"
    )
    if isinstance(baseline, Light) and isinstance(current, Light):
        d = angular_difference(baseline.azimuth_deg, current.azimuth_deg)
        if d > DISAGREE_DEG:
            raise MonitorError(
                f"baseline and current were lit from different directions "
                f"({baseline.azimuth_deg:.0f} and {current.azimuth_deg:.0f} deg, {d:.0f} apart): "
                + tail
            )
        return
    if not (isinstance(baseline, LightEstimate) and isinstance(current, LightEstimate)):
        return
    if not (baseline.known and current.known):
        return
    if baseline.confident and current.confident:
        tol = max(SAME_LAMP_EST_DEG,
                  baseline.azimuth_uncertainty_deg + current.azimuth_uncertainty_deg)
        d = angular_difference(baseline.azimuth_deg, current.azimuth_deg)
        if d > tol:
            raise MonitorError(
                f"baseline and current look lit from different directions (estimated "
                f"{baseline.azimuth_deg:.0f} and {current.azimuth_deg:.0f} deg, {d:.0f} apart, "
                f"more than {tol:.0f}): " + tail
            )
    tol = max(SAME_LAMP_EST_DEG, baseline.axis_uncertainty_deg + current.axis_uncertainty_deg)
    d = angular_difference(baseline.axis_deg, current.axis_deg)
    d = min(d, 180.0 - d)
    if d > tol and tol < 90.0:
        raise MonitorError(
            f"baseline and current look lit along different axes (estimated "
            f"{baseline.axis_deg:.0f} and {current.axis_deg:.0f} deg mod 180, {d:.0f} apart, "
            f"more than {tol:.0f}): " + tail
        )


def resolve_light(
    given: Light | None,
    source: str,
    estimate: LightEstimate,
    *,
    elevation_deg: float,
    elevation_source: str = "default",
    baseline_estimate: LightEstimate | None = None,
    current_estimate: LightEstimate | None = None,
    strict: bool = False,
) -> LightUsed:
    """Decide the lamp a comparison uses, and what to tell the user about it.

    * A lamp given (flag, sidecar, ingest record, config): it is used; when the
      scans' evidence disagrees (:func:`compare_light`) a warning is returned,
      and with ``strict`` it is an error.
    * No lamp given: the estimate is used when it knows the end of the axis.
      When it knows only the axis it is refused: a conservator reads bulge
      versus recession from the polarity, and a guessed end would invert every
      call half the time; the message names the two candidate azimuths.
    * Each scan's estimate, when given, is checked for a different lamp
      (:func:`check_same_lamp`).

    Parameters
    ----------
    given
        The claimed lamp, or None for "auto".
    source
        Where ``given`` came from (one of ``LIGHT_SOURCES``; "estimated" when None).
    estimate
        The registered pair's estimate (:func:`estimate_pair_light`).
    elevation_deg, elevation_source
        The elevation to use with an estimated azimuth (the scans do not fix it).
    baseline_estimate, current_estimate
        Each scan's own estimate (optional).
    strict
        A disagreeing given lamp is an error instead of a warning.

    Returns
    -------
    LightUsed

    Raises
    ------
    MonitorError
        A given lamp out of range; a disagreement under ``strict``; no lamp
        given and the scans cannot tell (or only tell the axis); two scans lit
        differently.

    Examples
    --------
    >>> est = LightEstimate(10.0, 8.0, None, None, 0.9, "m", 10.0, 8.0, 5.0, 0.3, 40, "")
    >>> resolve_light(None, "estimated", est, elevation_deg=30.0).source
    'estimated'
    >>> used = resolve_light(Light(190.0, 30.0), "given", est, elevation_deg=30.0)
    >>> used.disagrees, used.source
    (True, 'given')
    """
    if source not in LIGHT_SOURCES:
        raise MonitorError(f"unknown light source {source!r}; one of {', '.join(LIGHT_SOURCES)}")
    if given is not None:
        check_light_values(given.azimuth_deg, given.elevation_deg, "given light")
    else:
        check_light_values(0.0, elevation_deg, "light")
    check_same_lamp(baseline_estimate, current_estimate)
    if given is not None:
        check = compare_light(given, estimate)
        warns: tuple[str, ...] = ()
        if check.disagrees:
            if strict:
                raise MonitorError(check.message + " (--strict-light: nothing written)")
            warns = (check.message,)
        return LightUsed(
            light=given,
            source=source,
            azimuth_uncertainty_deg=None,
            elevation_source=source,
            estimate=estimate,
            baseline_estimate=baseline_estimate,
            current_estimate=current_estimate,
            check=check,
            warnings=warns,
        )
    if not estimate.known:
        raise MonitorError(
            "no light given and the scans could not tell where the lamp was: "
            "give --light-azimuth DEG (0 right, 90 top, 180 left, 270 bottom)"
        )
    if estimate.azimuth_uncertainty_deg >= 180.0:
        a = estimate.axis_deg % 180.0
        raise MonitorError(
            f"no light given and the scans show the lamp along the {a:.0f}/{a + 180:.0f} deg axis "
            "but not from which end (a bulge lit from one end looks like a dent lit from the "
            f"other): give --light-azimuth {a:.0f} or {a + 180:.0f}"
        )
    return LightUsed(
        light=Light(float(estimate.azimuth_deg) % 360.0, float(elevation_deg)),
        source="estimated",
        azimuth_uncertainty_deg=float(estimate.azimuth_uncertainty_deg),
        elevation_source=elevation_source,
        estimate=estimate,
        baseline_estimate=baseline_estimate,
        current_estimate=current_estimate,
    )
