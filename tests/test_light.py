"""The lamp estimator (monitor.light) on rendered scans, bad input and real photographs.

Tolerances come from ``bench/light_eval.py`` (raking renders: worst per-scan
error 8.7 deg, pair 12.1 deg over 40 test pairs) with a margin.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from monitor import synth
from monitor.errors import MonitorError
from monitor.io import read_image, to_linear
from monitor.light import (
    angular_difference,
    compare_light,
    estimate_pair_light,
    estimate_scan_light,
)
from monitor.results import Light, LightEstimate

SHARED = Path(__file__).resolve().parents[2] / "shared"
LEAVES = SHARED / "real" / "leaves12"
SIZE = (320, 240)
AZIMUTHS = tuple(float(a) for a in range(5, 360, 45))  # 8 azimuths, off the image axes
TOLERANCE_DEG = 20.0


def _render(azimuth: float, seed: int, *, no_change: bool = True) -> synth.SynthPair:
    lamp = Light(azimuth, 22.0)
    spec = synth.PairSpec(
        seed=seed,
        size=SIZE,
        light_baseline=lamp,
        light_current=lamp,
        no_change=no_change,
        discoloration=False,
    )
    return synth.render_pair(spec)


@pytest.fixture(scope="module")
def scans() -> dict[float, np.ndarray]:
    """One raking-light render (procedural canvas, test seeds) per azimuth."""
    return {az: to_linear(_render(az, 50 + i).baseline) for i, az in enumerate(AZIMUTHS)}


@pytest.mark.parametrize("azimuth", AZIMUTHS)
def test_scan_estimate_finds_the_lamp_from_every_side(
    scans: dict[float, np.ndarray], azimuth: float
) -> None:
    est = estimate_scan_light(scans[azimuth])
    assert est.known and est.confident, est
    assert angular_difference(est.azimuth_deg, azimuth) <= TOLERANCE_DEG, est
    assert est.azimuth_uncertainty_deg < 45.0
    assert est.elevation_deg is None and "elevation" in est.note


def test_turning_the_scan_half_round_turns_the_estimate(scans: dict[float, np.ndarray]) -> None:
    """The sign cue: the same relief seen upside down is lit from the other side."""
    az = AZIMUTHS[1]
    est = estimate_scan_light(scans[az][::-1, ::-1].copy())
    assert angular_difference(est.azimuth_deg, (az + 180.0) % 360.0) <= TOLERANCE_DEG, est


def test_pair_estimate_with_relief_change() -> None:
    for i, az in enumerate((100.0, 235.0)):
        pair = _render(az, 70 + i, no_change=False)
        cur = synth.warp_current_to_baseline(
            to_linear(pair.current), pair.homography, pair.lens_k1, SIZE
        )
        est = estimate_pair_light(to_linear(pair.baseline), cur)
        assert est.known and est.confident, est
        assert angular_difference(est.azimuth_deg, az) <= TOLERANCE_DEG, est


def test_pair_estimate_ignores_pixels_outside_the_overlap(scans: dict[float, np.ndarray]) -> None:
    az = AZIMUTHS[2]
    cur = scans[az].copy()
    cur[:, :60] = np.nan  # outside the overlap
    est = estimate_pair_light(scans[az], cur)
    assert angular_difference(est.azimuth_deg, az) <= TOLERANCE_DEG, est


def test_compare_light_accepts_the_truth_and_flags_90_and_180(
    scans: dict[float, np.ndarray],
) -> None:
    for az in AZIMUTHS[::2]:
        est = estimate_scan_light(scans[az])
        assert not compare_light(Light(az, 25.0), est).disagrees
        for off in (90.0, 180.0, 270.0):
            check = compare_light(Light((az + off) % 360.0, 25.0), est)
            assert check.disagrees, (az, off, check.message)
            assert "disagrees" in check.message or "opposite" in check.message
        assert compare_light(Light((az + 180.0) % 360.0, 25.0), est).opposite


def test_compare_light_only_checks_the_axis_when_the_end_is_unknown() -> None:
    axis_only = LightEstimate(30.0, 180.0, None, None, 0.2, "m", 30.0, 6.0, 0.3, 0.3, 40, "")
    assert not compare_light(Light(210.0, 25.0), axis_only).disagrees  # same axis
    assert compare_light(Light(120.0, 25.0), axis_only).disagrees  # 90 deg off the axis


def test_compare_light_refuses_an_out_of_range_azimuth(scans: dict[float, np.ndarray]) -> None:
    est = estimate_scan_light(scans[AZIMUTHS[0]])
    with pytest.raises(MonitorError):
        compare_light(Light(400.0, 25.0), est)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((64, 64), np.float32),  # no channels
        np.zeros((64, 64, 4), np.float32),  # RGBA
        np.zeros((64, 64, 3), np.uint8),  # encoded, not linear
        np.full((64, 64, 3), 2.0, np.float32),  # out of range
        np.zeros((8, 8, 3), np.float32),  # too small
        [[0.5, 0.5, 0.5]],  # not an array
    ],
)
def test_bad_input_raises(bad: object) -> None:
    with pytest.raises(MonitorError):
        estimate_scan_light(bad)  # type: ignore[arg-type]


def test_bad_pair_input_raises(scans: dict[float, np.ndarray]) -> None:
    a = scans[AZIMUTHS[0]]
    with pytest.raises(MonitorError):
        estimate_pair_light(a, a[:100])
    with pytest.raises(MonitorError):
        estimate_pair_light(a, a, np.ones((5, 5), bool))


@pytest.mark.parametrize(
    "image",
    [
        np.full((200, 200, 3), np.nan, np.float32),  # nothing valid
        np.ones((200, 200, 3), np.float32),  # all clipped
        np.full((200, 200, 3), 0.3, np.float32),  # flat: no shading at all
        np.random.default_rng(0).uniform(0.2, 0.4, (200, 200, 3)).astype(np.float32),  # noise
    ],
)
def test_no_shading_is_could_not_tell_never_a_confident_answer(image: np.ndarray) -> None:
    est = estimate_scan_light(image)
    assert not est.confident
    assert est.azimuth_uncertainty_deg >= 90.0
    check = compare_light(Light(180.0, 25.0), est)
    assert not check.disagrees or not est.known


def test_could_not_tell_is_not_checked() -> None:
    est = estimate_scan_light(np.ones((200, 200, 3), np.float32))
    assert not est.known and math.isnan(est.azimuth_deg)
    check = compare_light(Light(0.0, 25.0), est)
    assert not check.disagrees and "could not tell" in check.message
    with pytest.raises(ValueError):
        est.light(25.0)


@pytest.mark.skipif(not (LEAVES / "lights.csv").is_file(), reason="../shared/real/leaves12 absent")
@pytest.mark.xfail(
    strict=True,
    reason="known gap: leaves on a clipped white background; the texture/skew estimator "
    "lands within 30 deg of the shadow azimuth on 3 of 12 (bench/light_eval.py); "
    "a cast-shadow cue is still to be built",
)
def test_leaves12_estimate_within_30_degrees_of_the_shadows() -> None:
    hits = 0
    with (LEAVES / "lights.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        est = estimate_scan_light(to_linear(read_image(LEAVES / row["file"]).pixels))
        shadow = float(row["azimuth_from_shadows_deg"])
        if est.known and angular_difference(est.azimuth_deg, shadow) <= 30.0:
            hits += 1
    assert len(rows) == 12
    assert hits >= 10, f"{hits} of 12 within 30 deg"
