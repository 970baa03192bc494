"""Multi-scale change: small damage the 1600-px grid misses, one report per region, no seams."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from monitor.change.methods import photometric_change
from monitor.change.multiscale import _integrate_level, multiscale_change
from monitor.errors import MonitorError
from monitor.io import to_linear
from monitor.photometry import integrate_two_sided, integrate_two_sided_batch
from monitor.regions import find_regions
from monitor.results import Light
from monitor.synth import TRAIN_SEEDS, render_pair, warp_current_to_baseline
from monitor.synth.small import small_damage_spec


def _prepared(spec):
    pair = render_pair(spec)
    b = to_linear(pair.baseline)
    c = to_linear(pair.current)
    w = warp_current_to_baseline(c, pair.homography, pair.lens_k1, spec.size)
    valid = np.isfinite(w).all(axis=2)
    return pair, b, np.nan_to_num(w).astype(np.float32), valid


def _hits(truth, regions):
    """For each truth region, the detections whose centroid lies in its (grown) box."""
    out = []
    for t in truth:
        x0, y0, x1, y1 = t.bbox
        g = max(3.0, 0.25 * (x1 - x0))
        out.append([r for r in regions if x0 - g <= r.centroid[0] <= x1 + g
                    and y0 - g <= r.centroid[1] <= y1 + g])
    return out


@pytest.fixture(scope="module")
def blisters():
    cs = small_damage_spec(TRAIN_SEEDS[0] + 17, size=(1600, 1000), canvas_mm=160.0,
                           discoloration=False)
    spec = dataclasses.replace(cs.spec, kinds=("bulge", "recession", "bulge"),
                               size_range=(0.005, 0.006), slope_range=(0.1, 0.14))
    return (cs.px_per_mm, *_prepared(spec))


def test_small_blisters_missed_by_the_grid_are_found_with_polarity_and_scale(blisters):
    px_per_mm, pair, b, w, valid = blisters
    light = pair.spec.light_baseline
    grid = find_regions(photometric_change(b, w, valid, light), px_per_mm=px_per_mm)
    grid_found = sum(bool(h) for h in _hits(pair.regions, grid))
    ms = multiscale_change(b, w, valid, light, px_per_mm=px_per_mm)
    hits = _hits(pair.regions, ms.regions)
    assert grid_found <= 1
    assert all(len(h) == 1 for h in hits), hits
    for t, h in zip(pair.regions, hits, strict=True):
        assert h[0].polarity == t.polarity
        assert h[0].scale_px <= 2.0
        assert h[0].scale_mm == pytest.approx(h[0].scale_px / px_per_mm)
    # the blisters are the most significant regions (false alarms, if any, rank below)
    top = {r.id for r in ms.regions[: len(pair.regions)]}
    assert {h[0].id for h in hits} == top
    assert ms.min_detectable_mm == pytest.approx(ms.min_detectable_px / px_per_mm)


def test_tile_size_does_not_change_the_result(blisters):
    px_per_mm, pair, b, w, valid = blisters
    light = pair.spec.light_baseline
    big = multiscale_change(b, w, valid, light, tile=1024)
    small = multiscale_change(b, w, valid, light, tile=192, batch=3)
    # regions within a few percent of their level's seed threshold may flip
    # with round-off; every clearly significant one must be the same
    def clear(out):
        return [r for r in out.regions if r.significance > 1.05 * out.levels[r.level].z_seed]

    assert len(clear(big)) == len(clear(small)) >= 3
    for r, s in zip(clear(big), clear(small), strict=True):
        assert r.polarity == s.polarity and r.level == s.level
        assert np.hypot(r.centroid[0] - s.centroid[0], r.centroid[1] - s.centroid[1]) < 1.0
        assert s.significance == pytest.approx(r.significance, rel=0.03)


def test_a_large_bulge_is_reported_once_at_a_coarse_level():
    cs = small_damage_spec(TRAIN_SEEDS[0] + 5, size=(800, 600), canvas_mm=400.0,
                           discoloration=False)
    spec = dataclasses.replace(cs.spec, kinds=("bulge",), size_range=(0.09, 0.1),
                               slope_range=(0.1, 0.12))
    pair, b, w, valid = _prepared(spec)
    ms = multiscale_change(b, w, valid, spec.light_baseline, px_per_mm=cs.px_per_mm)
    (hits,) = _hits(pair.regions, ms.regions)
    assert len(hits) == 1 and hits[0].polarity == "bulge"
    assert hits[0].scale_px >= 2.0  # not the native level: most significant where it fits
    # it was seen at several levels; suppression across levels kept one
    assert sum(lv.n_candidates > 0 for lv in ms.levels) >= 2
    assert len(ms.regions) <= 2


def _bumps(h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    f = np.zeros((h, w), np.float32)
    for _ in range(25):
        cx, cy, s = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(3, 20)
        f += rng.normal() * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s))
    slope = np.gradient(f, axis=1).astype(np.float32)
    return slope + 0.002 * rng.standard_normal((h, w)).astype(np.float32)


def _seam_ratio(out: np.ndarray, ref: np.ndarray, tile: int) -> float:
    """|d/dx|, |d/dy| at tile edges relative to the untiled reference's, over that elsewhere."""
    gx, rx = np.abs(np.diff(out, axis=1)), np.abs(np.diff(ref, axis=1))
    gy, ry = np.abs(np.diff(out, axis=0)), np.abs(np.diff(ref, axis=0))
    cols = np.zeros(gx.shape[1], bool)
    cols[tile - 1 :: tile] = True
    rows = np.zeros(gy.shape[0], bool)
    rows[tile - 1 :: tile] = True
    seam = gx[:, cols].mean() / rx[:, cols].mean() + gy[rows].mean() / ry[rows].mean()
    inside = gx[:, ~cols].mean() / rx[:, ~cols].mean() + gy[~rows].mean() / ry[~rows].mean()
    return float(seam / inside)


