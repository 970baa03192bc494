"""Change methods and regions on a hand-made, already registered pair."""

import numpy as np
import pytest
from scipy import ndimage

from monitor.change.methods import depth_change, photometric_change, robust_sigma
from monitor.depth.shading import ShadingEstimator
from monitor.errors import MonitorError
from monitor.regions import appearance_class, find_appearance_regions, find_regions
from monitor.results import Light

LIGHT = Light(180, 25)
H, W = 360, 480


def _gauss(cx, cy, s, amp):
    y, x = np.mgrid[0:H, 0:W] + 0.5
    return amp * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s**2))


def _render(height, albedo, light, exposure=1.0, gains=(1, 1, 1)):
    gy, gx = np.gradient(height)
    n = np.stack([-gx, -gy, np.ones_like(gx)], axis=-1)
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    s = np.clip(n @ light.vector(), 0, None)
    img = albedo * (0.15 + 0.85 * s)[..., None] * exposure * np.asarray(gains)
    return np.clip(img, 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(3)
    albedo = np.stack(
        [ndimage.gaussian_filter(rng.random((H, W)), 3) for _ in range(3)], axis=-1
    )
    albedo = 0.1 + 0.7 * (albedo - albedo.min()) / np.ptp(albedo)
    base_h = ndimage.gaussian_filter(rng.normal(size=(H, W)), 1.5) * 2.0
    dh = _gauss(120, 120, 14, 3.0) - _gauss(340, 240, 16, 3.0)
    stain = _gauss(350, 90, 18, 1.0)[..., None]
    stained = albedo * (1 - stain * (1 - np.array([1.0, 0.8, 0.55])))
    b = _render(base_h, albedo, LIGHT)
    c = _render(base_h + dh, stained, LIGHT, exposure=1.15, gains=(1.05, 1.0, 0.93))
    noise = np.random.default_rng(4)
    b = np.clip(b + noise.normal(scale=0.004, size=b.shape), 0, 1).astype(np.float32)
    c = np.clip(c + noise.normal(scale=0.004, size=c.shape), 0, 1).astype(np.float32)
    return b, c, np.ones((H, W), bool), dh


def _at(regions, x, y, r=20):
    return [g for g in regions if abs(g.centroid[0] - x) < r and abs(g.centroid[1] - y) < r]


def test_photometric_finds_bulge_and_recession_not_the_stain(pair):
    b, c, valid, dh = pair
    change = photometric_change(b, c, valid, LIGHT)
    assert change.height.shape == (H, W)
    assert np.corrcoef(change.height.ravel(), dh.ravel())[0, 1] > 0.8
    assert change.appearance is not None and change.appearance[90, 350]  # the stain
    assert not change.appearance[120, 120] and not change.appearance[240, 340]
    regions = find_regions(change)
    assert [g.polarity for g in _at(regions, 120, 120)] == ["bulge"]
    assert [g.polarity for g in _at(regions, 340, 240)] == ["recession"]
    assert _at(regions, 350, 90, r=40) == []
    assert len(regions) == 2
    assert all(g.significance > 4 for g in regions)


def test_the_stain_is_an_appearance_finding_with_its_colour_difference(pair):
    b, c, valid, _ = pair
    change = photometric_change(b, c, valid, LIGHT)
    found = find_appearance_regions(change, px_per_mm=2.0)
    stains = _at(found, 350, 90, r=25)
    assert [a.kind for a in stains] == ["discoloration"]  # darker and yellower: not a loss
    stain = stains[0]
    # the stain takes 45 % of blue and 20 % of green away at its centre: a clearly visible
    # difference, while exposure and white balance (changed too) do not count
    assert 3.0 < stain.delta_e_mean < stain.delta_e_max
    assert stain.delta_l < 0
    assert stain.area_mm2 == pytest.approx(stain.area_px / 4.0)
    # nothing of it among the relief, and no colour finding on the bulge or the recession
    assert _at(find_regions(change), 350, 90, r=40) == []
    assert _at(found, 120, 120) == [] and _at(found, 340, 240) == []
    # exposure and white balance alone (no stain) give no colour finding
    plain = photometric_change(b, np.clip(b * np.float32(1.1), 0, 1), valid, LIGHT)
    assert find_appearance_regions(plain) == ()


def test_a_lighter_desaturated_patch_reads_as_possible_loss():
    assert appearance_class(15.0, -10.0) == "possible loss"
    assert appearance_class(15.0, 3.0) == "discoloration"  # lighter but more saturated
    assert appearance_class(-8.0, -10.0) == "discoloration"


def test_no_change_gives_no_regions(pair):
    b, _, valid, _ = pair
    rng = np.random.default_rng(9)
    c = np.clip(b * 1.2 + rng.normal(scale=0.004, size=b.shape), 0, 1).astype(np.float32)
    assert find_regions(photometric_change(b, c, valid, LIGHT)) == ()


def test_regions_scale_to_baseline_pixels(pair):
    b, c, valid, _ = pair
    change = photometric_change(b, c, valid, LIGHT, scale=0.5)
    regions = find_regions(change, px_per_mm=4.0)
    bulge = _at(regions, 240, 240, r=40)
    assert bulge and bulge[0].polarity == "bulge"
    assert bulge[0].area_mm2 == pytest.approx(bulge[0].area_px / 16)
    x0, y0, x1, y1 = bulge[0].bbox
    assert x0 < bulge[0].centroid[0] < x1 and y0 < bulge[0].centroid[1] < y1


def test_depth_route_finds_the_bulge(pair):
    b, c, valid, dh = pair
    change = depth_change(b, c, valid, LIGHT, estimator=ShadingEstimator())
    assert change.alignment is not None
    regions = find_regions(change)
    assert [g.polarity for g in _at(regions, 120, 120)] == ["bulge"]


def test_nan_outside_overlap_and_bad_shapes(pair):
    b, c, valid, _ = pair
    v = valid.copy()
    v[:, :40] = False
    change = photometric_change(b, c, v, LIGHT)
    assert np.isnan(change.height[:, :40]).all()
    assert np.isfinite(change.height[:, 60:]).all()
    with pytest.raises(MonitorError):
        photometric_change(b, c[:-1], valid, LIGHT)
    with pytest.raises(MonitorError, match="overlap"):
        photometric_change(b, c, np.zeros_like(valid), LIGHT)


def test_robust_sigma():
    x = np.random.default_rng(0).normal(scale=2.0, size=100_000)
    x[:1000] = 1e3
    assert robust_sigma(x) == pytest.approx(2.0, rel=0.03)
    assert robust_sigma(np.array([np.nan])) == 0.0


def test_resampling_overshoot_below_zero_is_tolerated(pair):
    # bicubic warps dip slightly below 0 at dark edges: no NaN may come of it
    b, c, valid, _ = pair
    c = c.copy()
    c[100:110, 200:260] = -0.02
    for change in (
        photometric_change(b, c, valid, LIGHT),
        depth_change(b, c, valid, LIGHT, estimator=ShadingEstimator()),
    ):
        assert np.isfinite(change.height[valid]).all()
        assert change.noise_sigma > 0
