"""Tiled inference: exact blending, no seams for relative models, any size, determinism."""

import numpy as np
import pytest
import torch

from monitor.depth.tiling import feather_1d, tile_grid, tiled_predict
from monitor.errors import MonitorError

H, W = 300, 430
TILE, OVERLAP = 128, 32


def _smooth_image(h=H, w=W, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    f = 0.004 * x + 0.003 * y
    for _ in range(6):
        cx, cy, s, a = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(15, 40), rng.normal()
        f += a * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s))
    f += 0.3 * np.sin(x / 17.0) * np.cos(y / 23.0)
    return np.stack([f, np.zeros_like(f), np.zeros_like(f)], axis=-1).astype(np.float32)


class RelativeModel:
    """A 'depth network' that is right up to a random scale and shift per tile."""

    def __init__(self, seed=1, shift=5.0):
        self.rng = np.random.default_rng(seed)
        self.shift = shift
        self.calls = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        b = x.shape[0]
        scale = torch.tensor(self.rng.uniform(0.5, 2.0, b), dtype=x.dtype).view(b, 1, 1)
        shift = torch.tensor(self.rng.normal(0, self.shift, b), dtype=x.dtype).view(b, 1, 1)
        return x[:, 0] * scale + shift


def _seam_ratio(out, tiles):
    """Mean |d/dx| over the columns where tiles meet / the same elsewhere (and likewise rows)."""
    gx = np.abs(np.diff(out, axis=1))
    gy = np.abs(np.diff(out, axis=0))
    xcols = np.zeros(gx.shape[1], bool)
    yrows = np.zeros(gy.shape[0], bool)
    for t in tiles:
        for edge in (t.x0, t.x0 + t.w - 1):
            if 0 < edge < W - 1:
                xcols[max(edge - 2, 0) : edge + 2] = True
        for edge in (t.y0, t.y0 + t.h - 1):
            if 0 < edge < H - 1:
                yrows[max(edge - 2, 0) : edge + 2] = True
    # overlaps: the whole band between the two edges is where blending happens
    bands_x = np.zeros(gx.shape[1], bool)
    bands_y = np.zeros(gy.shape[0], bool)
    for t in tiles:
        if t.x0 > 0:
            bands_x[t.x0 : t.x0 + OVERLAP] = True
        if t.y0 > 0:
            bands_y[t.y0 : t.y0 + OVERLAP] = True
    near_x, near_y = xcols | bands_x, yrows | bands_y
    ref = _smooth_image()[..., 0]
    # normalise by the true gradient there, so content does not decide the ratio
    rx = np.abs(np.diff(ref, axis=1))
    ry = np.abs(np.diff(ref, axis=0))
    seam = (gx[:, near_x].mean() / rx[:, near_x].mean() + gy[near_y].mean() / ry[near_y].mean())
    inside = (gx[:, ~near_x].mean() / rx[:, ~near_x].mean()
              + gy[~near_y].mean() / ry[~near_y].mean())
    return seam / inside


def test_tile_grid_covers_the_image_with_the_requested_overlap():
    tiles = tile_grid(H, W, TILE, OVERLAP)
    cover = np.zeros((H, W), int)
    for t in tiles:
        cover[t.y0 : t.y0 + t.h, t.x0 : t.x0 + t.w] += 1
        assert (t.h, t.w) == (TILE, TILE)
    assert cover.min() >= 1
    xs = sorted({t.x0 for t in tiles})
    assert all(b - a <= TILE - OVERLAP for a, b in zip(xs, xs[1:], strict=False))
    assert tile_grid(50, 60, TILE, OVERLAP) == [tile_grid(50, 60, TILE, OVERLAP)[0]]
    with pytest.raises(MonitorError):
        tile_grid(H, W, 64, 40)


def test_feather_is_flat_on_image_borders_and_ramps_on_shared_sides():
    w = feather_1d(64, 16, taper_start=False, taper_end=True)
    assert w[0] == 1.0 and w[30] == 1.0
    assert w[-1] < 0.01 and np.all(np.diff(w[-16:]) < 0)


def test_pointwise_model_is_reproduced_exactly():
    img = _smooth_image()
    out = tiled_predict(img, lambda x: 2.0 * x[:, 0] + 1.0, tile=TILE, overlap=OVERLAP,
                        batch_size=3)
    np.testing.assert_allclose(out, 2.0 * img[..., 0] + 1.0, atol=1e-4)


