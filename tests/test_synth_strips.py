"""The strip renderer (monitor.synth.strips) against the whole-image renderer."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from monitor import synth
from monitor.errors import MonitorError
from monitor.synth.fields import _smooth_noise
from monitor.synth.small import small_damage_spec
from monitor.synth.strips import _PngWriter, _SmoothField, render_pair_files

#: The strip render may differ from the whole render by one code value, on at
#: most this fraction of the samples (float64 smooth fields instead of OpenCV's
#: float32 resize move the float32 weave phase by an ulp here and there).
MAX_DIFFERING = 2e-3


def _compare(spec: synth.PairSpec, tmp: Path, **kw: object) -> dict[str, tuple[int, float]]:
    """Max |difference| and fraction of differing samples of the two renders' images."""
    whole = synth.write_pair(synth.render_pair(spec), tmp / "whole")
    strips = render_pair_files(spec, tmp / "strips", **kw)  # type: ignore[arg-type]
    out = {}
    for key in ("baseline", "current"):
        a = cv2.imread(str(whole[key]), cv2.IMREAD_UNCHANGED).astype(np.int64)
        b = cv2.imread(str(strips[key]), cv2.IMREAD_UNCHANGED).astype(np.int64)
        assert a.shape == b.shape
        d = np.abs(a - b)
        out[key] = (int(d.max()), float((d > 0).mean()))
    for key in ("truth", "height_change"):
        assert whole[key].read_bytes() == strips[key].read_bytes(), key
    la = cv2.imread(str(whole["labels"]), cv2.IMREAD_UNCHANGED)
    lb = cv2.imread(str(strips["labels"]), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(la, lb)
    return out


def test_strip_render_matches_the_whole_render(tmp_path: Path) -> None:
    # many seams: strips of 40 rows, current tiles of 96 columns; 8 fine deformations,
    # a discoloration, rotation, the canvas weave and noise
    spec = small_damage_spec(1234, size=(480, 320), canvas_mm=48.0).spec
    diff = _compare(spec, tmp_path, strip_rows=40, tile_cols=96)
    for key, (worst, frac) in diff.items():
        assert worst <= 1 and frac <= MAX_DIFFERING, (key, worst, frac)


def test_strip_render_matches_with_lamp_gloss_lens_yellowing_16_bit(tmp_path: Path) -> None:
    specs = [synth.sample_spec(s, size=(256, 192), realism=True) for s in range(40)]
    spec = next(s for s in specs if s.point_lamp and s.gloss > 0 and s.jpeg_quality is None
                and s.lens_k1)
    spec = dataclasses.replace(spec, yellowing=0.3, bit_depth=16, vignetting=(0.1, 0.2))
    diff = _compare(spec, tmp_path, strip_rows=30, tile_cols=70)
    for key, (worst, frac) in diff.items():
        # 16 bit: one code value is 1/65535
        assert worst <= 1 and frac <= MAX_DIFFERING, (key, worst, frac)


def test_strips_without_halos_show_seams(tmp_path: Path) -> None:
    # the tolerance above is tight enough to see a missing halo
    spec = small_damage_spec(1234, size=(480, 320), canvas_mm=48.0).spec
    diff = _compare(spec, tmp_path, strip_rows=40, tile_cols=96, _halo=False)
    assert all(worst > 5 and frac > 10 * MAX_DIFFERING for worst, frac in diff.values()), diff


def test_smooth_field_windows_are_the_whole_field() -> None:
    shape = (300, 410)
    whole = _smooth_noise(np.random.default_rng(5), shape, 6.0)
    lazy = _SmoothField(np.random.default_rng(5), shape, 6.0)
    full = lazy.window(slice(0, 300), slice(0, 410))
    assert float(np.abs(full - whole).max()) < 1e-4
    assert np.array_equal(lazy.window(slice(100, 180), slice(33, 250)), full[100:180, 33:250])
    assert abs(float(full.mean())) < 1e-5 and abs(float(full.std()) - 1.0) < 1e-5


def test_png_writer_round_trip_and_incomplete_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for depth, dtype in ((8, np.uint8), (16, np.uint16)):
        img = rng.integers(0, np.iinfo(dtype).max, (37, 23, 3), dtype=dtype)
        path = tmp_path / f"x{depth}.png"
        w = _PngWriter(path, 23, 37, depth)
        for y0 in range(0, 37, 10):
            w.write(img[y0 : y0 + 10])
        w.close()
        back = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
        assert back.dtype == dtype and np.array_equal(back, img)
    w = _PngWriter(tmp_path / "short.png", 23, 37, 8)
    w.write(np.zeros((10, 23, 3), np.uint8))
    with pytest.raises(MonitorError, match="10 of 37 rows"):
        w.close()
    w.abort()
    assert not (tmp_path / "short.png").exists()


def test_strip_renderer_refuses_jpeg_and_whole_renderer_points_to_it(tmp_path: Path) -> None:
    spec = dataclasses.replace(synth.demo_spec(size=(128, 96)), jpeg_quality=90)
    with pytest.raises(MonitorError, match="writes PNG"):
        render_pair_files(spec, tmp_path / "j")
    assert not (tmp_path / "j").exists() or not any((tmp_path / "j").iterdir())
    big = small_damage_spec(1, size=(12000, 8000)).spec  # a spec of that size can be drawn
    with pytest.raises(MonitorError, match="render_pair_files"):
        synth.render_pair(big)
    with pytest.raises(MonitorError, match="outside 64..16000"):
        render_pair_files(dataclasses.replace(big, size=(17000, 8000)), tmp_path / "k")
