"""Tests of the synthetic canvas renderer (monitor.synth) and the sample-data generator."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image

from monitor import synth
from monitor.errors import MonitorError
from monitor.results import Light

SIZE = (256, 192)
LEFT = Light(180.0, 25.0)
REPO = Path(__file__).resolve().parents[1]


def _lin(pixels: np.ndarray) -> np.ndarray:
    """sRGB-encoded integers to linear float32 (independent of the renderer's code)."""
    v = pixels.astype(np.float64) / np.iinfo(pixels.dtype).max
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


def _quiet(**changes: object) -> synth.PairSpec:
    """A small pair with a pose change but no photometric nuisance."""
    base = synth.PairSpec(
        seed=11,
        size=SIZE,
        light_baseline=LEFT,
        light_current=LEFT,
        noise=0.0,
        discoloration=False,
        rotation_deg=1.2,
        scale=1.015,
        translation=(3.3, -2.7),
        perspective=(0.006, -0.004),
        slope_range=(0.1, 0.12),
        size_range=(0.09, 0.11),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def _log_ratio(pair: synth.SynthPair, blur: float = 0.0) -> np.ndarray:
    """Per-channel log(current / baseline) on the baseline grid (NaN outside the overlap)."""
    h, w = pair.baseline.shape[:2]
    lb = _lin(pair.baseline)
    lc = synth.warp_current_to_baseline(
        _lin(pair.current), pair.homography, pair.lens_k1, (w, h), interpolation=cv2.INTER_CUBIC
    )
    valid = np.isfinite(lc).all(axis=2)
    lc = np.nan_to_num(lc)
    if blur > 0:
        lb = cv2.GaussianBlur(lb, (0, 0), blur)
        lc = cv2.GaussianBlur(lc, (0, 0), blur)
        valid = cv2.erode(valid.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    out = np.log(np.maximum(lc, 1e-4)) - np.log(np.maximum(lb, 1e-4))
    out[~valid] = np.nan
    return out


# --------------------------------------------------------------------------- determinism


def test_same_spec_gives_identical_pair() -> None:
    spec = synth.sample_spec(5, size=SIZE, realism=True)
    a, b = synth.render_pair(spec), synth.render_pair(spec)
    assert np.array_equal(a.baseline, b.baseline)
    assert np.array_equal(a.current, b.current)
    assert np.array_equal(a.homography, b.homography)
    assert np.array_equal(a.height_change, b.height_change)
    assert a.truth_dict() == b.truth_dict()
    c = synth.render_pair(dataclasses.replace(spec, seed=spec.seed + 1))
    assert not np.array_equal(a.baseline, c.baseline)


def test_spec_round_trips_through_truth_json() -> None:
    spec = synth.sample_spec(8, size=SIZE, realism=True)
    pair = synth.render_pair(spec)
    again = synth.PairSpec.from_dict(json.loads(json.dumps(pair.truth_dict()))["spec"])
    assert again == spec
    with pytest.raises(MonitorError, match="unknown"):
        synth.PairSpec.from_dict({"bogus": 1})


# --------------------------------------------------------------------------- geometry


def test_homography_maps_current_onto_baseline() -> None:
    pair = synth.render_pair(_quiet(no_change=True))
    h, w = pair.baseline.shape[:2]

    def residual(hom: np.ndarray) -> float:
        lb = cv2.GaussianBlur(_lin(pair.baseline), (0, 0), 1.0)
        lc = synth.warp_current_to_baseline(
            _lin(pair.current), hom, 0.0, (w, h), interpolation=cv2.INTER_CUBIC
        )
        valid = cv2.erode(np.isfinite(lc).all(axis=2).astype(np.uint8), np.ones((9, 9))) > 0
        lc = cv2.GaussianBlur(np.nan_to_num(lc), (0, 0), 1.0)
        return float(np.median(np.abs(np.log(lc[valid] + 1e-4) - np.log(lb[valid] + 1e-4))))

    true = residual(pair.homography)
    shift = np.array([[1, 0, 0.3], [0, 1, -0.2], [0, 0, 1]], dtype=np.float64)  # 0.36 px off
    assert true < 0.01
    assert residual(shift @ pair.homography) > 4 * true


def test_homography_convention_matches_opencv_with_half_pixel_shift() -> None:
    pair = synth.render_pair(_quiet(no_change=True))
    h, w = pair.baseline.shape[:2]
    cur = _lin(pair.current)
    ours = synth.warp_current_to_baseline(cur, pair.homography, 0.0, (w, h))
    t = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]], dtype=np.float64)
    m = np.linalg.inv(t) @ pair.homography @ t  # index coordinates: corner-origin minus 0.5
    cv = cv2.warpPerspective(cur, m, (w, h), flags=cv2.INTER_LINEAR)
    inner = np.isfinite(ours).all(axis=2)
    inner[:8], inner[-8:], inner[:, :8], inner[:, -8:] = False, False, False, False
    assert np.abs(ours[inner] - cv[inner]).max() < 2e-3


