"""Tests for monitor.report.figures: heatmap, overlay, thumbnail PNGs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monitor.errors import MonitorError
from monitor.report.figures import (
    closeup_png,
    colour_limit,
    heatmap_png,
    locator_png,
    nice_ceiling,
    overlay_png,
    thumbnail_png,
)
from monitor.results import Outline, Region


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
    # laid out for print: 7 in at 150 dpi, the map less the colour-bar column; aspect kept
    assert 780 <= box[2] - box[0] <= 880
    assert img.shape[1] == 7 * 150
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


def test_heatmap_print_size_and_title_adds_room(tmp_path: Path) -> None:
    big = np.zeros((600, 900), np.float32)
    big[200:400, 100:300] = 1.0
    img = _load(heatmap_png(big, tmp_path / "big.png", width_in=4.0, dpi=100))
    titled = _load(heatmap_png(big, tmp_path / "t.png", width_in=4.0, dpi=100, title="change"))
    assert img.shape[1] == 400  # the print width, whatever the map's size
    assert titled.shape[0] > img.shape[0] and titled.shape[1] == img.shape[1]
    tall = _load(heatmap_png(np.zeros((900, 100), np.float32), tmp_path / "tall.png",
                             max_height_in=3.0, dpi=100))
    assert tall.shape[0] <= 3.0 * 100 + 60  # a tall map is held to the largest print height


def test_heatmap_below_lod_is_neutral_and_the_scale_is_shared(tmp_path: Path) -> None:
    h = _synthetic_change()  # peaks +-0.7
    faint = (0.1 * _bump((60, 90), 25, 30, 6)).astype(np.float32)  # +0.1 peak
    h_img = _load(heatmap_png(h, tmp_path / "h.png", vmax=1.0, lod=0.2))
    f_img = _load(heatmap_png(faint, tmp_path / "f.png", vmax=1.0, lod=0.2))
    box = _image_box(h_img)
    neutral = np.array([242, 242, 242])
    # the faint change is under the level of detection: drawn exactly neutral, not tinted
    fbox = (box[0], box[1], box[2], box[3])
    assert np.all(np.abs(_at(f_img, fbox, faint.shape, 25, 30) - neutral) <= 2)
    assert np.all(np.abs(_at(h_img, box, h.shape, 45, 50) - neutral) <= 2)
    assert _reddish(_at(h_img, box, h.shape, 25, 30))
    # without lod the same faint map is tinted (so the neutral band is the lod's doing)
    plain = _load(heatmap_png(faint, tmp_path / "p.png", vmax=1.0))
    px = _at(plain, _image_box(h_img), faint.shape, 25, 30)
    assert px[0] > px[2] + 5


def test_colour_limit_is_a_nice_number_above_all_peaks() -> None:
    assert colour_limit([0.3, -0.52], 0.05) == 0.75
    assert colour_limit([0.01], 0.2) == 0.5  # never below twice the level of detection
    assert colour_limit([1.3, -2.6], None) == 5.0
    assert nice_ceiling(0.4) == 0.5


def test_closeup_and_locator(tmp_path: Path) -> None:
    before = np.full((40, 40, 3), 120, np.uint8)
    after = before.copy()
    after[10:30, 10:30] = 200
    change = np.zeros((40, 40), np.float32)
    change[10:30, 10:30] = 0.5
    out = closeup_png(before, after, change, tmp_path / "c.png", limit=1.0, lod=0.1,
                      units="mm", label="1  raised area", px_per_mm=4.0,
                      box=(10, 10, 30, 30), width_in=3.45, dpi=100)
    img = _load(out)
    assert img.shape[1] == 345
    third = img.shape[1] // 3
    # the change panel (right third) shows the red of a raised area
    assert sum(_reddish(px) for px in img[:, 2 * third:].reshape(-1, 3)) > 100
    assert not any(_reddish(px) for px in img[:, : third - 5].reshape(-1, 3)[::7])
    with pytest.raises(MonitorError, match="differ"):
        closeup_png(before, after[:20], change, tmp_path / "x.png", limit=1.0, lod=None,
                    units="mm", label="x")
    loc = _load(locator_png(Outline((0.0, 0.0, 200.0, 100.0), "found"), REGIONS,
                            tmp_path / "l.png", dpi=100))
    assert loc.shape[1] > loc.shape[0]  # landscape work, landscape diagram
    assert sum(_reddish(px) for px in loc.reshape(-1, 3)) > 5


def test_print_figures_keep_text_at_least_7_pt(tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    seen: list[float] = []
    original = Figure.savefig

    def spy(self: Figure, *args: object, **kwargs: object) -> None:
        for t in self.findobj(lambda a: hasattr(a, "get_fontsize") and hasattr(a, "get_text")):
            if t.get_text():
                seen.append(float(t.get_fontsize()))
        original(self, *args, **kwargs)

    import matplotlib.figure

    matplotlib.figure.Figure.savefig = spy  # type: ignore[method-assign]
    try:
        heatmap_png(_synthetic_change(), tmp_path / "h.png", lod=0.1, px_per_mm=2.0,
                    regions=REGIONS, title="t")
        overlay_png(_baseline(200, 300), REGIONS, tmp_path / "o.jpg", width_in=7.0,
                    px_per_mm=2.0)
    finally:
        matplotlib.figure.Figure.savefig = original  # type: ignore[method-assign]
    # figures are printed at their own size (7 in wide), so points are print points
    assert seen and min(seen) >= 7.0


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


def test_png_figures_are_written_at_the_fast_level_with_the_same_pixels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Figures are PNG at zlib level 1 (the overlay of a 24 MP comparison encoded
    ~5x faster than at Pillow's default 6): the same RGBA pixels, a larger file."""
    from monitor.report import figures

    assert figures.PNG_COMPRESS_LEVEL == 1
    yy, xx = np.mgrid[0:300, 0:400]
    rgb = np.dstack([(xx * 0.6) % 256, (yy * 0.8) % 256, (xx + yy) % 256]).astype(np.uint8)
    pixels, sizes = {}, {}
    for level in (1, 6):
        monkeypatch.setattr(figures, "PNG_COMPRESS_LEVEL", level)
        path = overlay_png(rgb, REGIONS, tmp_path / f"o{level}.png")
        with Image.open(path) as im:
            pixels[level] = np.asarray(im)
        sizes[level] = path.stat().st_size
    np.testing.assert_array_equal(pixels[1], pixels[6])
    assert sizes[1] > sizes[6]
