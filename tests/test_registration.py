"""Tests of monitor.registration on small synthetic pairs with a known mapping.

A textured source canvas (random brush strokes, or a real painting when
``../shared/paintings`` is present) is cropped to give BASELINE; CURRENT is the
same canvas seen through a known homography, optionally a radial lens distortion
and an exposure / white-balance change. All coordinates are corner-origin.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from monitor.errors import MonitorError
from monitor.registration import (
    baseline_to_current,
    corner_error,
    register,
    registration_to_dict,
    warp_to_baseline,
)
from monitor.registration.residual import _cubic_weights
from monitor.results import Registration

SHAPE = (480, 640)  # rows, cols of both scans
OFFSET = (130.0, 100.0)  # baseline crop origin in the source canvas
PAINTINGS = Path(__file__).resolve().parents[2] / "shared" / "paintings"


# --------------------------------------------------------------------------- synthetic data


def brush_canvas(seed: int, h: int = 700, w: int = 900, strokes: int = 2500) -> np.ndarray:
    """Float32 RGB canvas of random brush-like strokes on a low-frequency ground."""
    rng = np.random.default_rng(seed)
    ground = rng.uniform(0, 255, (h // 8, w // 8, 3)).astype(np.float32)
    img = cv2.resize(cv2.GaussianBlur(ground, (0, 0), 2), (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(strokes):
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.integers(3, 22)), int(rng.integers(1, 5)))
        colour = tuple(float(v) for v in rng.uniform(0, 255, 3))
        angle = float(rng.uniform(0, 180))
        cv2.ellipse(img, centre, axes, angle, 0, 360, colour, -1, cv2.LINE_AA)
    grain = cv2.GaussianBlur(rng.normal(0, 10, (h, w)).astype(np.float32), (0, 0), 1.0)
    img = cv2.GaussianBlur(img, (0, 0), 0.8) + grain[..., None]
    return np.clip(img, 0, 255).astype(np.float32)


def pose(angle_deg: float = 2.0, scale: float = 1.03, shift=(150.0, 70.0), persp=(2e-5, -1.5e-5)):
    """Homography CURRENT -> source canvas: rotation, scale, mild perspective, shift."""
    a = np.deg2rad(angle_deg)
    cx, cy = SHAPE[1] / 2, SHAPE[0] / 2
    t1 = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1.0]])
    rs = np.array(
        [
            [scale * np.cos(a), -scale * np.sin(a), 0],
            [scale * np.sin(a), scale * np.cos(a), 0],
            [0, 0, 1],
        ]
    )
    pp = np.array([[1, 0, 0], [0, 1, 0], [persp[0], persp[1], 1.0]])
    t2 = np.array([[1, 0, cx + shift[0]], [0, 1, cy + shift[1]], [0, 0, 1.0]])
    return t2 @ rs @ pp @ t1


def apply_h(h: np.ndarray, p: np.ndarray) -> np.ndarray:
    q = p @ h[:2, :2].T + h[:2, 2]
    return q / (p @ h[2, :2] + h[2, 2])[:, None]


def undistort(q: np.ndarray, k_px: float) -> np.ndarray:
    """Distorted CURRENT coords -> ideal (pinhole) coords; corners move by k_px."""
    h, w = SHAPE
    c = np.array([w / 2, h / 2])
    radius = np.hypot(w / 2, h / 2)
    d = q - c
    r2 = (np.hypot(d[:, 0], d[:, 1]) / radius)[:, None] ** 2
    return q + k_px * r2 * d / radius


def true_baseline_to_current(pb: np.ndarray, a: np.ndarray, k_px: float) -> np.ndarray:
    v = apply_h(np.linalg.inv(a), pb + np.array(OFFSET))
    q = v.copy()
    for _ in range(60):  # invert the distortion by fixed-point iteration
        q = q - (undistort(q, k_px) - v)
    return q


def make_pair(
    src: np.ndarray,
    a: np.ndarray,
    *,
    k_px: float = 0.0,
    gains=(1.0, 1.0, 1.0),
    gamma: float = 1.0,
    noise: float = 0.0,
    dipole: tuple[float, float, float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(baseline uint8, current uint8, true homography CURRENT -> BASELINE)."""
    h, w = SHAPE
    ox, oy = int(OFFSET[0]), int(OFFSET[1])
    base = src[oy : oy + h, ox : ox + w]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    q = np.stack([xs.ravel() + 0.5, ys.ravel() + 0.5], axis=1)
    s = apply_h(a, undistort(q, k_px)).reshape(h, w, 2)
    mx, my = (s[..., 0] - 0.5).astype(np.float32), (s[..., 1] - 0.5).astype(np.float32)
    cur = cv2.remap(src, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    cur = np.clip(cur, 0, 255) / 255.0
    if dipole is not None:  # smooth bright/dark pair, as a bulge under raking light
        dx, dy, sigma, amp = dipole
        u = (xs + 0.5 - dx) / sigma
        v = (ys + 0.5 - dy) / sigma
        cur = cur * (1.0 + amp * u * np.exp(-(u * u + v * v) / 2))[..., None]
    cur = np.clip(cur, 0, None) ** gamma * np.asarray(gains) * 255.0
    cur = cur + np.random.default_rng(1).normal(0, noise, cur.shape)
    h_true = np.array([[1, 0, -ox], [0, 1, -oy], [0, 0, 1.0]]) @ a
    to8 = lambda x: np.clip(x, 0, 255).round().astype(np.uint8)  # noqa: E731
    return to8(base), to8(cur), h_true / h_true[2, 2]


def dense_errors(reg: Registration, a: np.ndarray, k_px: float, margin: float = 4.0):
    """Errors (px) of the full model and of the homography alone on a dense grid over
    the overlap, at least ``margin`` px inside both images; these are check points, not
    the points the fit used."""
    ys, xs = np.mgrid[2 : SHAPE[0] : 4, 2 : SHAPE[1] : 4]
    pb = np.stack([xs.ravel() + 0.5, ys.ravel() + 0.5], axis=1).astype(np.float64)
    tq = true_baseline_to_current(pb, a, k_px)
    inside = np.ones(len(pb), bool)
    for p in (pb, tq):
        inside &= (p[:, 0] >= margin) & (p[:, 0] <= SHAPE[1] - margin)
        inside &= (p[:, 1] >= margin) & (p[:, 1] <= SHAPE[0] - margin)
    full = np.hypot(*(baseline_to_current(pb, reg) - tq).T)[inside]
    h_only = dataclasses.replace(reg, residual_grid=None)
    homog = np.hypot(*(baseline_to_current(pb, h_only) - tq).T)[inside]
    return full, homog


PHOTO = {"gains": (1.15, 1.0, 0.8), "gamma": 0.85, "noise": 1.0}


@pytest.fixture(scope="module")
def canvas() -> np.ndarray:
    return brush_canvas(seed=0)


@pytest.fixture(scope="module")
def distorted(canvas: np.ndarray):
    """Pose + exposure change + radial distortion moving the corners by 4 px."""
    a = pose()
    base, cur, h_true = make_pair(canvas, a, k_px=4.0, **PHOTO)
    return base, cur, a, h_true, register(base, cur)


# --------------------------------------------------------------------------- register


def test_pose_and_exposure_change_corner_error(canvas: np.ndarray) -> None:
    a = pose(angle_deg=-6.0, scale=0.9, shift=(120.0, 90.0))
    base, cur, h_true = make_pair(canvas, a, gains=(0.6, 0.5, 0.42), gamma=1.3, noise=1.5)
    reg = register(base, cur)
    err = corner_error(reg.homography, h_true, SHAPE)
    assert err < 0.5
    assert reg.residual_grid is None  # a pure homography needs no residual
    assert reg.baseline_shape == SHAPE and reg.current_shape == SHAPE
    assert reg.working_scale == 1.0
    assert 25 <= reg.n_inliers <= reg.n_matches
    assert 0.0 < reg.rmse_px <= reg.rmse_homography_px + 1e-12 < 0.3


def test_uint16_and_grey_inputs(canvas: np.ndarray) -> None:
    a = pose()
    base, cur, h_true = make_pair(canvas, a, **PHOTO)
    base16 = base.astype(np.uint16) * 257
    grey = cv2.cvtColor(cur, cv2.COLOR_RGB2GRAY)
    reg = register(base16, grey)
    assert corner_error(reg.homography, h_true, SHAPE) < 0.5


def test_radial_distortion_is_absorbed_by_the_residual(distorted) -> None:
    base, cur, a, h_true, reg = distorted
    corners = np.array([[0.0, 0.0], [SHAPE[1], SHAPE[0]]])
    assert np.all(np.hypot(*(undistort(corners, 4.0) - corners).T) >= 3.0)
    assert reg.residual_grid is not None and reg.residual_grid.shape == (6, 6, 2)
    full, homog = dense_errors(reg, a, 4.0)
    assert homog.max() > 1.0  # no homography can absorb it ...
    assert full.max() <= 0.3  # ... the smooth residual does
    assert np.percentile(full, 95) <= 0.1
    assert reg.rmse_px < reg.rmse_homography_px


def test_working_resolution_is_lifted_to_full_resolution(canvas: np.ndarray) -> None:
    a = pose()
    base, cur, _ = make_pair(canvas, a, k_px=4.0, **PHOTO)
    reg = register(base, cur, max_px=320)
    assert reg.working_scale == pytest.approx(0.5)
    full, _ = dense_errors(reg, a, 4.0)
    assert full.max() <= 0.3


def test_residual_disabled(distorted) -> None:
    base, cur, a, _, _ = distorted
    reg = register(base, cur, residual_grid=0)
    assert reg.residual_grid is None
    assert reg.rmse_px == reg.rmse_homography_px


def test_local_shading_change_does_not_move_the_residual(canvas: np.ndarray, distorted) -> None:
    base, _, a, _, reg0 = distorted
    _, cur1, _ = make_pair(canvas, a, k_px=4.0, dipole=(220.0, 160.0, 30.0, 0.5), **PHOTO)
    reg1 = register(base, cur1)
    assert reg1.residual_grid is not None and reg0.residual_grid is not None
    assert np.abs(reg1.residual_grid - reg0.residual_grid).max() < 0.1
    ys, xs = np.mgrid[0 : SHAPE[0] : 16, 0 : SHAPE[1] : 16]
    pb = np.stack([xs.ravel(), ys.ravel()], axis=1) + 8.0
    moved = np.hypot(*(baseline_to_current(pb, reg1) - baseline_to_current(pb, reg0)).T)
    assert moved.max() < 0.1


def test_unrelated_images_are_refused(canvas: np.ndarray) -> None:
    base = canvas[100:580, 130:770].astype(np.uint8)
    other = brush_canvas(seed=7)[50:530, 100:740].astype(np.uint8)
    with pytest.raises(MonitorError, match="do not appear to show the same artwork") as info:
        register(base, other)
    assert "\n" not in str(info.value)


def test_flat_grey_image_is_refused(canvas: np.ndarray) -> None:
    base = canvas[100:580, 130:770].astype(np.uint8)
    with pytest.raises(MonitorError, match="too little texture"):
        register(base, np.full_like(base, 128))


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((480, 640, 3), np.float32), "uint8 or uint16"),
        (np.zeros((480, 640, 2), np.uint8), "H x W"),
        (np.zeros((30, 640), np.uint8), "too small"),
    ],
)
def test_bad_input_is_refused(canvas: np.ndarray, image: np.ndarray, message: str) -> None:
    base = canvas[100:580, 130:770].astype(np.uint8)
    with pytest.raises(MonitorError, match=message):
        register(base, image)