def test_points_round_trip_and_lens_moves_corners_by_k1_r() -> None:
    size = (320, 240)
    k1 = 0.02
    rad = 0.5 * math.hypot(*size)
    corner = np.array([[0.0, 0.0]])
    moved = synth.distort_points(corner, k1, size)
    assert np.hypot(*(moved - corner)[0]) == pytest.approx(k1 * rad, rel=1e-9)
    pts = np.random.default_rng(0).uniform(0, 240, (50, 2))
    back = synth.undistort_points(synth.distort_points(pts, k1, size), k1, size)
    assert np.abs(back - pts).max() < 1e-6
    hom = synth.pose_homography(size, size, rotation_deg=2.0, scale=1.03, translation=(5, -4))
    there = synth.baseline_to_current(pts, hom, k1, size)
    assert np.abs(synth.current_to_baseline(there, hom, k1, size) - pts).max() < 1e-6


def test_lens_distortion_is_in_the_truth() -> None:
    k1 = 8.0 / (0.5 * math.hypot(*SIZE))  # corners move 8 px
    pair = synth.render_pair(_quiet(no_change=True, lens_k1=k1))
    h, w = pair.baseline.shape[:2]
    lb = cv2.GaussianBlur(_lin(pair.baseline), (0, 0), 1.0)

    def err(kk: float) -> float:
        lc = synth.warp_current_to_baseline(
            _lin(pair.current), pair.homography, kk, (w, h), interpolation=cv2.INTER_CUBIC
        )
        valid = cv2.erode(np.isfinite(lc).all(axis=2).astype(np.uint8), np.ones((9, 9))) > 0
        lc = cv2.GaussianBlur(np.nan_to_num(lc), (0, 0), 1.0)
        return float(np.median(np.abs(np.log(lc[valid] + 1e-4) - np.log(lb[valid] + 1e-4))))

    assert pair.lens_k1 == k1
    assert err(k1) < 0.01
    assert err(0.0) > 3 * err(k1)


def test_current_size_may_differ() -> None:
    pair = synth.render_pair(_quiet(current_size=(240, 200)))
    assert pair.baseline.shape == (192, 256, 3)
    assert pair.current.shape == (200, 240, 3)
    assert pair.truth_dict()["current_size"] == [240, 200]


# --------------------------------------------------------------------------- truth