def test_integration_in_tiles_has_no_seams():
    slope = _bumps(300, 420)
    direction = (0.8, -0.6)
    ref, ref_lin = _integrate_level(slope, direction, 12.0, 0.5, 4096, 6.0, 1, torch.device("cpu"))
    out, lin = _integrate_level(slope, direction, 12.0, 0.5, 64, 6.0, 4, torch.device("cpu"))
    assert abs(_seam_ratio(lin, ref_lin, 64) - 1.0) < 0.02
    assert abs(_seam_ratio(out, ref, 64) - 1.0) < 0.05
    assert np.abs(lin - ref_lin).max() < 0.01 * np.abs(ref_lin).max()
    # negative control: without a halo the tiles show
    bad, bad_lin = _integrate_level(slope, direction, 12.0, 0.5, 64, 0.05, 4, torch.device("cpu"))
    assert abs(_seam_ratio(bad_lin, ref_lin, 64) - 1.0) > 0.1


def test_batched_integration_matches_the_single_image_one():
    slope = torch.from_numpy(_bumps(128, 160))
    padded = torch.nn.functional.pad(slope, (40, 40, 40, 40))
    h1, l1 = integrate_two_sided(padded, (1.0, 0.0), decay_frac=10.0 / 240, blur_frac=0.5 / 240,
                                 pad_frac=0.0)
    h2, l2 = integrate_two_sided_batch(padded[None].repeat(2, 1, 1), (1.0, 0.0), decay_px=10.0,
                                       blur_px=0.5)
    core = (slice(40, -40), slice(40, -40))
    torch.testing.assert_close(l2[1][core], l1[core], atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(h2[0][core], h1[core], atol=1e-3, rtol=1e-3)


def test_bad_input_raises_monitor_error():
    b = np.full((128, 128, 3), 0.4, np.float32)
    ok = np.ones((128, 128), bool)
    light = Light(180, 25)
    with pytest.raises(MonitorError, match="H x W x 3"):
        multiscale_change(b[..., 0], b, ok, light)
    with pytest.raises(MonitorError, match="shape"):
        multiscale_change(b, b[:64], ok, light)
    with pytest.raises(MonitorError, match="overlap"):
        multiscale_change(b, b, np.zeros_like(ok), light)
    with pytest.raises(MonitorError, match="frontal"):
        multiscale_change(b, b, ok, Light(180, 89.9))
    with pytest.raises(MonitorError, match="tile"):
        multiscale_change(b, b, ok, light, tile=8)
    with pytest.raises(MonitorError, match="px_per_mm"):
        multiscale_change(b, b, ok, light, px_per_mm=-1.0)
    with pytest.raises(MonitorError, match="too small"):
        multiscale_change(b[:32, :32], b[:32, :32], ok[:32, :32], light)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_gives_the_cpu_regions(blisters):
    px_per_mm, pair, b, w, valid = blisters
    light = pair.spec.light_baseline
    cpu = multiscale_change(b, w, valid, light, px_per_mm=px_per_mm)
    gpu = multiscale_change(b, w, valid, light, px_per_mm=px_per_mm, device="cuda", batch=8)
    assert gpu.device.startswith("cuda")
    assert len(gpu.regions) == len(cpu.regions)
    for r, s in zip(cpu.regions, gpu.regions, strict=True):
        assert r.polarity == s.polarity
        assert np.hypot(r.centroid[0] - s.centroid[0], r.centroid[1] - s.centroid[1]) < 1.0


def test_absolute_height_floor_in_mm_and_px(blisters):
    px_per_mm, pair, b, w, valid = blisters
    light = pair.spec.light_baseline
    free = multiscale_change(b, w, valid, light, px_per_mm=px_per_mm, min_height_mm=0.0)
    weakest = min(free.regions, key=lambda r: abs(r.peak))
    floor_mm = 1.01 * abs(weakest.peak) / px_per_mm
    cut = multiscale_change(b, w, valid, light, px_per_mm=px_per_mm, min_height_mm=floor_mm)
    assert cut.min_height_px == pytest.approx(floor_mm * px_per_mm)
    assert all(abs(r.peak) >= floor_mm * px_per_mm for r in cut.regions)
    assert not any(np.allclose(r.centroid, weakest.centroid) for r in cut.regions)
    # without px/mm the floor is in baseline pixel pitches
    px = multiscale_change(b, w, valid, light, min_height_px=1.01 * abs(weakest.peak))
    assert px.min_height_px == pytest.approx(1.01 * abs(weakest.peak))
    assert not any(np.allclose(r.centroid, weakest.centroid) for r in px.regions)
    with pytest.raises(MonitorError, match="min_height"):
        multiscale_change(b, w, valid, light, min_height_px=-1.0)
    # a coarse pitch: 0.02 mm at 4 px/mm is 0.08 px, under the pixel floor, which holds
    coarse = multiscale_change(b, w, valid, light, px_per_mm=4.0, min_height_mm=0.02,
                               min_height_px=0.12)
    assert coarse.min_height_px == pytest.approx(0.12)


def test_the_height_floor_defaults_to_the_validated_settings(blisters, monkeypatch):
    import monitor.change.multiscale as ms_mod
    from monitor.config import Settings

    px_per_mm, pair, b, w, valid = blisters
    light = pair.spec.light_baseline
    out = multiscale_change(b, w, valid, light, px_per_mm=px_per_mm)
    assert out.min_height_px == pytest.approx(Settings().fine_min_height_mm * px_per_mm)
    # a different setting is what the route applies (no floor of its own)
    monkeypatch.setattr(ms_mod, "Settings", lambda: Settings().replace(fine_min_height_px=0.7))
    assert multiscale_change(b, w, valid, light).min_height_px == pytest.approx(0.7)
    for name in ("fine_min_height_mm", "fine_min_height_px"):
        with pytest.raises(MonitorError, match="at least 0"):
            Settings().replace(**{name: -0.01})


def test_release_lets_the_scans_go_once_the_slope_is_known(blisters):
    px_per_mm, pair, b, w, valid = blisters
    light = pair.spec.light_baseline
    calls: list[int] = []
    held = {"b": b.copy(), "w": w.copy()}

    def release() -> None:
        calls.append(len(held))
        held.clear()

    out = multiscale_change(held["b"], held["w"], valid, light, px_per_mm=px_per_mm,
                            release=release)
    ref = multiscale_change(b, w, valid, light, px_per_mm=px_per_mm)
    assert calls == [2] and not held
    assert [r.centroid for r in out.regions] == [r.centroid for r in ref.regions]


def test_cpu_shortcuts_equal_the_reference_operations():
    from scipy import ndimage

    from monitor.change.multiscale import _cv2_smooth, _fast_side, _label8, _open3
    from monitor.photometry import local_noise, smooth_background

    rng = np.random.default_rng(0)
    m = rng.random((90, 130)) > 0.4
    square = np.ones((3, 3), bool)
    assert np.array_equal(_open3(m), ndimage.binary_opening(m, structure=square))
    labels, n = _label8(m)
    ref, n_ref = ndimage.label(m, structure=square)
    assert n == n_ref and np.array_equal(labels > 0, ref > 0)
    x = rng.random((90, 130)).astype(np.float32)
    wt = (rng.random((90, 130)) > 0.3).astype(np.float32)
    slow = smooth_background(torch.from_numpy(x), torch.from_numpy(wt), 2.0).numpy()
    assert np.allclose(_cv2_smooth(x, wt, 2.0), slow, atol=1e-5)
    # tile sides: only the factors 2, 3, 5, and an even halo around the core
    for n_min, core in ((1216, 1024), (1072, 880), (384, 192)):
        side = _fast_side(n_min, core)
        k = side
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        assert side >= n_min and k == 1 and (side - core) % 2 == 0
    # the noise map on a sample of the rows and columns: the same spread within 4 %
    # (blocks of 90 000 pixels here; at 24 MP they hold 560 000)
    v = rng.normal(size=(1600, 2400)).astype(np.float32) * np.linspace(1, 3, 2400,
                                                                       dtype=np.float32)
    full, sampled = local_noise(v, np.ones(v.shape, bool)), local_noise(v, np.ones(v.shape, bool),
                                                                         sample=2)
    assert np.allclose(sampled, full, rtol=0.04)
    with pytest.raises(MonitorError, match="sample"):
        local_noise(v, np.ones(v.shape, bool), sample=0)


def _reference_slope(b_np, c_np, v_np, gain, bg, median_lum, presmooth_px):
    """The native slope of one whole-image tile written with plain out-of-place
    operations (the formulas :func:`_native_slope` evaluates in place)."""
    import cv2
    import torch.nn.functional as F

    from monitor.change.multiscale import _cv2_blur, _cv2_smooth
    from monitor.photometry import BRIGHT, DARK, EPS

    h, w = v_np.shape
    b = torch.from_numpy(np.ascontiguousarray(b_np.transpose(2, 0, 1))).clamp_min(0)
    c = torch.from_numpy(np.ascontiguousarray(c_np.transpose(2, 0, 1))).clamp_min(0)
    # the overlap eroded by 3 px; dark and clipped pixels untrusted themselves only
    inside = torch.from_numpy(cv2.erode(v_np.view(np.uint8), np.ones((7, 7), np.uint8)).view(bool))
    trust = inside & (b.amin(0) > DARK) & (b.amax(0) < BRIGHT)
    trust &= (c.amin(0) > DARK) & (c.amax(0) < BRIGHT)
    brightness = (b.mean(dim=0) / median_lum).clamp(0, 1)
    b, c = _cv2_blur(b, presmooth_px), _cv2_blur(c, presmooth_px)
    wt = trust.float()
    ratio = torch.log(c + EPS) - torch.log(b + EPS)
    gy = 2 * (torch.arange(0, h, dtype=torch.float32) + 0.5) / h - 1
    gx = 2 * (torch.arange(0, w, dtype=torch.float32) + 0.5) / w - 1
    grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1)[None]
    low = F.grid_sample(bg[None], grid, mode="bilinear", padding_mode="border",
                        align_corners=False)
    ratio = (ratio - low[0]) * wt
    achromatic = ratio.mean(dim=0)
    chroma = torch.sqrt(((ratio - achromatic) ** 2).mean(dim=0))
    chroma_s = _cv2_smooth((chroma * brightness).numpy(), wt.numpy(), 2.0)
    slope = -torch.expm1(achromatic) * gain * wt
    return slope.numpy(), chroma_s, trust.numpy()