def test_mirrored_homography_is_implausible() -> None:
    from monitor.registration import _check_plausible

    flip = np.array([[-1.0, 0, 640], [0, 1, 0], [0, 0, 1]])
    with pytest.raises(MonitorError, match="flips"):
        _check_plausible(flip, SHAPE)
    with pytest.raises(MonitorError, match="scale"):
        _check_plausible(np.diag([6.0, 6.0, 1.0]), SHAPE)
    with pytest.raises(MonitorError, match="perspective"):
        _check_plausible(np.array([[1.0, 0, 0], [0, 1, 0], [2e-3, 0, 1]]), SHAPE)
    _check_plausible(np.eye(3), SHAPE)


@pytest.mark.skipif(not PAINTINGS.is_dir(), reason="../shared/paintings is not available")
def test_real_painting_crop() -> None:
    path = PAINTINGS / "vangogh_starry_night.jpg"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    src = cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1]
    src = cv2.resize(src, (900, 713), interpolation=cv2.INTER_AREA).astype(np.float32)
    a = pose()
    base, cur, h_true = make_pair(src, a, **PHOTO)
    assert corner_error(register(base, cur).homography, h_true, SHAPE) < 0.5
    base, cur, _ = make_pair(src, a, k_px=4.0, **PHOTO)
    full, homog = dense_errors(register(base, cur), a, 4.0)
    assert homog.max() > 1.0 and full.max() <= 0.3


