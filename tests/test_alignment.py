import numpy as np
import pytest

from monitor.change.alignment import apply_alignment, fit_scale_shift
from monitor.errors import MonitorError


def test_recovers_scale_and_shift_despite_changed_pixels():
    rng = np.random.default_rng(0)
    moving = rng.normal(size=(120, 160)).astype(np.float32)
    reference = 2.5 * moving - 0.7 + rng.normal(scale=0.01, size=moving.shape)
    reference[30:60, 40:90] += 5.0  # a changed area: must not pull the fit
    a = fit_scale_shift(reference, moving)
    assert a.scale == pytest.approx(2.5, abs=0.01)
    assert a.shift == pytest.approx(-0.7, abs=0.01)
    assert 0.8 < a.inlier_fraction < 0.97
    aligned = apply_alignment(moving, a)
    assert np.median(np.abs(aligned - reference)) < 0.02


def test_plain_least_squares_would_be_pulled():
    # the robust fit beats the mean-based fit on the same data (the reason it exists)
    rng = np.random.default_rng(1)
    moving = rng.normal(size=(80, 80))
    reference = moving.copy()
    reference[:20] += 10
    ls = np.polyfit(moving.ravel(), reference.ravel(), 1)
    robust = fit_scale_shift(reference, moving)
    assert abs(ls[1]) > 1.0
    assert abs(robust.shift) < 0.05


def test_mask_and_nan_are_excluded():
    moving = np.linspace(0, 1, 400).reshape(20, 20)
    reference = 3 * moving + 1
    reference[0, :5] = np.nan
    mask = np.ones_like(moving, dtype=bool)
    mask[10:] = False
    reference[10:] = 1e6
    a = fit_scale_shift(reference, moving, mask)
    assert a.scale == pytest.approx(3, abs=1e-6)


def test_bad_inputs():
    with pytest.raises(MonitorError):
        fit_scale_shift(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(MonitorError):
        fit_scale_shift(np.full((3, 3), np.nan), np.zeros((3, 3)))
