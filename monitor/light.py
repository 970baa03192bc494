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
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from monitor.errors import MonitorError
from monitor.results import Light, LightCheck, LightEstimate

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
#: Estimates at or above this confidence are called confident.
CONFIDENT = 0.5
#: A given azimuth this far (degrees) from a confident estimate disagrees.
DISAGREE_DEG = 45.0

_LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


# --------------------------------------------------------------------------- helpers


def _check_rgb(name: str, rgb: object) -> np.ndarray:
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
    lo, hi = float(np.min(rgb)), float(np.max(rgb))  # NaN propagates: then look closer
    if math.isnan(lo) or math.isnan(hi):
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = float(np.nanmin(rgb)), float(np.nanmax(rgb))
    if math.isfinite(lo) and (lo < 0.0 or hi > 1.0 + 1e-6):
        raise MonitorError(
            f"{name} must be linear RGB in [0, 1]; got values in [{lo:.3g}, {hi:.3g}]"
        )
    return rgb


def _check_valid(valid: object, shape: tuple[int, int]) -> np.ndarray | None:
    if valid is None:
        return None
    if not isinstance(valid, np.ndarray) or valid.shape != shape:
        got = getattr(valid, "shape", type(valid).__name__)
        raise MonitorError(f"valid must be a boolean H x W mask of shape {shape}, got {got}")
    return valid.astype(bool)