# --------------------------------------------------------------------------- mapping and warp


def _toy_registration(grid: np.ndarray | None) -> Registration:
    h = np.array([[1.02, 0.03, -12.0], [-0.02, 0.99, 7.0], [1e-5, -2e-5, 1.0]])
    return Registration(
        homography=h,
        baseline_shape=(300, 400),
        current_shape=(320, 420),
        n_matches=100,
        n_inliers=90,
        rmse_homography_px=0.5,
        rmse_px=0.1,
        residual_grid=grid,
    )


def test_baseline_to_current_follows_the_documented_convention() -> None:
    rng = np.random.default_rng(3)
    grid = rng.normal(0, 1.5, (5, 6, 2))
    reg = _toy_registration(grid)
    # nodes at x = j * W / (nx - 1), y = i * H / (ny - 1): the grid value is added there
    jj, ii = np.meshgrid(np.arange(6), np.arange(5))
    nodes = np.stack([jj.ravel() * 400 / 5, ii.ravel() * 300 / 4], axis=1)
    plain = apply_h(np.linalg.inv(reg.homography), nodes)
    got = baseline_to_current(nodes, reg)
    np.testing.assert_allclose(got - plain, grid.reshape(-1, 2), atol=1e-9)
    # without a grid it is the inverse homography
    back = apply_h(reg.homography, baseline_to_current(nodes, _toy_registration(None)))
    np.testing.assert_allclose(back, nodes, atol=1e-9)
    with pytest.raises(MonitorError, match="N x 2"):
        baseline_to_current(np.zeros((3, 3)), reg)


