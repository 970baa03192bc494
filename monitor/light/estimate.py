"""One scan's and a registered pair's estimate of the lamp."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from monitor.errors import MonitorError
from monitor.light.blobs import _blob_axis, _Blobs
from monitor.light.check import (
    angular_difference,
)
from monitor.light.cues import (
    _Axis,
    _axis_vectors,
    _azimuth_of,
    _combine_axis,
    _convergence_cue,
    _Shadow,
    _shadow_cue,
    _sign_cue,
)
from monitor.light.grid import (
    _check_rgb,
    _check_valid,
    _prepare,
)
from monitor.light.params import (
    AXIS_END_DEG,
    AXIS_REF_TILES,
    AXIS_TIGHT_DEG,
    AXIS_UNKNOWN_DEG,
    BLOB_END_TURN_DEG,
    CONV_T,
    SHADOW_MIN_MODULATION,
    SIGN_T,
    SIGN_T_LOW,
    TIER2_MIN_TILES,
    TILE_BIAS_DEG,
    UNC_FLOOR_DEG,
)
from monitor.results import LightEstimate


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

    The axis combines the scans' texture cue (the two scans counted as one:
    they share their texture) with the log-ratio cue (the relief change
    without the paint); the sign comes from both scans' raised-relief skew
    (the change itself has none: bulges and dents are equally likely), either
    alone (|t| >= SIGN_T) or weaker (>= SIGN_T_LOW) and confirmed by the
    near-lamp convergence of the local axes; along an axis known worse than
    AXIS_END_DEG no end is reported, and the axis itself is reported unknown
    (``axis_uncertainty_deg`` AXIS_UNKNOWN_DEG): painted structure, not the lamp.
    The deformations' dipoles in the log ratio (:mod:`monitor.light.blobs`),
    when at least BLOB_MIN are found, join the axis (the tiles' uncertainty
    floored at TILE_BIAS_DEG) or, where the tiles are not trusted, give it
    alone. Trusted tiles keep their end (read along their own axis, where the
    end cues were calibrated), carried over to the combined axis when it turned
    by at most BLOB_END_TURN_DEG; the blobs' axis alone gets an end only when
    it is known to AXIS_END_DEG.

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
    # the change's own cue: the deformations' dipoles (absent without relief change)
    blobs = _blob_axis(ratio, cc - cb, both)
    # the end's axis limit is a spread over the tiles (see AXIS_REF_TILES)
    size = math.sqrt(AXIS_REF_TILES / max(axis.n_tiles, 1))
    if unc > AXIS_END_DEG * size:
        if blobs is None:
            # such an axis is not trusted either (see AXIS_END_DEG): painted structure
            # turning the tiles' axes, not the lamp; reported as unknown (90 deg) so
            # a given lamp is "not checked" rather than "disagrees"
            t_sign = _pair_skew(lb, lc, both, phi)
            extra = (
                f"axis not trusted: its tiles spread to {unc:.0f} deg (painted structure "
                f"rather than the lamp's shading); neither the axis nor its end is reported "
                f"(raised-relief skew t {t_sign:.1f})"
            )
            est = _finish(axis, 0.0, method, extra, evidence=t_sign)
            return dataclasses.replace(
                est,
                axis_uncertainty_deg=AXIS_UNKNOWN_DEG,
                confidence=0.0,
                note=f"{extra}; {_ELEVATION_NOTE}",
            )
        # the tiles are not trusted, the blobs are consistent: they give the axis;
        # its end is read along it only when it is known to the same limit
        blob_axis, note = _with_blobs(axis, blobs, tiles_trusted=False)
        t_sign = _pair_skew(lb, lc, both, blob_axis.phi)
        method += " + deformation dipoles"
        if blob_axis.uncertainty_deg > AXIS_END_DEG * size:
            return _finish(blob_axis, 0.0, method, note, evidence=t_sign)
        return _finish(blob_axis, t_sign, method, note)
    # trusted tiles: their end is read along their own axis, as without the blobs
    # (the end cues were calibrated there), and carried over to the blobs' axis
    t_end, how, extra, evidence = _tile_end(lb, lc, both, parts, axis)
    if blobs is None:
        return _finish(axis, t_end, method + how, extra, evidence=evidence)
    final, note = _with_blobs(axis, blobs, tiles_trusted=True)
    turn = abs((final.phi - axis.phi + math.pi / 2) % math.pi - math.pi / 2)
    if math.degrees(turn) > BLOB_END_TURN_DEG:
        note += "; the tiles' end is not carried over (the axis turned too far)"
        t_end = 0.0
    elif math.cos(final.phi - axis.phi) < 0:  # the same end, seen from the other axis angle
        t_end, evidence = -t_end, -evidence
    notes = "; ".join(n for n in (note, extra) if n)
    return _finish(final, t_end, method + " + deformation dipoles" + how, notes, evidence)


def _pair_skew(lb: np.ndarray, lc: np.ndarray, both: np.ndarray, phi: float) -> float:
    """Both scans' raised-relief skew t along ``phi`` (they share their texture: averaged)."""
    t_b, _, _ = _sign_cue(lb, both, phi)
    t_c, _, _ = _sign_cue(lc, both, phi)
    return 0.5 * (t_b + t_c)


