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


@pytest.mark.parametrize("outlier_frac", [0.1, 0.25, 0.4])
def test_tukey_irls_recovers_the_truth_where_least_squares_is_pulled(outlier_frac):
    # a known scale/shift, Gaussian noise, and a block of changed pixels (one-sided
    # outliers, the changes we look for) covering up to 40 % of the map
    rng = np.random.default_rng(int(outlier_frac * 100))
    truth_scale, truth_shift, noise = 1.7, -0.35, 0.02
    moving = rng.normal(size=(100, 100))
    reference = truth_scale * moving + truth_shift + rng.normal(scale=noise, size=moving.shape)
    rows = int(outlier_frac * 100)
    reference[:rows] += rng.uniform(2.0, 6.0, size=(rows, 100))
    a = fit_scale_shift(reference, moving)
    # robust fit: within a few standard errors of the truth
    assert a.scale == pytest.approx(truth_scale, abs=0.01)
    assert a.shift == pytest.approx(truth_shift, abs=0.01)
    assert a.inlier_fraction == pytest.approx(1 - outlier_frac, abs=0.03)
    # the same data by ordinary least squares (what the IRLS starts from) is far off
    design = np.stack([moving.ravel(), np.ones(moving.size)], axis=1)
    ls_scale, ls_shift = np.linalg.lstsq(design, reference.ravel(), rcond=None)[0]
    assert abs(ls_shift - truth_shift) > 10 * abs(a.shift - truth_shift) + 0.2


def test_outliers_that_correlate_with_the_map_do_not_tilt_the_scale():
    # changes where the map is high (a bulge on a ridge) pull a plain fit's SCALE
    rng = np.random.default_rng(7)
    moving = rng.normal(size=(120, 120))
    reference = 0.8 * moving + 0.1 + rng.normal(scale=0.01, size=moving.shape)
    high = moving > 1.0  # ~16 % of the pixels
    reference[high] += 3.0 * moving[high]
    a = fit_scale_shift(reference, moving)
    assert a.scale == pytest.approx(0.8, abs=0.005)
    assert a.shift == pytest.approx(0.1, abs=0.005)


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