def test_native_slope_in_place_arithmetic_equals_the_formulas():
    """The in-place native slope (no per-operation temporaries) is bit for bit
    the out-of-place formulation, on a one-tile image with dark, clipped and
    invalid pixels."""
    from monitor.change.multiscale import _coarse_background, _native_slope

    rng = np.random.default_rng(5)
    b = rng.uniform(0.05, 0.9, (150, 210, 3)).astype(np.float32)
    c = (b * rng.uniform(0.9, 1.1, b.shape)).astype(np.float32)
    b[10:14, 20:30], c[40:45, 60:70] = 0.0, 1.0
    v = np.ones((150, 210), bool)
    v[:, :6] = False
    dev = torch.device("cpu")
    with torch.inference_mode():
        bg, lum = _coarse_background(b, c, v, 64, 0.03, dev)
        got = _native_slope(b, c, v, 1.7, bg, lum, 1024, 1.0, dev)
        want = _reference_slope(b, c, v, 1.7, bg, lum, 1.0)
    assert want[2].mean() > 0.5
    for g, r in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, r)


def test_only_dark_or_clipped_pixels_themselves_are_untrusted():
    """A dark or clipped pixel is untrusted, its neighbours are not (no 3-px hole
    around it); the overlap's edge is still eroded by 3 px."""
    from monitor.change.multiscale import _coarse_background, _native_slope

    rng = np.random.default_rng(2)
    b = rng.uniform(0.2, 0.7, (120, 160, 3)).astype(np.float32)
    c = b.copy()
    b[50, 60] = 0.0  # one dark pixel in the baseline
    c[80, 100] = 1.0  # one clipped pixel in the current scan
    v = np.ones((120, 160), bool)
    v[:, :10] = False  # outside the warp
    dev = torch.device("cpu")
    with torch.inference_mode():
        bg, lum = _coarse_background(b, c, v, 64, 0.03, dev)
        ok = _native_slope(b, c, v, 1.0, bg, lum, 1024, 1.0, dev)[2]
    assert not ok[50, 60] and not ok[80, 100]
    for y, x in ((50, 60), (80, 100)):
        near = ok[y - 3 : y + 4, x - 3 : x + 4].copy()
        near[3, 3] = True
        assert near.all()
    assert not ok[:, :13].any() and ok[20:100, 13].all()
    assert ok.sum() == 120 * (160 - 13) - 2