def test_relative_model_has_seams_without_harmonisation_and_none_with_it():
    img = _smooth_image()
    tiles = tile_grid(H, W, TILE, OVERLAP)
    naive = tiled_predict(img, RelativeModel(), tile=TILE, overlap=OVERLAP, batch_size=4)
    fixed = tiled_predict(img, RelativeModel(), tile=TILE, overlap=OVERLAP, batch_size=4,
                          harmonise="affine")
    assert _seam_ratio(naive, tiles) > 2.0  # the failure the harmonisation exists for
    assert _seam_ratio(fixed, tiles) < 1.15
    # and no chessboard of levels: the result is one affine copy of the truth
    assert np.corrcoef(fixed.ravel(), img[..., 0].ravel())[0, 1] > 0.9999
    assert np.corrcoef(naive.ravel(), img[..., 0].ravel())[0, 1] < 0.99


def test_shift_only_model_and_anchor_fix_the_frame():
    img = _smooth_image()

    def shifted(x, rng=np.random.default_rng(5)):
        return x[:, 0] + torch.tensor(rng.normal(0, 3, x.shape[0]), dtype=x.dtype).view(-1, 1, 1)

    anchor = img[::8, ::8, 0] * 1.0 + 7.0  # a low-resolution run of the same model
    out = tiled_predict(img, shifted, tile=TILE, overlap=OVERLAP, harmonise="shift",
                        anchor=np.ascontiguousarray(anchor))
    np.testing.assert_allclose(out - img[..., 0], 7.0, atol=0.05)


def test_spilled_tiles_give_the_same_result_and_cpu_runs_are_deterministic():
    img = _smooth_image()
    a = tiled_predict(img, RelativeModel(seed=3), tile=TILE, overlap=OVERLAP,
                      harmonise="affine")
    b = tiled_predict(img, RelativeModel(seed=3), tile=TILE, overlap=OVERLAP,
                      harmonise="affine", spill_bytes=0)
    c = tiled_predict(img, RelativeModel(seed=3), tile=TILE, overlap=OVERLAP,
                      harmonise="affine")
    np.testing.assert_array_equal(a, c)
    np.testing.assert_allclose(a, b, atol=2e-2 * np.abs(a).max())


def test_odd_sizes_padding_and_uint8_input():
    img = (np.random.default_rng(0).random((77, 141, 3)) * 255).astype(np.uint8)
    seen = []

    def model(x):
        seen.append(tuple(x.shape))
        return x[:, 1] / 255.0

    out = tiled_predict(img, model, tile=64, overlap=16, multiple=16)
    assert out.shape == (77, 141)
    assert all(s[-1] % 16 == 0 and s[-2] % 16 == 0 for s in seen)
    np.testing.assert_allclose(out, img[..., 1] / 255.0, atol=1e-5)


def test_bad_inputs_raise_one_line_errors():
    with pytest.raises(MonitorError):
        tiled_predict(np.zeros((10, 10)), lambda x: x[:, 0])
    with pytest.raises(MonitorError):
        tiled_predict(np.zeros((10, 10, 3)), lambda x: x[:, 0], harmonise="median")  # type: ignore[arg-type]
    with pytest.raises(MonitorError):
        tiled_predict(np.zeros((40, 40, 3)), lambda x: x, tile=16, overlap=4)


def test_large_image_memory_stays_near_the_output_size():
    """20 MP uint8 in, float32 out: no full-size float copy of the input is ever made."""
    import tracemalloc

    h, w = 4000, 5000
    img = np.empty((h, w, 3), np.uint8)
    img[:] = (np.arange(w, dtype=np.uint16) % 251).astype(np.uint8)[None, :, None]
    tracemalloc.start()
    try:
        out = tiled_predict(img, lambda x: x[:, 0] / 255.0, tile=1024, overlap=64, batch_size=2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.shape == (h, w)
    np.testing.assert_allclose(out[::97, ::89], img[::97, ::89, 0] / 255.0, atol=1e-5)
    output_bytes = h * w * 4
    assert peak < output_bytes + 120e6  # output + a few tiles, not 12 bytes/px of input copy