def _tile_end(
    lb: np.ndarray,
    lc: np.ndarray,
    both: np.ndarray,
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    axis: _Axis,
) -> tuple[float, str, str, float]:
    """The end along a trusted tiles' axis: (t for :func:`_finish`, method suffix, note, t).

    The skew alone at |t| >= SIGN_T, or from SIGN_T_LOW confirmed by the
    near-lamp convergence (second tier, see SIGN_T_LOW).
    """
    t_sign = _pair_skew(lb, lc, both, axis.phi)
    if abs(t_sign) >= SIGN_T:
        return t_sign, "", "", t_sign
    t_conv = _convergence_cue(parts, axis.phi)
    if (
        abs(t_sign) >= SIGN_T_LOW
        and abs(t_conv) >= CONV_T
        and t_conv * t_sign > 0
        and axis.uncertainty_deg <= AXIS_TIGHT_DEG
        and axis.n_tiles >= TIER2_MIN_TILES
    ):
        extra = (
            f"end from the raised-relief skew (t {t_sign:.1f}) confirmed by the near-lamp "
            f"convergence of the local axes (t {t_conv:.1f})"
        )
        return math.copysign(SIGN_T, t_sign), " + near-lamp convergence", extra, t_sign
    return t_sign, "", "", t_sign


def _with_blobs(axis: _Axis, blobs: _Blobs, tiles_trusted: bool) -> tuple[_Axis, str]:
    """The pair's axis with the deformation dipoles' (:mod:`monitor.light.blobs`).

    Trusted tiles are combined with the blobs by inverse variance, the tiles'
    uncertainty floored at TILE_BIAS_DEG (painted structure biases them beyond
    their spread); untrusted tiles leave the axis to the blobs.
    """
    note = f"axis from {blobs.n_blobs} deformation dipoles (+/- {blobs.uncertainty_deg:.0f} deg)"
    if not tiles_trusted:
        note += " where the tiles' axis is not trusted (painted structure)"
        return (
            _Axis(blobs.phi, blobs.uncertainty_deg, blobs.coherence, axis.n_tiles),
            note,
        )
    sig_t = math.radians(max(axis.uncertainty_deg, TILE_BIAS_DEG))
    sig_b = math.radians(blobs.uncertainty_deg)
    w_t, w_b = 1.0 / sig_t**2, 1.0 / sig_b**2
    vec = w_t * np.array([math.cos(2 * axis.phi), math.sin(2 * axis.phi)])
    vec += w_b * np.array([math.cos(2 * blobs.phi), math.sin(2 * blobs.phi)])
    phi = (0.5 * math.atan2(vec[1], vec[0])) % math.pi
    unc = math.degrees(1.0 / math.sqrt(w_t + w_b))
    return _Axis(phi, unc, axis.anisotropy, axis.n_tiles), note + " and the tiles'"