def _candidate(level: int, significance: float, rows: range, cols: range, width: int = 100):
    from monitor.change.multiscale import Candidate as _Candidate
    from monitor.results import ScaledRegion

    ys, xs = np.meshgrid(np.asarray(rows), np.asarray(cols), indexing="ij")
    cells = np.unique(ys.ravel() * width + xs.ravel())
    region = ScaledRegion(id=0, polarity="bulge", centroid=(0.0, 0.0), bbox=(0, 0, 1, 1),
                          area_px=1.0, peak=1.0, mean=1.0, significance=significance,
                          scale_px=float(2**level), level=level)
    return _Candidate(region, cells)


def test_one_deformation_seen_at_two_levels_is_reported_once():
    """Footprints of different levels that touch (or lie within the merge radius,
    in pixels of the coarser level) are one region, the most significant kept,
    although they overlap by less than ``nms_overlap``; the same footprints at one
    level, or far apart, stay two regions."""
    from monitor.change.multiscale import suppress as _suppress

    fine = _candidate(0, 12.0, range(10, 15), range(10, 15))
    coarse = _candidate(2, 20.0, range(8, 18), range(15, 30))  # beside it, no shared cell
    kept = _suppress([fine, coarse], 0.3, width=100, nms_pitch=4, merge_radius=2.0)
    assert [c.region.level for c in kept] == [2]
    # sharing a single cell ("touching" grown footprints) is enough, with no radius
    touching = _candidate(2, 20.0, range(8, 18), range(14, 30))
    kept = _suppress([fine, touching], 0.3, width=100, nms_pitch=4, merge_radius=0.0)
    assert [c.region.level for c in kept] == [2]
    # the fine level more significant: it is the one kept
    strong = _candidate(0, 30.0, range(10, 15), range(10, 15))
    kept = _suppress([strong, coarse], 0.3, width=100, nms_pitch=4, merge_radius=2.0)
    assert [c.region.level for c in kept] == [0]
    # the same level: two regions (only the overlap rule merges them)
    same = _candidate(0, 20.0, range(8, 18), range(15, 30))
    assert len(_suppress([fine, same], 0.3, width=100, nms_pitch=4, merge_radius=2.0)) == 2
    # beyond the radius (2 px of level 2 = 8 px = 2 cells): two regions
    far = _candidate(2, 20.0, range(8, 18), range(18, 30))
    assert len(_suppress([fine, far], 0.3, width=100, nms_pitch=4, merge_radius=2.0)) == 2
    assert len(_suppress([fine, far], 0.3, width=100, nms_pitch=4, merge_radius=4.0)) == 1