def _downsample(rgb: np.ndarray, valid: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Area-average to a long side <= WORK_SIDE over valid finite pixels.

    Returns the small image (H' x W' x 3) and its mask (blocks wholly valid).
    A scan without NaN and without a mask takes a single reshape-mean pass.
    """
    h, w = rgb.shape[:2]
    f = max(1, math.ceil(max(h, w) / WORK_SIDE))
    hh, ww = (h // f) * f, (w // f) * f
    x = rgb[:hh, :ww]
    has_nan = not math.isfinite(float(np.sum(x, dtype=np.float64)))
    if valid is None and not has_nan:
        small = x.reshape(hh // f, f, ww // f, f, 3).mean(axis=(1, 3), dtype=np.float32)
        return small.astype(np.float32), np.ones(small.shape[:2], dtype=bool)
    m = np.isfinite(x).all(axis=2)
    if valid is not None:
        m &= valid[:hh, :ww]
    xz = np.where(m[..., None], x, 0.0).astype(np.float32)
    if f == 1:
        return xz, m
    num = xz.reshape(hh // f, f, ww // f, f, 3).sum(axis=(1, 3))
    cnt = m.reshape(hh // f, f, ww // f, f).sum(axis=(1, 3)).astype(np.float32)
    return (num / np.maximum(cnt, 1.0)[..., None]).astype(np.float32), cnt >= 0.99 * f * f


def _prepare(
    rgb: np.ndarray, valid: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log luminance, chromatic log channels and the trusted mask on the working grid."""
    small, ok_small = _downsample(rgb, valid)
    lum = small @ _LUMA
    ok_small &= (small.max(axis=2) < CLIP_HIGH) & (lum > CLIP_LOW)
    ok_small = ndimage.binary_erosion(ok_small, iterations=2)
    logc = np.log(np.maximum(small, CLIP_LOW))
    loglum = np.log(np.maximum(lum, CLIP_LOW))
    chroma = logc - logc.mean(axis=2, keepdims=True)
    return loglum.astype(np.float32), chroma.astype(np.float32), ok_small


def _fill(x: np.ndarray, ok: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """High-pass by a normalised-convolution background; zero outside ``ok``."""
    wgt = ok.astype(np.float32)
    num = ndimage.gaussian_filter(np.where(ok, x, 0.0), sigma, mode="nearest")
    den = ndimage.gaussian_filter(wgt, sigma, mode="nearest")
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
) -> tuple[np.ndarray, np.ndarray]:
    """Per-tile doubled-angle vectors ``a (cos 2phi, sin 2phi)`` and tile weights.

    ``phi`` is the principal direction of the (chroma-weighted, magnitude-
    normalised) gradient structure tensor in image coordinates (x right, y
    down); ``a`` its anisotropy ``(l1 - l2) / (l1 + l2)``.
    """
    hp, _ = _fill(loglum, ok, HIGHPASS_SIGMA)
    gx = ndimage.gaussian_filter(hp, GRAD_SIGMA, order=(0, 1), mode="nearest")
    gy = ndimage.gaussian_filter(hp, GRAD_SIGMA, order=(1, 0), mode="nearest")
    mag2 = gx * gx + gy * gy
    # gradients within reach of an invalid pixel see the zero fill: not used
    inner = ndimage.binary_erosion(ok, iterations=int(math.ceil(3 * GRAD_SIGMA)))
    wgt = inner.astype(np.float32)
    if chroma is not None:
        cg = np.zeros_like(mag2)
        for c in range(chroma.shape[2]):
            cx = ndimage.gaussian_filter(chroma[..., c], GRAD_SIGMA, order=(0, 1), mode="nearest")
            cy = ndimage.gaussian_filter(chroma[..., c], GRAD_SIGMA, order=(1, 0), mode="nearest")
            cg += cx * cx + cy * cy
        wgt = wgt * mag2 / (mag2 + 4.0 * cg + 1e-12)
    # magnitude^1 weighting: strong paint edges do not outvote the texture
    scale = wgt / np.sqrt(mag2 + 1e-12)
    jxx, jyy, jxy = scale * gx * gx, scale * gy * gy, scale * gx * gy
    vecs, wts = [], []
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
    return np.asarray(vecs, np.float64).reshape(-1, 2), np.asarray(wts, np.float64)


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


def _finish(axis: _Axis, t_sign: float, method: str, extra: str = "") -> LightEstimate:
    """Turn an axis and the sign evidence into an estimate with its confidence."""
    phi = axis.phi if t_sign >= 0 else axis.phi + math.pi
    az = _azimuth_of(phi)
    axis_unc = min(90.0, axis.uncertainty_deg)
    # sign certainty from the t statistic: 0 below |t| = 1, 0.8 (end of the axis
    # reported) at |t| = SIGN_T, 1 from |t| = 3.5
    sign_conf = float(np.clip((abs(t_sign) - 1.0) / (SIGN_T - 1.0) * 0.8, 0.0, 1.0))
    axis_conf = max(0.0, 1.0 - axis_unc / 30.0)
    confidence = float(np.clip(axis_conf * sign_conf, 0.0, 1.0))
    unc = axis_unc if sign_conf >= 0.8 else 180.0
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
        sign_evidence=float(t_sign),
        anisotropy=float(axis.anisotropy),
        n_tiles=axis.n_tiles,
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
    loglum, chroma, okw = _prepare(rgb, ok)
    if okw.mean() < 0.05:
        return _unknown(method, "could not tell: too few unclipped valid pixels")
    vecs, wts = _axis_vectors(loglum, chroma, okw)
    axis = _combine_axis(vecs, wts)
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
    if ok is None:  # the overlap: where both scans are finite
        ok = np.isfinite(base).all(axis=2) & np.isfinite(cur).all(axis=2)
    lb, cb, okb = _prepare(base, ok)
    lc, cc, okc = _prepare(cur, ok)
    both = okb & okc
    if both.mean() < 0.05:
        return _unknown(method, "could not tell: too few unclipped pixels in the overlap")
    parts = []
    for loglum, chroma in ((lb, cb), (lc, cc)):
        parts.append(_axis_vectors(loglum, chroma, both))
    ratio = lc - lb
    ratio = ratio - float(np.median(ratio[both]))
    parts.append(_axis_vectors(ratio, None, both))
    # inverse-variance weighting of each cue's mean doubled-angle vector
    means, infos = [], []
    for vecs, wts in parts:
        ax = _combine_axis(vecs, wts)
        if ax is None:
            continue
        v = ax.anisotropy * np.array([math.cos(2 * ax.phi), math.sin(2 * ax.phi)])
        sig = math.radians(max(ax.uncertainty_deg, 0.5))
        means.append(v)
        infos.append(1.0 / sig**2)
    if not means:
        return _unknown(method, "could not tell: no directional shading in either scan")
    info = np.asarray(infos)
    vec = (
        np.asarray(means) / np.linalg.norm(np.asarray(means), axis=1, keepdims=True) * info[:, None]
    ).sum(axis=0) / info.sum()
    phi = (0.5 * math.atan2(vec[1], vec[0])) % math.pi
    unc = math.degrees(1.0 / math.sqrt(info.sum()))
    axis = _Axis(
        phi=phi, uncertainty_deg=unc, anisotropy=float(np.hypot(*vec)), n_tiles=len(parts[0][0])
    )
    t_b, _, _ = _sign_cue(lb, both, phi)
    t_c, _, _ = _sign_cue(lc, both, phi)
    # the two scans share their texture: their evidence is not independent
    t_sign = 0.5 * (t_b + t_c)
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