def test_truth_regions_match_height_change() -> None:
    spec = synth.sample_spec(2, size=(320, 240))
    # deformations wide enough (ridge >= 4 px) for np.gradient to see their true slope
    spec = dataclasses.replace(spec, kinds=("bulge", "recession", "ridge"), size_range=(0.04, 0.07))
    pair = synth.render_pair(spec)
    dh = pair.height_change
    assert dh.dtype == np.float32 and dh.shape == (240, 320)
    assert [r.kind for r in pair.regions] == ["bulge", "recession", "ridge"]
    union = np.zeros(dh.shape, bool)
    gy, gx = np.gradient(dh.astype(np.float64))
    cw, ch = spec.current_size or spec.size
    for r in pair.regions:
        assert r.polarity == ("recession" if r.peak < 0 else "bulge")
        assert (r.kind == "recession") == (r.peak < 0)
        assert not (union & r.mask).any(), "regions overlap"
        union |= r.mask
        assert r.mask.sum() == r.area_px > 0
        # the mask is the 20 % level set of this deformation alone
        assert np.array_equal(r.mask, r.mask & (np.abs(dh) >= 0.2 * abs(r.peak) - 1e-6))
        rows, cols = np.nonzero(r.mask)
        assert r.bbox == (cols.min(), rows.min(), cols.max() + 1.0, rows.max() + 1.0)
        assert r.centroid == pytest.approx((cols.mean() + 0.5, rows.mean() + 0.5))
        near = cv2.dilate(r.mask.astype(np.uint8), np.ones((31, 31), np.uint8)).astype(bool)
        assert np.abs(dh[near]).max() == pytest.approx(abs(r.peak), rel=0.05)
        assert np.hypot(gx, gy)[near].max() == pytest.approx(r.max_slope, rel=0.1)
        corners = np.array([[r.bbox[0], r.bbox[1]], [r.bbox[2], r.bbox[3]]])
        seen = synth.baseline_to_current(corners, pair.homography, pair.lens_k1, (cw, ch))
        assert (seen >= 0).all() and (seen[:, 0] <= cw).all() and (seen[:, 1] <= ch).all()
    ridge = pair.regions[2].mask
    ys, xs = np.nonzero(ridge)
    ev = np.linalg.eigvalsh(np.cov(np.stack([xs, ys])))
    assert ev[1] > 4 * ev[0], "a ridge is elongated"
    if pair.discoloration is not None:
        assert not (pair.discoloration.mask & union).any()


def test_no_change_pair_has_no_height_change() -> None:
    pair = synth.render_pair(synth.sample_spec(4, size=SIZE, no_change=True, realism=True))
    assert pair.regions == ()
    assert not pair.height_change.any()
    assert pair.truth_dict()["regions"] == []


# --------------------------------------------------------------------------- photometry


@pytest.mark.parametrize("kind", ["bulge", "recession"])
@pytest.mark.parametrize("azimuth", [180.0, 90.0])
def test_shading_sign_follows_light_side(kind: str, azimuth: float) -> None:
    light = Light(azimuth, 25.0)
    pair = synth.render_pair(_quiet(kinds=(kind,), light_baseline=light, light_current=light))
    lum = _log_ratio(pair).mean(axis=2)
    (region,) = pair.regions
    cx, cy = region.centroid
    ys, xs = np.nonzero(region.mask)
    vals = lum[ys, xs]
    # side towards the lamp: x < cx for light from the left, y < cy for light from the top
    lit_side = xs + 0.5 < cx - 2 if azimuth == 180.0 else ys + 0.5 < cy - 2
    far_side = xs + 0.5 > cx + 2 if azimuth == 180.0 else ys + 0.5 > cy + 2
    towards, away = float(np.nanmean(vals[lit_side])), float(np.nanmean(vals[far_side]))
    if kind == "bulge":
        assert towards > 0.05 and away < -0.05
    else:
        assert towards < -0.05 and away > 0.05


def test_discoloration_is_chromatic_and_relief_is_not() -> None:
    pair = synth.render_pair(_quiet(kinds=("bulge",), discoloration=True, noise=0.005))
    assert pair.discoloration is not None
    lr = _log_ratio(pair, blur=1.0)
    spread = lr.max(axis=2) - lr.min(axis=2)
    stain = float(np.nanmedian(spread[pair.discoloration.mask]))
    bulge = float(np.nanmedian(spread[pair.regions[0].mask]))
    expected = max(pair.discoloration.factors) / min(pair.discoloration.factors)
    assert stain == pytest.approx(math.log(expected), rel=0.3)
    assert stain > 5 * bulge