@pytest.mark.parametrize(("image_scale", "out_scale"), [(1.0, 1.0), (0.5, 0.5), (1.0, 0.25)])
def test_warp_samples_where_baseline_to_current_points(
    image_scale: float, out_scale: float
) -> None:
    """Warp a 'coordinate image' (value = CURRENT x, y of the pixel centre): cubic
    resampling reproduces linear functions, so the warped values must be exactly the
    CURRENT positions that baseline_to_current gives for the output pixel centres."""
    reg = _toy_registration(np.random.default_rng(4).normal(0, 1.0, (6, 6, 2)))
    ch, cw = round(320 * image_scale), round(420 * image_scale)
    ys, xs = np.mgrid[0:ch, 0:cw].astype(np.float32)
    coords = np.dstack([(xs + 0.5) / image_scale, (ys + 0.5) / image_scale, np.ones_like(xs)])
    warped, valid = warp_to_baseline(coords, reg, image_scale=image_scale, out_scale=out_scale)
    rows, cols = round(300 * out_scale), round(400 * out_scale)
    assert warped.shape == (rows, cols, 3) and warped.dtype == np.float32
    assert valid.shape == (rows, cols) and valid.dtype == bool
    oy, ox = np.mgrid[0:rows, 0:cols]
    pb = np.stack([(ox.ravel() + 0.5) / out_scale, (oy.ravel() + 0.5) / out_scale], axis=1)
    expected = baseline_to_current(pb, reg).reshape(rows, cols, 2)
    u = expected * image_scale
    inside = (u[..., 0] >= 1) & (u[..., 0] <= cw - 1) & (u[..., 1] >= 1) & (u[..., 1] <= ch - 1)
    np.testing.assert_array_equal(valid, inside)
    assert 0.5 < valid.mean() < 1.0
    interior = valid & (u[..., 0] >= 2) & (u[..., 0] <= cw - 2) & (u[..., 1] >= 2)
    interior &= u[..., 1] <= ch - 2
    err = np.abs(warped[..., :2] - expected.astype(np.float32))[interior]
    # cv2.remap quantises positions to 1/32 px: a ramp is reproduced to ~0.05 px
    assert err.max() < 0.06 / image_scale
    assert np.all(warped[~valid] == 0.0)