def test_a_region_steeper_than_relief_is_not_reported():
    """A narrow spike (a cast shadow or glint that moved with the lamp integrates to a
    'bulge' of slope > 1) is dropped by ``max_slope``; a gentle bump of the same
    significance stays."""
    from monitor.change.multiscale import level_regions

    y, x = np.mgrid[0:200, 0:300].astype(np.float32)
    spike = 8.0 * np.exp(-((x - 60) ** 2 + (y - 100) ** 2) / (2 * 1.5**2))  # 8 px high, ~5 px wide
    bump = 1.0 * np.exp(-((x - 200) ** 2 + (y - 100) ** 2) / (2 * 12.0**2))  # slope ~0.05
    height = (spike + bump).astype(np.float32)
    zmap = np.where(x < 130, height * 5.0, height * 40.0).astype(np.float32)  # both peak at z 40

    def found(max_slope: float) -> list[int]:
        regions = level_regions(
            height, zmap.copy(), np.zeros_like(height, bool), level=0, pitch=1, z=7.0,
            extent_frac=0.2, min_area=4, px_per_mm=None, direction=(1.0, 0.0), nms_pitch=4,
            nms_shape=(51, 76), max_slope=max_slope,
        )
        return sorted(round(c.region.centroid[0]) for c in regions)

    assert found(np.inf) == [60, 200]
    assert found(1.0) == [200]