def test_log_ratio_follows_first_order_photometric_model() -> None:
    """Achromatic log ratio ~ -(1 - ambient) (l_xy . grad dh) / l_z at the deformations."""
    spec = _quiet(kinds=("bulge", "recession", "ridge"), noise=0.005, size=(320, 240))
    pair = synth.render_pair(spec)
    ach = _log_ratio(pair, blur=1.5).mean(axis=2)
    dh = cv2.GaussianBlur(pair.height_change, (0, 0), 1.5)
    gy, gx = np.gradient(dh.astype(np.float64))
    lv = spec.light_baseline.vector()
    predicted = -(1 - spec.ambient) * (lv[0] * gx + lv[1] * gy) / lv[2]
    support = np.zeros(dh.shape, bool)
    for r in pair.regions:
        support |= cv2.dilate(r.mask.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    support &= np.isfinite(ach)
    strong = support & (np.abs(predicted) > 0.05)
    assert strong.sum() > 200
    assert (np.sign(ach[strong]) == np.sign(predicted[strong])).mean() > 0.95
    a, p = ach[support] - np.nanmedian(ach[~support]), predicted[support]
    assert np.corrcoef(a, p)[0, 1] > 0.9
    slope = float(np.dot(a, p) / np.dot(p, p))
    assert 0.7 < slope < 1.3


def test_exposure_and_white_balance_scale_the_current_scan() -> None:
    wb = (1.08, 1.0, 0.93)
    pair = synth.render_pair(_quiet(no_change=True, exposure=1.2, wb=wb, noise=0.0))
    lr = _log_ratio(pair, blur=1.0)
    valid = np.isfinite(lr).all(axis=2)
    medians = np.median(lr[valid], axis=0)
    assert medians == pytest.approx(np.log(1.2 * np.asarray(wb)), abs=0.01)


def test_realism_knobs_render() -> None:
    spec = synth.PairSpec(
        seed=3,
        size=SIZE,
        point_lamp=2.0,
        gloss=0.4,
        vignetting=(0.1, 0.25),
        yellowing=0.1,
        lens_k1=0.03,
        jpeg_quality=90,
        light_current=Light(183.0, 24.0),
        rotation_deg=-2.0,
    )
    pair = synth.render_pair(spec)
    assert pair.jpeg is not None and pair.baseline.dtype == np.uint8
    plain = synth.render_pair(dataclasses.replace(spec, gloss=0.0, vignetting=(0.0, 0.0)))
    lb, lp = _lin(pair.baseline), _lin(plain.baseline)
    assert (lb - lp).max() > 0.05, "gloss adds highlights"
    centre, corner = (slice(80, 112), slice(112, 144)), (slice(0, 24), slice(0, 24))
    ratio = lambda a, b, s: float(a[s].mean() / b[s].mean())  # noqa: E731
    assert ratio(lb, lp, corner) < ratio(lb, lp, centre)  # vignetting darkens the corners


# --------------------------------------------------------------------------- files


def test_write_pair_png_round_trip(tmp_path: Path) -> None:
    pair = synth.render_pair(dataclasses.replace(synth.sample_spec(6, size=SIZE), kinds=("ridge",)))
    paths = synth.write_pair(pair, tmp_path)
    truth = json.loads(paths["truth"].read_text())
    assert np.array_equal(cv2.imread(str(paths["baseline"]))[..., ::-1], pair.baseline)
    assert np.array_equal(cv2.imread(str(paths["current"]))[..., ::-1], pair.current)
    assert np.array_equal(tifffile.imread(paths["height_change"]), pair.height_change)
    assert np.allclose(truth["homography"], pair.homography)
    assert [r["kind"] for r in truth["regions"]] == ["ridge"]
    assert truth["regions"][0]["bbox"] == pytest.approx(list(pair.regions[0].bbox))
    labels = cv2.imread(str(paths["labels"]), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(labels == 1, pair.regions[0].mask)
    assert truth["light_baseline"]["azimuth_deg"] == pair.spec.light_baseline.azimuth_deg


def test_write_pair_jpeg_and_16_bit(tmp_path: Path) -> None:
    pair = synth.render_pair(_quiet(jpeg_quality=88))
    paths = synth.write_pair(pair, tmp_path / "j", fmt="jpg")
    assert np.array_equal(cv2.imread(str(paths["current"]))[..., ::-1], pair.current)
    deep = synth.render_pair(_quiet(bit_depth=16))
    assert deep.baseline.dtype == np.uint16 and deep.baseline.max() > 255
    paths = synth.write_pair(deep, tmp_path / "d", fmt="png")
    assert np.array_equal(
        cv2.imread(str(paths["baseline"]), cv2.IMREAD_UNCHANGED)[..., ::-1], deep.baseline
    )
    with pytest.raises(MonitorError, match="8-bit"):
        synth.write_pair(deep, tmp_path / "x", fmt="jpg")


# --------------------------------------------------------------------------- inputs


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"size": (32, 32)}, "size"),
        ({"size": (256.0, 192)}, "size"),
        ({"bit_depth": 12}, "bit_depth"),
        ({"bit_depth": 16, "jpeg_quality": 90}, "8"),
        ({"kinds": ("blister",)}, "kinds"),
        ({"slope_range": (0.2, 0.1)}, "slope_range"),
        ({"exposure": -1.0}, "exposure"),
        ({"wb": (1.0, 1.0)}, "wb"),
        ({"painting": "/nonexistent/painting.jpg"}, "painting"),
        ({"kinds": ("bulge",) * 40, "size_range": (0.15, 0.2)}, "cannot place"),
    ],
)
def test_bad_specs_raise_one_line_errors(changes: dict[str, object], message: str) -> None:
    with pytest.raises(MonitorError, match=message) as info:
        synth.render_pair(_quiet(**changes))
    assert "\n" not in str(info.value)


