"""Tests for monitor.report.figures: heatmap, overlay, thumbnail PNGs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monitor.errors import MonitorError
from monitor.report.figures import heatmap_png, overlay_png, thumbnail_png
from monitor.results import Region


def _load(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB")).astype(int)


def _bump(shape: tuple[int, int], col: float, row: float, sigma: float) -> np.ndarray:
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    return np.exp(-((xx - col) ** 2 + (yy - row) ** 2) / (2 * sigma**2))


def _synthetic_change() -> np.ndarray:
    """60 x 90 map: bulge left, recession right, NaN rim and a NaN hole."""
    h = 0.7 * _bump((60, 90), 25, 30, 6) - 0.7 * _bump((60, 90), 65, 30, 6)
    h[:3], h[-3:], h[:, :3], h[:, -3:] = np.nan, np.nan, np.nan, np.nan
    h[8:18, 40:50] = np.nan
    return h.astype(np.float32)


def _image_box(img: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box (x0, y0, x1, y1) of the map, found by its NaN-grey rim.

    Rim columns (rows) are grey over most of the map's height (width);
    anti-aliased text never is.
    """
    grey = np.all(np.abs(img - 128) <= 2, axis=2)
    cols = np.nonzero(grey.sum(axis=0) > 0.5 * grey.sum(axis=0).max())[0]
    rows = np.nonzero(grey.sum(axis=1) > 0.5 * grey.sum(axis=1).max())[0]
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


def _at(img: np.ndarray, box: tuple[int, int, int, int], shape: tuple[int, int],
        col: float, row: float) -> np.ndarray:
    """Figure pixel showing map pixel [row, col]."""
    x0, y0, x1, y1 = box
    x = x0 + (col + 0.5) * (x1 - x0) / shape[1]
    y = y0 + (row + 0.5) * (y1 - y0) / shape[0]
    return img[int(y), int(x)]


def _reddish(px: np.ndarray) -> bool:
    return bool(px[0] > px[1] + 60 and px[0] > px[2] + 60)


def _bluish(px: np.ndarray) -> bool:
    return bool(px[2] > px[0] + 60 and px[2] > px[1] + 30)


# --------------------------------------------------------------------------- heatmap


def test_heatmap_colours_where_expected(tmp_path: Path) -> None:
    h = _synthetic_change()
    out = heatmap_png(h, tmp_path / "heat.png", vmax=1.0)
    assert out == tmp_path / "heat.png"
    img = _load(out)
    box = _image_box(img)
    # small maps are magnified: long side about 480 px, aspect kept
    assert 470 <= box[2] - box[0] <= 490
    assert abs((box[3] - box[1]) / (box[2] - box[0]) - 60 / 90) < 0.02
    assert _reddish(_at(img, box, h.shape, 25, 30))  # bulge: red
    assert _bluish(_at(img, box, h.shape, 65, 30))  # recession: blue
    assert np.all(_at(img, box, h.shape, 45, 50) > 235)  # no change: near white
    assert np.all(np.abs(_at(img, box, h.shape, 45, 12) - 128) <= 2)  # NaN hole: grey


def test_heatmap_robust_limits_ignore_an_outlier(tmp_path: Path) -> None:
    h = _synthetic_change()
    h[40, 80] = 500.0  # one wild pixel must not wash the map out
    img = _load(heatmap_png(h, tmp_path / "heat.png"))
    box = _image_box(img)
    assert _reddish(_at(img, box, h.shape, 25, 30))
    assert _bluish(_at(img, box, h.shape, 65, 30))


def test_heatmap_downsampled_when_large_and_title_adds_room(tmp_path: Path) -> None:
    big = np.zeros((600, 900), np.float32)
    big[200:400, 100:300] = 1.0
    img = _load(heatmap_png(big, tmp_path / "big.png", max_px=300))
    titled = _load(heatmap_png(big, tmp_path / "t.png", max_px=300, title="change"))
    assert img.shape[1] <= 300 + 200 and img.shape[0] <= 200 + 60
    assert img.shape[1] >= 300
    assert titled.shape[0] > img.shape[0] and titled.shape[1] == img.shape[1]


