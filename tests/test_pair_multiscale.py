"""``--method pair --scale auto``: the pair net on every level, in tiles without seams."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from monitor.change.pair import load_pair_model
from monitor.change.pair_multiscale import LevelPair, level_count, next_level, pair_level
from monitor.config import Settings
from monitor.io import to_linear
from monitor.pipeline import compare
from monitor.results import Light
from monitor.synth import TRAIN_SEEDS, render_pair, warp_current_to_baseline, write_pair
from monitor.synth.small import small_damage_spec


@pytest.fixture(scope="module")
def net():
    return load_pair_model()


@pytest.fixture(scope="module")
def level_image() -> tuple[LevelPair, Light]:
    """An 800 x 512 pair of procedural brushwork with small deformations (train seeds)."""
    cs = small_damage_spec(TRAIN_SEEDS[0] + 31, size=(800, 512), canvas_mm=80.0,
                           discoloration=False)
    pair = render_pair(cs.spec)
    c = to_linear(pair.current)
    w = warp_current_to_baseline(c, pair.homography, pair.lens_k1, cs.spec.size)
    valid = np.isfinite(w).all(axis=2)
    level = LevelPair(to_linear(pair.baseline), np.nan_to_num(w).astype(np.float32), valid)
    return level, pair.spec.light_baseline


def _seam_ratio(tiled: np.ndarray, whole: np.ndarray, core: int) -> float:
    """How much steeper ``tiled`` is across the cores' edges than elsewhere.

    Mean ``|d/dx|`` (and ``|d/dy|``) of the tiled output on the pixel pairs that
    straddle a core edge over the same of the one-tile output there, divided by
    that ratio elsewhere (as tests/test_tiling.py does for depth nets): 1 when
    the tiles do not show.
    """
    gx, gy = np.abs(np.diff(tiled, axis=1)), np.abs(np.diff(tiled, axis=0))
    rx, ry = np.abs(np.diff(whole, axis=1)), np.abs(np.diff(whole, axis=0))
    cols = np.zeros(gx.shape[1], bool)
    cols[np.arange(core, tiled.shape[1], core) - 1] = True
    rows = np.zeros(gy.shape[0], bool)
    rows[np.arange(core, tiled.shape[0], core) - 1] = True
    seam = gx[:, cols].mean() / rx[:, cols].mean() + gy[rows].mean() / ry[rows].mean()
    inside = gx[:, ~cols].mean() / rx[:, ~cols].mean() + gy[~rows].mean() / ry[~rows].mean()
    return float(seam / inside)


def test_tiles_leave_no_seams(net, level_image) -> None:
    level, light = level_image
    whole, ok, _ = pair_level(net, level, light, core=1024)  # one tile
    tiled, ok_t, _ = pair_level(net, level, light, core=192, halo=160, batch=3)
    assert np.array_equal(ok, ok_t)
    assert _seam_ratio(tiled, whole, 192) < 1.2  # measured 1.06
    # and the tiles agree with the whole level, not just smoothly among themselves
    # (measured 0.14 of the mean |height|: the tiles' own chroma and quiet-mask statistics)
    assert float(np.abs(tiled - whole)[ok].mean()) < 0.25 * float(np.abs(whole[ok]).mean())
    # the check is sharp: with a halo shorter than the integration memory the edges show
    short, _, _ = pair_level(net, level, light, core=192, halo=32, batch=3)
    assert _seam_ratio(short, whole, 192) > 1.5  # measured 1.82


def test_levels_halve_and_stop_near_the_working_grid(level_image) -> None:
    level, _ = level_image
    up = next_level(level)
    assert up.shape == (256, 400)
    np.testing.assert_allclose(up.baseline[0, 0], level.baseline[:2, :2].mean(axis=(0, 1)),
                               rtol=1e-5)
    h, w = level.shape
    all_four = level.valid.reshape(h // 2, 2, w // 2, 2).all(axis=(1, 3))
    assert np.array_equal(up.valid, all_four)
    assert level_count((2000, 3000), 256, None) == 4
    assert level_count((720, 960), 256, None) == 2
    assert level_count((4000, 6000), 256, 2) == 2


@pytest.fixture(scope="module")
def blister_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, float]:
    """A 1600 x 1000 scan of a 16 cm canvas with three 1.6-2 mm deformations (train seed)."""
    cs = small_damage_spec(TRAIN_SEEDS[0] + 17, size=(1600, 1000), canvas_mm=160.0,
                           discoloration=False)
    spec = dataclasses.replace(cs.spec, kinds=("bulge", "recession", "bulge"),
                               size_range=(0.005, 0.006), slope_range=(0.1, 0.14))
    d = tmp_path_factory.mktemp("blisters")
    write_pair(render_pair(spec), d)
    return d, json.loads((d / "truth.json").read_text()), cs.px_per_mm


def _hits(truth: dict, regions) -> list[list]:
    out = []
    for t in truth["regions"]:
        x0, y0, x1, y1 = t["bbox"]
        g = max(3.0, 0.25 * (x1 - x0))
        out.append([r for r in regions
                    if x0 - g <= r.centroid[0] <= x1 + g and y0 - g <= r.centroid[1] <= y1 + g])
    return out


def test_pair_at_every_scale_finds_blisters_the_pair_grid_misses(blister_files) -> None:
    d, truth, px_per_mm = blister_files
    light = Light(truth["light_baseline"]["azimuth_deg"], truth["light_baseline"]["elevation_deg"])
    args = (d / "baseline.png", d / "current.png")
    grid = compare(*args, Settings(method="pair", scale="grid"), light=light, px_per_mm=px_per_mm)
    auto = compare(*args, Settings(method="pair", scale="auto"), light=light, px_per_mm=px_per_mm)
    assert sum(bool(h) for h in _hits(truth, grid.regions)) == 0
    hits = _hits(truth, auto.regions)
    assert all(len(h) == 1 for h in hits), hits
    for t, h in zip(truth["regions"], hits, strict=True):
        assert h[0].polarity == t["polarity"] and h[0].level == 0
        assert h[0].scale_mm == pytest.approx(h[0].scale_px / px_per_mm)
    assert len(auto.regions) <= len(truth["regions"]) + 1
    assert auto.params["scale"] == "auto" and auto.params["method"] == "pair"
    assert auto.change.method == "pair" and "pair-multiscale" in auto.change.model_id
    assert auto.change.weights_sha256 == grid.change.weights_sha256  # which weights read it
    assert auto.change.weights_sha256 is not None and len(auto.change.weights_sha256) == 64
    assert any(t.name.startswith("pms_level") for t in auto.timings)


def test_scale_auto_takes_the_pair_route_and_the_grid_for_depth() -> None:
    from monitor.config import scale_route

    assert scale_route(Settings(method="pair")) == "auto"  # the default scale
    assert scale_route(Settings(method="pair", scale="grid")) == "grid"
    assert scale_route(Settings(method="depth")) == "grid"  # no multi-scale route