def test_sample_spec_draws_within_documented_ranges() -> None:
    for seed in range(12):
        spec = synth.sample_spec(seed, size=SIZE, realism=seed % 2 == 1)
        assert 0.5 <= abs(spec.rotation_deg) <= 3.0
        assert 0.97 <= spec.scale <= 1.03 and 0.8 <= spec.exposure <= 1.25
        assert all(0.9 <= g <= 1.1 for g in spec.wb)
        assert 15.0 <= spec.light_baseline.elevation_deg <= 30.0
        drift = abs(
            (spec.light_current.azimuth_deg - spec.light_baseline.azimuth_deg + 180) % 360 - 180
        )
        assert drift <= 3.0
        if seed % 2 == 0:
            assert spec.lens_k1 == 0 and spec.gloss == 0 and spec.jpeg_quality is None
        else:
            corner_px = abs(spec.lens_k1) * 0.5 * math.hypot(*SIZE)
            assert 2.0 <= corner_px <= 8.0
    steep = synth.sample_spec(0, raking=False)
    assert steep.light_baseline.elevation_deg >= 35.0


def test_demo_spec_is_the_documented_sample_pair() -> None:
    spec = synth.demo_spec(size=(320, 240))
    pair = synth.render_pair(spec)
    kinds = sorted(r.kind for r in pair.regions)
    assert kinds == ["bulge", "bulge", "recession", "recession", "ridge"]
    assert pair.discoloration is not None and pair.lens_k1 == 0.0
    assert spec.light_baseline == Light(180.0, 25.0) and spec.exposure == 1.15
    assert spec.jpeg_quality is None and spec.bit_depth == 8
    assert synth.demo_spec().size == (1280, 960)


# --------------------------------------------------------------------------- paintings


def test_list_paintings(tmp_path: Path) -> None:
    for name in ("b.JPG", "a.jpg", "c.png"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in synth.list_paintings(tmp_path)] == ["a.jpg", "b.JPG"]
    assert synth.list_paintings(tmp_path / "missing") == []
    assert all(p.suffix.lower() in {".jpg", ".jpeg"} for p in synth.list_paintings())


def test_painting_photo_becomes_the_albedo(tmp_path: Path) -> None:
    photo = np.zeros((120, 200, 3), np.uint8)
    photo[:, :100] = (200, 40, 30)  # red left half
    photo[:, 100:] = (30, 60, 200)  # blue right half
    path = tmp_path / "p.jpg"
    Image.fromarray(photo).save(path, quality=95)
    pair = synth.render_pair(_quiet(painting=str(path), no_change=True))
    lin = _lin(pair.baseline)
    left, right = lin[:, :100].mean(axis=(0, 1)), lin[:, 156:].mean(axis=(0, 1))
    assert left[0] > 3 * left[2] and right[2] > 3 * right[0]


# --------------------------------------------------------------------------- generator


def test_generator_writes_the_sample_pair(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loader = importlib.util.spec_from_file_location(
        "sample_generate", REPO / "sample_data/generate.py"
    )
    assert loader is not None and loader.loader is not None
    gen = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(gen)
    gen.demo_spec = lambda seed: synth.demo_spec(seed, size=(256, 192))  # keep the test small
    assert gen.main(["--out", str(tmp_path), "--seed", "3"]) == 0
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert len(truth["regions"]) == 5 and truth["discoloration"] is not None
    assert truth["spec"]["seed"] == 3
    assert (tmp_path / "baseline.png").is_file() and (tmp_path / "current.png").is_file()
    assert "truth.json" in capsys.readouterr().out