def test_heatmap_scale_bar_length(tmp_path: Path) -> None:
    h = _synthetic_change()
    img = _load(heatmap_png(h, tmp_path / "bar.png", vmax=1.0, px_per_mm=2.0))
    plain = _load(heatmap_png(h, tmp_path / "plain.png", vmax=1.0))
    box = _image_box(plain)
    x0, y0, x1, y1 = box
    # 90 px / 2 px per mm = 45 mm wide; a fifth is 9 mm -> a 5 mm bar = 10 map px
    expected = 10 * (x1 - x0) / 90
    lower_left = img[y0 + (y1 - y0) // 2 : y1, x0 : x0 + (x1 - x0) // 2]
    black = np.all(lower_left < 40, axis=2)
    runs = [_longest_run(row) for row in black]
    assert abs(max(runs) - expected) <= 3
    assert not np.any(np.all(plain[y0 + (y1 - y0) // 2 : y1, x0 : x0 + (x1 - x0) // 2] < 40,
                             axis=2))


def _longest_run(mask: np.ndarray) -> int:
    best = cur = 0
    for v in mask:
        cur = cur + 1 if v else 0
        best = max(best, cur)
    return best


def test_heatmap_checks_input(tmp_path: Path) -> None:
    with pytest.raises(MonitorError, match="H x W"):
        heatmap_png(np.zeros((4, 4, 3)), tmp_path / "x.png")
    with pytest.raises(MonitorError, match="does not exist"):
        heatmap_png(np.zeros((40, 40)), tmp_path / "no" / "x.png")
    with pytest.raises(MonitorError, match="vmax"):
        heatmap_png(np.zeros((40, 40)), tmp_path / "x.png", vmax=0.0)
    # all-NaN and all-zero maps still render
    heatmap_png(np.full((40, 40), np.nan), tmp_path / "nan.png")
    heatmap_png(np.zeros((40, 40)), tmp_path / "zero.png")
    assert _load(tmp_path / "nan.png").shape[0] > 40


# --------------------------------------------------------------------------- overlay


def _baseline(h: int, w: int) -> np.ndarray:
    return np.full((h, w, 3), (150, 140, 120), dtype=np.uint8)


REGIONS = (
    Region(1, "bulge", (80.0, 80.0), (40.0, 50.0, 120.0, 110.0), 4800.0, 1.0, 0.5, 9.0),
    Region(2, "recession", (220.0, 135.0), (180.0, 100.0, 260.0, 170.0), 5600.0, -1.0, -0.4, 7.0),
)


def _near(img: np.ndarray, x: float, y: float, test: object, radius: int = 2) -> bool:
    xi, yi = round(x), round(y)
    patch = img[yi - radius : yi + radius + 1, xi - radius : xi + radius + 1].reshape(-1, 3)
    return any(test(px) for px in patch)  # type: ignore[operator]


@pytest.mark.parametrize("reduced", [False, True])
def test_overlay_outlines_in_place(tmp_path: Path, reduced: bool) -> None:
    full = _baseline(200, 300)
    rgb, scale = (full[::2, ::2], 0.5) if reduced else (full, None)
    img = _load(overlay_png(rgb, REGIONS, tmp_path / "o.png", scale=scale))
    assert img.shape == (320 + 26, 480, 3)  # magnified to a 480 px long side, legend strip
    k = 480 / 300  # figure px per full-resolution baseline px
    # left and bottom edges of region 1 (bulge): red; of region 2: blue
    assert _near(img, 40 * k, 80 * k, _reddish)
    assert _near(img, 80 * k, 110 * k, _reddish)
    assert _near(img, 180 * k, 135 * k, _bluish)
    assert _near(img, 220 * k, 170 * k, _bluish)
    # box interiors keep the baseline colour
    np.testing.assert_allclose(img[round(80 * k), round(80 * k)], (150, 140, 120), atol=3)
    np.testing.assert_allclose(img[round(135 * k), round(220 * k)], (150, 140, 120), atol=3)
    # the id label sits just above each box: coloured text pixels there
    above = img[round(50 * k) - 22 : round(50 * k) - 4, round(40 * k) : round(40 * k) + 20]
    assert sum(_reddish(px) for px in above.reshape(-1, 3)) > 10


def test_overlay_uint16_large_downscaled(tmp_path: Path) -> None:
    big = (_baseline(900, 1200).astype(np.uint16) * 257)
    img = _load(overlay_png(big, REGIONS, tmp_path / "o.png", max_px=600))
    assert img.shape == (450 + 26, 600, 3)
    k = 600 / 1200
    assert _near(img, 40 * k, 80 * k, _reddish)
    np.testing.assert_allclose(img[300, 500], (150, 140, 120), atol=3)


def test_overlay_without_regions_and_bad_input(tmp_path: Path) -> None:
    img = _load(overlay_png(_baseline(200, 300), [], tmp_path / "none.png"))
    assert img.shape == (320 + 26, 480, 3)
    assert np.all(img[:320] == (150, 140, 120))  # nothing drawn over the image
    with pytest.raises(MonitorError):
        overlay_png(np.zeros((20, 20), np.uint8), REGIONS, tmp_path / "x.png")
    with pytest.raises(MonitorError):
        overlay_png(_baseline(50, 50).astype(np.float32), REGIONS, tmp_path / "x.png")
    with pytest.raises(MonitorError):
        overlay_png(None, REGIONS, tmp_path / "x.png")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- thumbnail


def test_thumbnail(tmp_path: Path) -> None:
    rgb = np.zeros((300, 500, 3), np.uint16)
    rgb[..., 0] = 65535
    rgb[:, 250:, 2] = 65535
    img = _load(thumbnail_png(rgb, tmp_path / "t.png", max_px=100))
    assert img.shape == (60, 100, 3)
    np.testing.assert_array_equal(img[30, 10], (255, 0, 0))
    np.testing.assert_array_equal(img[30, 90], (255, 0, 255))
    small = _load(thumbnail_png(rgb[:50, :80].astype(np.uint8), tmp_path / "s.png"))
    assert small.shape == (50, 80, 3)  # never enlarged


def test_no_pyplot_no_backend_switch(tmp_path: Path) -> None:
    out = tmp_path / "h.png"
    code = (
        "import sys, pathlib, numpy as np, matplotlib\n"
        "def refuse(*args, **kwargs):\n"
        "    raise AssertionError('matplotlib.use was called')\n"
        "matplotlib.use = refuse\n"
        "from monitor.report.figures import heatmap_png\n"
        f"heatmap_png(np.zeros((40, 40)), pathlib.Path({str(out)!r}))\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert out.is_file()