def _reference_warp(
    image: np.ndarray, reg: Registration, image_scale: float, out_scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """The warp's definition written out plainly: whole-image float64 maps
    ``(H^-1(p) + d(p)) * image_scale``, inside with a 1 px margin, cubic remap."""
    hb, wb = reg.baseline_shape
    rows, cols = max(1, round(hb * out_scale)), max(1, round(wb * out_scale))
    oy, ox = np.mgrid[0:rows, 0:cols].astype(np.float64)
    xb, yb = (ox + 0.5) / out_scale, (oy + 0.5) / out_scale
    h = np.linalg.inv(reg.homography)
    den = yb * h[2, 1] + xb * h[2, 0] + h[2, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        qx = (yb * h[0, 1] + xb * h[0, 0] + h[0, 2]) / den
        qy = (yb * h[1, 1] + xb * h[1, 0] + h[1, 2]) / den
    if reg.residual_grid is not None:
        g = reg.residual_grid
        wx = _cubic_weights(xb[0] * ((g.shape[1] - 1) / wb), g.shape[1])
        wy = _cubic_weights(yb[:, 0] * ((g.shape[0] - 1) / hb), g.shape[0])
        d = np.einsum("ri,ijk,cj->rck", wy, g, wx)
        qx, qy = qx + d[..., 0], qy + d[..., 1]
    ux, uy = qx * image_scale, qy * image_scale
    ih, iw = image.shape[:2]
    with np.errstate(invalid="ignore"):
        ok = (den > 0) & (ux >= 1) & (ux <= iw - 1) & (uy >= 1) & (uy <= ih - 1)
    mx = np.where(ok, ux - 0.5, -10.0).astype(np.float32)
    my = np.where(ok, uy - 0.5, -10.0).astype(np.float32)
    chunks = [image] if image.ndim == 2 or image.shape[2] <= 4 else [
        np.ascontiguousarray(image[:, :, c : c + 4]) for c in range(0, image.shape[2], 4)
    ]
    parts = [cv2.remap(c, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
             for c in chunks]
    out = parts[0] if image.ndim == 2 else np.dstack([p.reshape(rows, cols, -1) for p in parts])
    out[~ok] = 0.0
    return out, ok


@pytest.mark.parametrize("strip_pixels", [1, 997, 1 << 18])
@pytest.mark.parametrize("channels", [0, 3, 6])
def test_warp_in_strips_equals_the_whole_image_definition(
    monkeypatch: pytest.MonkeyPatch, strip_pixels: int, channels: int
) -> None:
    """The strip-wise warp (in-cache float64 scratch, maps rounded to float32 once)
    gives bit for bit the result of the plain whole-image formulation, for
    any strip height (one row, a ragged last strip, one strip), with and without
    the residual grid, grey, RGB and more than 4 channels."""
    from monitor.registration import warp as warp_mod

    monkeypatch.setattr(warp_mod, "_STRIP_PIXELS", strip_pixels)
    rng = np.random.default_rng(11)
    for grid in (None, rng.normal(0, 1.5, (5, 7, 2))):
        reg = _toy_registration(grid)
        for image_scale, out_scale in ((1.0, 1.0), (0.5, 0.5), (1.0, 0.3)):
            ch, cw = round(320 * image_scale), round(420 * image_scale)
            shape = (ch, cw) if channels == 0 else (ch, cw, channels)
            img = rng.random(shape, dtype=np.float32)
            got = warp_to_baseline(img, reg, image_scale=image_scale, out_scale=out_scale)
            want, ok = _reference_warp(img, reg, image_scale, out_scale)
            np.testing.assert_array_equal(got.valid, ok)
            assert 0.5 < ok.mean() < 1.0
            np.testing.assert_array_equal(got.image, want)


def test_warp_beyond_the_horizon_is_invalid_and_silent() -> None:
    """Output pixels whose source lies behind the camera (H^-1's denominator <= 0,
    here the right half) are invalid and zero, as in the plain definition, and the
    huge or infinite positions there raise no floating-point warning."""
    import warnings

    h_inv = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-1.0 / 200.5, 0.0, 1.0]])
    reg = dataclasses.replace(_toy_registration(None), homography=np.linalg.inv(h_inv))
    img = np.random.default_rng(2).random((320, 420), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = warp_to_baseline(img, reg)
    want, ok = _reference_warp(img, reg, 1.0, 1.0)
    assert not ok[:, 200:].any() and ok[:, :150].mean() > 0.5
    np.testing.assert_array_equal(got.valid, ok)
    np.testing.assert_array_equal(got.image, want)


def test_warp_reproduces_the_baseline(distorted) -> None:
    base, cur, a, _, reg = distorted
    # photometric change undone per channel so that only geometry is compared
    gains = np.asarray(PHOTO["gains"])
    lin_b = base.astype(np.float32) / 255.0
    lin_c = ((cur.astype(np.float32) / 255.0 / gains) ** (1.0 / PHOTO["gamma"])).astype(np.float32)
    for scale in (1.0, 0.5):
        img = (
            lin_c
            if scale == 1.0
            else cv2.resize(lin_c, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        )
        ref = (
            lin_b
            if scale == 1.0
            else cv2.resize(lin_b, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        )
        warped, valid = warp_to_baseline(img, reg, image_scale=scale, out_scale=scale)
        assert warped.shape == ref.shape
        # the same resampling through the true mapping: the best any registration can do
        rows, cols = ref.shape[:2]
        oy, ox = np.mgrid[0:rows, 0:cols]
        pb = np.stack([(ox.ravel() + 0.5) / scale, (oy.ravel() + 0.5) / scale], axis=1)
        tq = (true_baseline_to_current(pb, a, 4.0) * scale - 0.5).astype(np.float32)
        ideal = cv2.remap(
            img, tq[:, 0].reshape(rows, cols), tq[:, 1].reshape(rows, cols), cv2.INTER_CUBIC
        )
        m = valid & (cv2.erode(valid.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0)
        assert m.mean() > 0.7
        rms_ideal = float(np.sqrt(np.mean((ideal[m] - ref[m]) ** 2)))
        rms = float(np.sqrt(np.mean((warped[m] - ref[m]) ** 2)))
        assert rms < 0.1 * float(ref[m].std())
        assert rms < 1.1 * rms_ideal
        # the homography alone leaves visibly larger differences
        h_only, _ = warp_to_baseline(
            img, dataclasses.replace(reg, residual_grid=None), image_scale=scale, out_scale=scale
        )
        assert float(np.sqrt(np.mean((h_only[m] - ref[m]) ** 2))) > 1.3 * rms


def test_warp_checks_its_inputs(distorted) -> None:
    reg = distorted[4]
    with pytest.raises(MonitorError, match="float32"):
        warp_to_baseline(np.zeros(SHAPE, np.uint8), reg)
    with pytest.raises(MonitorError, match="would be"):
        warp_to_baseline(np.zeros((100, 100), np.float32), reg)
    warped, valid = warp_to_baseline(
        np.ones((240, 320), np.float32), reg, image_scale=0.5, out_shape=(50, 60), out_scale=0.1
    )
    assert warped.shape == (50, 60) and valid.any()
    assert np.all(warped[valid] == pytest.approx(1.0))


# --------------------------------------------------------------------------- small helpers


def test_corner_error() -> None:
    h = np.eye(3)
    assert corner_error(h, h, SHAPE) == 0.0
    shifted = np.array([[1.0, 0, 3.0], [0, 1, 4.0], [0, 0, 1]])
    assert corner_error(shifted, h, SHAPE) == pytest.approx(5.0)
    zoom = np.diag([2.0, 2.0, 1.0])  # current -> baseline doubles: corner (W, H) maps to (W/2, H/2)
    assert corner_error(zoom, h, SHAPE) == pytest.approx(np.hypot(320, 240))


def test_registration_to_dict_is_json_ready(distorted) -> None:
    reg = distorted[4]
    d = json.loads(json.dumps(registration_to_dict(reg)))
    np.testing.assert_allclose(np.array(d["homography"]), reg.homography)
    np.testing.assert_allclose(np.array(d["residual_grid"]), reg.residual_grid)
    assert d["n_matches"] == reg.n_matches and d["n_inliers"] == reg.n_inliers
    assert d["rmse_px"] == reg.rmse_px and d["working_scale"] == reg.working_scale
    assert "corner" in d["convention"]
    none = registration_to_dict(dataclasses.replace(reg, residual_grid=None))
    assert none["residual_grid"] is None


# ------------------------------------------------------------- residual grid size (#16)


def _dense_penalty(ny: int, nx: int) -> np.ndarray:
    """The penalty as the loops of the original implementation built it."""
    rows = []
    for i in range(ny):
        for j in range(1, nx - 1):
            r = np.zeros(ny * nx)
            r[[i * nx + j - 1, i * nx + j, i * nx + j + 1]] = (1.0, -2.0, 1.0)
            rows.append(r)
    for i in range(1, ny - 1):
        for j in range(nx):
            r = np.zeros(ny * nx)
            r[[(i - 1) * nx + j, i * nx + j, (i + 1) * nx + j]] = (1.0, -2.0, 1.0)
            rows.append(r)
    for i in range(ny - 1):
        for j in range(nx - 1):
            r = np.zeros(ny * nx)
            r[[i * nx + j, i * nx + j + 1, (i + 1) * nx + j, (i + 1) * nx + j + 1]] = (
                np.array([1.0, -1.0, -1.0, 1.0]) * np.sqrt(2.0))
            rows.append(r)
    return np.array(rows)


def test_penalty_and_design_are_sparse_and_equal_the_dense_definition() -> None:
    from scipy import sparse

    from monitor.registration.residual import _cubic_weights, _design, _penalty

    for ny, nx in ((3, 3), (5, 4), (7, 6)):
        pen = _penalty(ny, nx)
        assert sparse.issparse(pen)
        np.testing.assert_array_equal(pen.toarray(), _dense_penalty(ny, nx))
    big = _penalty(64, 64)  # ~390 MB dense; a few hundred kB sparse
    assert sparse.issparse(big) and big.nnz < 50_000
    pts = np.random.default_rng(0).uniform(0, [320, 240], size=(50, 2))
    a = _design(pts, (240, 320), 5, 6)
    wy = _cubic_weights(pts[:, 1] * (4 / 240), 5)
    wx = _cubic_weights(pts[:, 0] * (5 / 320), 6)
    dense = (wy[:, :, None] * wx[:, None, :]).reshape(50, 30)
    assert sparse.issparse(a)
    np.testing.assert_allclose(a.toarray(), dense, atol=1e-15)


def test_a_grid_larger_than_the_matches_support_is_reduced_and_said(distorted) -> None:
    from monitor.registration.residual import supported_grid

    base, cur, a, h_true, default = distorted
    reg = register(base, cur, residual_grid=24)  # 24 x 24 nodes need 2304 refined matches
    assert reg.residual_grid is not None, "the residual was dropped silently"
    n = reg.residual_grid.shape[0]
    assert 3 <= n < 24 and reg.requested_grid == 24
    assert any(f"reduced from 24 to {n}" in note for note in reg.notes), reg.notes
    assert registration_to_dict(reg)["notes"] == list(reg.notes)
    full, _ = dense_errors(reg, a, 4.0)
    assert full.max() <= 0.5  # the distortion is still absorbed (dropped: ~2 px)
    assert supported_grid(24, 4 * n * n) == n
    assert default.notes == ()  # the default grid needs no reduction
