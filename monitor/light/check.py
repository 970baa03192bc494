"""A claimed lamp against the scans' estimate; the lamp a comparison uses."""

from __future__ import annotations

import math

from monitor.config import check_elevation, parse_light_azimuth
from monitor.errors import MonitorError
from monitor.light.params import (
    AXIS_CHECK_DEG,
    AXIS_UNKNOWN_DEG,
    CONFIDENT,
    DISAGREE_DEG,
    SAME_LAMP_EST_DEG,
)
from monitor.results import LIGHT_SOURCES, Light, LightCheck, LightEstimate, LightUsed


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
    claimed 90 degrees off is caught even when the end is unknown). With
    neither known to ``AXIS_CHECK_DEG`` it is not checked (the pair's
    estimate reports an untrusted axis as ``AXIS_UNKNOWN_DEG``).

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

    When only the axis is known, a lamp on it is said to lie on the axis, not to agree:

    >>> import dataclasses
    >>> axis_only = dataclasses.replace(est, azimuth_uncertainty_deg=180.0)
    >>> print(compare_light(Light(190.0, 25.0), axis_only).message)
    given light azimuth 190 deg lies on the scans' lamp axis 10/190 +/- 8 deg;
    which end the lamp was at could not be told from the scans, so that was not checked
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
    sign_known = estimate.azimuth_uncertainty_deg < 180.0 and estimate.confidence >= CONFIDENT
    if not sign_known and estimate.axis_uncertainty_deg >= AXIS_CHECK_DEG:
        return LightCheck(
            given,
            estimate,
            angular_difference(given.azimuth_deg, estimate.azimuth_deg),
            180.0,
            False,
            False,
            False,
            "light not checked: the scans' shading does not fix the lamp's axis",
        )
    diff = angular_difference(given.azimuth_deg, estimate.azimuth_deg)
    axis_diff = min(diff, 180.0 - diff)
    tol_axis = max(DISAGREE_DEG, estimate.axis_uncertainty_deg)
    tol = max(DISAGREE_DEG, estimate.azimuth_uncertainty_deg)
    if sign_known:
        disagrees = diff > tol
        opposite = diff > 180.0 - tol
    else:
        tol = tol_axis
        disagrees = axis_diff > tol_axis
        opposite = False
    if disagrees:
        what = "points the opposite way to" if opposite else "disagrees with"
        msg = (
            f"given light azimuth {given.azimuth_deg:.0f} deg {what} the scans' estimate "
            f"{estimate.azimuth_deg:.0f} +/- {estimate.azimuth_uncertainty_deg:.0f} deg"
        )
    elif sign_known:
        msg = (
            f"given light azimuth {given.azimuth_deg:.0f} deg agrees with the scans' estimate "
            f"{estimate.azimuth_deg:.0f} +/- {estimate.azimuth_uncertainty_deg:.0f} deg"
        )
    else:  # only the axis was checked: a lamp at the other end would pass as well
        a = estimate.azimuth_deg % 180.0
        msg = (
            f"given light azimuth {given.azimuth_deg:.0f} deg lies on the scans' lamp axis "
            f"{a:.0f}/{a + 180.0:.0f} +/- {estimate.axis_uncertainty_deg:.0f} deg; which end "
            "the lamp was at could not be told from the scans, so that was not checked"
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
    axis_unknown = estimate.axis_uncertainty_deg >= AXIS_UNKNOWN_DEG
    if estimate.azimuth_uncertainty_deg >= 180.0 and axis_unknown:
        raise MonitorError(
            "no light given and the scans' shading does not fix the lamp's axis "
            "(painted structure outweighs the relief): "
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
