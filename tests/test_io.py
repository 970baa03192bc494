"""Tests for monitor.io: reading, limits, EXIF, sRGB curves, resizing, writing."""

from __future__ import annotations

import io as pyio
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageFile, ImageOps

from monitor import io as mio
from monitor.errors import MonitorError

RNG = np.random.default_rng(1234)


def _rgb8(h: int = 48, w: int = 64) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _rgb16(h: int = 48, w: int = 64) -> np.ndarray:
    return RNG.integers(0, 65536, (h, w, 3), dtype=np.uint16)


def _smooth8(h: int = 64, w: int = 96) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(xx / 15)
    g = 128 + 100 * np.cos(yy / 11)
    b = 60 + 0.5 * xx + 0.5 * yy
    return np.stack([r, g, b], -1).clip(0, 255).astype(np.uint8)


def _jpeg_bytes(arr: np.ndarray, **kw: object) -> bytes:
    buf = pyio.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=95, **kw)
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _patch_tiff_size(path: Path, width: int, height: int) -> None:
    """Rewrite ImageWidth/ImageLength of the first IFD of a classic little-endian TIFF."""
    data = bytearray(path.read_bytes())
    assert data[:4] == b"II*\x00"
    ifd = struct.unpack_from("<I", data, 4)[0]
    (count,) = struct.unpack_from("<H", data, ifd)
    for i in range(count):
        entry = ifd + 2 + 12 * i
        tag, typ = struct.unpack_from("<HH", data, entry)
        if tag in (256, 257):
            value = width if tag == 256 else height
            if typ == 3:
                struct.pack_into("<H", data, entry + 8, min(value, 65535))
            else:
                struct.pack_into("<I", data, entry + 8, value)
    path.write_bytes(bytes(data))


# --------------------------------------------------------------------------- formats


def test_png8_rgb_exact(tmp_path: Path) -> None:
    arr = _rgb8()
    Image.fromarray(arr).save(tmp_path / "a.png")
    img = mio.read_image(tmp_path / "a.png")
    assert img.pixels.dtype == np.uint8 and img.bit_depth == 8
    assert img.source_channels == 3 and img.orientation_applied == 1
    np.testing.assert_array_equal(img.pixels, arr)
    assert img.pixels.flags.c_contiguous and img.pixels.flags.writeable
    assert (img.height, img.width) == arr.shape[:2]


def test_png16_rgb_keeps_16_bits_and_channel_order(tmp_path: Path) -> None:
    arr = _rgb16()
    arr[0, 0] = (65535, 1000, 7)  # red-ish corner: catches a BGR/RGB swap
    cv2.imwrite(str(tmp_path / "a16.png"), cv2.cvtColor(arr, cv2.COLOR_RGB2BGR))
    img = mio.read_image(tmp_path / "a16.png")
    assert img.pixels.dtype == np.uint16 and img.bit_depth == 16
    np.testing.assert_array_equal(img.pixels, arr)


def test_png16_rgba_drops_alpha(tmp_path: Path) -> None:
    arr = _rgb16()
    bgra = np.dstack([cv2.cvtColor(arr, cv2.COLOR_RGB2BGR), np.full(arr.shape[:2], 9, np.uint16)])
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    img = mio.read_image(tmp_path / "a.png")
    assert img.source_channels == 4
    np.testing.assert_array_equal(img.pixels, arr)


def test_grey_png_replicated(tmp_path: Path) -> None:
    grey = _rgb8()[:, :, 0]
    Image.fromarray(grey, mode="L").save(tmp_path / "g.png")
    img = mio.read_image(tmp_path / "g.png")
    assert img.source_channels == 1 and img.pixels.shape == (*grey.shape, 3)
    for c in range(3):
        np.testing.assert_array_equal(img.pixels[:, :, c], grey)


def test_grey16_png_replicated(tmp_path: Path) -> None:
    grey = _rgb16()[:, :, 1]
    cv2.imwrite(str(tmp_path / "g16.png"), grey)
    img = mio.read_image(tmp_path / "g16.png")
    assert img.source_channels == 1 and img.bit_depth == 16
    np.testing.assert_array_equal(img.pixels[:, :, 2], grey)


def test_grey_alpha_and_rgba_png_drop_alpha(tmp_path: Path) -> None:
    arr = _rgb8()
    alpha = RNG.integers(0, 256, arr.shape[:2], dtype=np.uint8)
    Image.fromarray(np.dstack([arr, alpha]), mode="RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(np.dstack([arr[:, :, 0], alpha]), mode="LA").save(tmp_path / "la.png")
    rgba = mio.read_image(tmp_path / "rgba.png")
    la = mio.read_image(tmp_path / "la.png")
    assert rgba.source_channels == 4 and la.source_channels == 2
    np.testing.assert_array_equal(rgba.pixels, arr)  # not premultiplied, alpha ignored
    np.testing.assert_array_equal(la.pixels[:, :, 1], arr[:, :, 0])


def test_palette_png_expanded(tmp_path: Path) -> None:
    arr = _smooth8()
    pal = Image.fromarray(arr).quantize(colors=16)
    pal.save(tmp_path / "p.png")
    img = mio.read_image(tmp_path / "p.png")
    np.testing.assert_array_equal(img.pixels, np.asarray(pal.convert("RGB")))
    assert img.source_channels == 3


def test_jpeg_rgb_and_grey(tmp_path: Path) -> None:
    arr = _smooth8()
    (tmp_path / "a.jpg").write_bytes(_jpeg_bytes(arr))
    (tmp_path / "g.jpg").write_bytes(_jpeg_bytes(arr[:, :, 1]))
    img = mio.read_image(tmp_path / "a.jpg")
    assert img.pixels.dtype == np.uint8 and img.pixels.shape == arr.shape
    assert np.abs(img.pixels.astype(int) - arr).mean() < 3
    grey = mio.read_image(tmp_path / "g.jpg")
    assert grey.source_channels == 1
    np.testing.assert_array_equal(grey.pixels[:, :, 0], grey.pixels[:, :, 2])
    assert np.abs(grey.pixels[:, :, 0].astype(int) - arr[:, :, 1]).mean() < 3


def test_tiff_8_and_16_bit_chunky_and_planar(tmp_path: Path) -> None:
    a8, a16 = _rgb8(), _rgb16()
    tifffile.imwrite(tmp_path / "c8.tif", a8, photometric="rgb")
    tifffile.imwrite(tmp_path / "c16.tif", a16, photometric="rgb", compression="zlib")
    tifffile.imwrite(
        tmp_path / "p16.tif", np.moveaxis(a16, -1, 0), photometric="rgb", planarconfig="separate"
    )
    r8 = mio.read_image(tmp_path / "c8.tif")
    assert r8.bit_depth == 8 and r8.pixels.dtype == np.uint8
    np.testing.assert_array_equal(r8.pixels, a8)
    for name in ("c16.tif", "p16.tif"):
        r = mio.read_image(tmp_path / name)
        assert r.bit_depth == 16 and r.pixels.flags.c_contiguous
        np.testing.assert_array_equal(r.pixels, a16)


def test_tiff_lzw_multipage_reads_first_page(tmp_path: Path) -> None:
    first, second = _rgb8(), _rgb8(40, 40)
    with tifffile.TiffWriter(tmp_path / "m.tif") as tw:
        tw.write(first, photometric="rgb", compression="lzw")
        tw.write(second, photometric="rgb")
    np.testing.assert_array_equal(mio.read_image(tmp_path / "m.tif").pixels, first)


def test_tiff_grey_rgba_miniswhite(tmp_path: Path) -> None:
    a = _rgb8()
    tifffile.imwrite(tmp_path / "g.tif", a[:, :, 0], photometric="minisblack")
    tifffile.imwrite(
        tmp_path / "rgba.tif", np.dstack([a, a[:, :, :1]]), photometric="rgb",
        extrasamples=["unassalpha"],
    )
    tifffile.imwrite(tmp_path / "w.tif", a[:, :, 0], photometric="miniswhite")
    g = mio.read_image(tmp_path / "g.tif")
    assert g.source_channels == 1
    np.testing.assert_array_equal(g.pixels[:, :, 1], a[:, :, 0])
    rgba = mio.read_image(tmp_path / "rgba.tif")
    assert rgba.source_channels == 4
    np.testing.assert_array_equal(rgba.pixels, a)
    w = mio.read_image(tmp_path / "w.tif")  # 0 = white in the file
    np.testing.assert_array_equal(w.pixels[:, :, 0], 255 - a[:, :, 0])


def test_float_tiff_refused(tmp_path: Path) -> None:
    data = RNG.random((40, 40, 3)).astype(np.float32)
    tifffile.imwrite(tmp_path / "f.tif", data, photometric="rgb")
    with pytest.raises(MonitorError, match="floating-point TIFF is not a photograph"):
        mio.read_image(tmp_path / "f.tif")


# --------------------------------------------------------------------------- EXIF


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path: Path, orientation: int) -> None:
    arr = _rgb8(40, 56)  # not square: catches transposes
    src = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = orientation
    src.save(tmp_path / "o.png", exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "o.png")))
    img = mio.read_image(tmp_path / "o.png")
    assert img.orientation_applied == orientation
    np.testing.assert_array_equal(img.pixels, expected)


def test_exif_orientation_on_16_bit_png(tmp_path: Path) -> None:
    grey = _rgb16(40, 56)[:, :, 0]
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    Image.fromarray(grey).save(tmp_path / "o16.png", exif=exif)
    img = mio.read_image(tmp_path / "o16.png")
    assert img.bit_depth == 16 and img.orientation_applied == 6
    np.testing.assert_array_equal(img.pixels[:, :, 0], np.rot90(grey, k=-1))


def test_exif_orientation_in_tiff(tmp_path: Path) -> None:
    arr = _rgb8(40, 56)
    tifffile.imwrite(tmp_path / "o.tif", arr, photometric="rgb", extratags=[(274, 3, 1, 8, True)])
    img = mio.read_image(tmp_path / "o.tif")
    assert img.orientation_applied == 8
    np.testing.assert_array_equal(img.pixels, np.rot90(arr, k=1))


def test_exif_fields_kept_as_strings(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "EOS R5"
    exif[0x0112] = 1
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = "2024:05:01 10:11:12"
    sub[0x829A] = (1, 125)
    sub[0x920A] = (500, 10)
    sub[0xA434] = "RF24-105mm F4 L IS USM"
    (tmp_path / "e.jpg").write_bytes(_jpeg_bytes(_smooth8(), exif=exif))
    img = mio.read_image(tmp_path / "e.jpg")
    assert img.exif == {
        "DateTimeOriginal": "2024:05:01 10:11:12",
        "Make": "Canon",
        "Model": "EOS R5",
        "LensModel": "RF24-105mm F4 L IS USM",
        "FocalLength": "50",
        "ExposureTime": "1/125",
    }


# --------------------------------------------------------------------------- errors


def test_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(MonitorError, match="no such file"):
        mio.read_image(tmp_path / "nope.png")
    with pytest.raises(MonitorError, match="is a directory"):
        mio.read_image(tmp_path)


def test_text_file_named_png_and_empty(tmp_path: Path) -> None:
    (tmp_path / "t.png").write_text("hello, I am not a picture\n" * 10)
    with pytest.raises(MonitorError, match="t.png is not an image"):
        mio.read_image(tmp_path / "t.png")
    (tmp_path / "e.jpg").write_bytes(b"")
    with pytest.raises(MonitorError, match="empty"):
        mio.read_image(tmp_path / "e.jpg")


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "WEBP"])
def test_unsupported_formats_named(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "x.png"  # misleading name: content decides
    Image.fromarray(_smooth8()).save(path, format=fmt)
    with pytest.raises(MonitorError, match="unsupported format"):
        mio.read_image(path)


def test_truncated_jpeg_fails(tmp_path: Path) -> None:
    data = _jpeg_bytes(_rgb8(96, 128))
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(MonitorError, match="truncated or corrupt JPEG") as info:
        mio.read_image(tmp_path / "cut.jpg")
    assert "\n" not in str(info.value) and "Traceback" not in str(info.value)


@pytest.mark.parametrize("bits", [8, 16])
def test_truncated_png_fails(tmp_path: Path, bits: int) -> None:
    arr = _rgb8() if bits == 8 else _rgb16()
    ok, buf = cv2.imencode(".png", arr)
    assert ok
    data = buf.tobytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(MonitorError, match="truncated or corrupt PNG"):
        mio.read_image(tmp_path / "cut.png")


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_truncated_tiff_fails(tmp_path: Path, compression: str | None) -> None:
    tifffile.imwrite(tmp_path / "t.tif", _rgb8(), photometric="rgb", compression=compression)
    data = (tmp_path / "t.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(MonitorError, match="truncated") as info:
        mio.read_image(tmp_path / "cut.tif")
    if compression is None:  # found from the strip offsets, before decoding
        assert "past the end of file" in str(info.value)


def test_load_truncated_images_stays_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    data = _jpeg_bytes(_rgb8(96, 128))
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(MonitorError, match="LOAD_TRUNCATED_IMAGES"):
        mio.read_image(tmp_path / "cut.jpg")


def test_too_small(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tmp_path / "one.png")
    with pytest.raises(MonitorError, match="1x1 px; need at least 32 px on each side"):
        mio.read_image(tmp_path / "one.png")
    Image.fromarray(np.zeros((40, 20, 3), np.uint8)).save(tmp_path / "thin.png")
    with pytest.raises(MonitorError, match="20x40 px"):
        mio.read_image(tmp_path / "thin.png")
    assert mio.read_image(tmp_path / "thin.png", min_side=16).width == 20


def test_pixel_limit_message(tmp_path: Path) -> None:
    Image.fromarray(_rgb8(100, 120)).save(tmp_path / "image.png")
    with pytest.raises(MonitorError) as info:
        mio.read_image(tmp_path / "image.png", max_pixels=10_000)
    assert str(info.value) == (
        "image.png is 0.0 MP, above the limit of 0.01 MP (set MONITOR_MAX_PIXELS to raise it)"
    )


def _huge_png(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but holds almost no data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 100)
    return (
        b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def test_pixel_limit_checked_from_header_before_decoding(tmp_path: Path) -> None:
    (tmp_path / "image.png").write_bytes(_huge_png(20_000, 15_000))
    with pytest.raises(MonitorError, match=r"image.png is 300.0 MP, above the limit of 250 MP"):
        mio.read_image(tmp_path / "image.png")
    # JPEG: patch the SOF0 dimensions of a small real file
    data = bytearray(_jpeg_bytes(_smooth8()))
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, 15_000, 20_000)  # height, width
    (tmp_path / "image.jpg").write_bytes(bytes(data))
    with pytest.raises(MonitorError, match=r"image.jpg is 300.0 MP, above the limit of 250 MP"):
        mio.read_image(tmp_path / "image.jpg")
    tifffile.imwrite(tmp_path / "image.tif", _rgb8(), photometric="rgb")
    _patch_tiff_size(tmp_path / "image.tif", 20_000, 15_000)
    with pytest.raises(MonitorError, match=r"image.tif is 300.0 MP, above the limit of 250 MP"):
        mio.read_image(tmp_path / "image.tif")


def test_our_limit_not_pillows(tmp_path: Path) -> None:
    # 200 MP is above Pillow's own bomb limit (~179 MP) but below ours: Pillow's
    # DecompressionBombError must not speak; ours does (200 MP in a hundred bytes), and
    # once that is satisfied (a file large enough per pixel) the file is found corrupt.
    (tmp_path / "big.png").write_bytes(_huge_png(20_000, 10_000))
    with pytest.raises(MonitorError) as info:
        mio.read_image(tmp_path / "big.png")
    msg = str(info.value)
    assert "MP, above the limit" not in msg and "DOS attack" not in msg
    assert "decompression bomb" in msg and "refusing to decode" in msg
    padded = _huge_png(20_000, 10_000)
    padded = padded[:-12] + _png_chunk(b"tEXt", b"pad\x00" + b"x" * 2_100_000) + padded[-12:]
    (tmp_path / "big.png").write_bytes(padded)
    with pytest.raises(MonitorError, match="truncated or corrupt PNG"):
        mio.read_image(tmp_path / "big.png")
    with pytest.raises(MonitorError, match="200.0 MP, above the limit of 150 MP"):
        mio.read_image(tmp_path / "big.png", max_pixels=150_000_000)


# --------------------------------------------------------------------------- sRGB


def test_to_linear_lut_values_and_round_trip() -> None:
    codes8 = np.arange(256, dtype=np.uint8)
    lin8 = mio.to_linear(codes8)
    assert lin8.dtype == np.float32
    assert lin8[0] == 0 and lin8[255] == pytest.approx(1.0)
    assert lin8[128] == pytest.approx(0.2158605, abs=1e-6)
    assert lin8[10] == pytest.approx(10 / 255 / 12.92, rel=1e-6)  # linear segment
    assert np.all(np.diff(lin8) > 0)
    np.testing.assert_array_equal(mio.from_linear(lin8, 8), codes8)
    codes16 = np.arange(65536, dtype=np.uint16)
    np.testing.assert_array_equal(mio.from_linear(mio.to_linear(codes16), 16), codes16)
    # 8-bit code c and 16-bit code 257 c are the same encoded value
    np.testing.assert_allclose(mio.to_linear(codes16[::257]), lin8, rtol=1e-6)


@pytest.mark.parametrize(
    "shape", [(7,), (5, 6), (5, 6, 1), (5, 6, 3), (5, 6, 4), (5, 6, 5), (2, 3, 4, 3), (0, 3)]
)
def test_to_linear_8_bit_equals_the_lookup_table(shape: tuple[int, ...]) -> None:
    """8-bit images go through cv2.LUT (fast): exactly the table's float32 entries,
    for every shape (others through the numpy gather), contiguous or not."""
    codes = RNG.integers(0, 256, shape).astype(np.uint8)
    lut = mio.colour._decode_lut(8)
    for arr in (codes, codes[::-1]):
        got = mio.to_linear(arr)
        assert got.dtype == np.float32 and got.shape == arr.shape
        np.testing.assert_array_equal(got, lut[arr])
    big = RNG.integers(0, 256, (40, 60, 3)).astype(np.uint8)[::2, 1::3]
    np.testing.assert_array_equal(mio.to_linear(big), lut[big])


def test_to_linear_uses_cv2_lut_for_8_bit_images(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, ...]] = []
    real = cv2.LUT

    def spy(src: np.ndarray, lut: np.ndarray, **kw: np.ndarray) -> np.ndarray:
        calls.append(src.shape)
        return real(src, lut, **kw)

    monkeypatch.setattr(mio.colour.cv2, "LUT", spy)
    mio.to_linear(np.zeros((4, 5, 3), np.uint8))
    assert calls == [(4, 5, 3)]


def test_to_linear_float_input_and_checks() -> None:
    codes = np.arange(256, dtype=np.uint8).reshape(16, 16)
    np.testing.assert_allclose(
        mio.to_linear(codes.astype(np.float64) / 255), mio.to_linear(codes), rtol=1e-5, atol=1e-7
    )
    with pytest.raises(MonitorError, match=r"\[0, 1\]"):
        mio.to_linear(np.array([0.5, 1.5]))
    with pytest.raises(MonitorError):
        mio.to_linear(np.array([1, 2], dtype=np.int32))


def test_from_linear_clips_and_handles_nan() -> None:
    out = mio.from_linear(np.array([-0.5, np.nan, 0.5, 2.0], dtype=np.float32), 8)
    assert out.dtype == np.uint8
    assert out.tolist() == [0, 0, 188, 255]
    assert mio.from_linear(np.array([1.0]), 16).tolist() == [65535]
    with pytest.raises(MonitorError):
        mio.from_linear(np.zeros(3), 12)


def test_to_gray8() -> None:
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0] = 255
    g = mio.to_gray8(rgb)
    assert g.dtype == np.uint8 and g.shape == (4, 5)
    assert g[0, 0] == 76  # Rec. 601 luma of pure red
    g16 = mio.to_gray8(rgb.astype(np.uint16) * 257)
    np.testing.assert_array_equal(g16, g)
    gf = mio.to_gray8(rgb.astype(np.float32) / 255)
    assert np.abs(gf.astype(int) - g).max() <= 1
    grey = np.arange(20, dtype=np.uint8).reshape(4, 5)
    out = mio.to_gray8(grey)
    np.testing.assert_array_equal(out, grey)
    assert out is not grey
    with pytest.raises(MonitorError):
        mio.to_gray8(np.zeros((4, 5, 2), np.uint8))


# --------------------------------------------------------------------------- resizing


def test_downsample_area_average_and_dtypes() -> None:
    a = np.arange(16, dtype=np.float32).reshape(4, 4)
    half = mio.downsample(a, 0.5)
    np.testing.assert_allclose(half, [[2.5, 4.5], [10.5, 12.5]])
    rgb16 = _rgb16(50, 70)
    small = mio.downsample(rgb16, 0.3)
    assert small.dtype == np.uint16 and small.shape == (15, 21, 3)
    assert abs(float(small.mean()) - float(rgb16.mean())) < 200
    assert mio.downsample(rgb16, 1.0) is rgb16
    assert mio.downsample(rgb16, 2.5) is rgb16
    one = mio.downsample(np.ones((10, 10, 1), np.uint8), 0.5)
    assert one.shape == (5, 5, 1)
    assert mio.scaled_shape((10, 7), 0.5) == (5, 4)
    with pytest.raises(MonitorError):
        mio.downsample(a, 0.0)
    with pytest.raises(MonitorError):
        mio.downsample(a.astype(np.int64), 0.5)


def test_analysis_scale() -> None:
    assert mio.analysis_scale((4000, 6000), 1600) == pytest.approx(1600 / 6000)
    assert mio.analysis_scale((100, 80), 1600) == 1.0
    with pytest.raises(MonitorError):
        mio.analysis_scale((100, 80), 0)


# --------------------------------------------------------------------------- writing


def test_float_tiff_round_trip(tmp_path: Path) -> None:
    h = RNG.normal(size=(37, 53)).astype(np.float32)
    h[3, 4], h[5, 6], h[7, 8] = np.nan, np.inf, -np.inf
    mio.write_float_tiff(tmp_path / "h.tif", h)
    back = mio.read_float_tiff(tmp_path / "h.tif")
    assert back.dtype == np.float32 and back.shape == h.shape
    np.testing.assert_array_equal(back, h)  # NaN compare equal in assert_array_equal
    # float64, non-contiguous, H x W x 1 input
    mio.write_float_tiff(tmp_path / "t.tif", h.astype(np.float64).T[:, :, None])
    np.testing.assert_array_equal(mio.read_float_tiff(tmp_path / "t.tif"), h.T)
    with tifffile.TiffFile(tmp_path / "h.tif") as tif:
        assert tif.pages.first.compression == tifffile.COMPRESSION.ADOBE_DEFLATE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.tif", "t.tif"]  # no temp files


def test_float_tiff_zlib_level_changes_bytes_not_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The change map is written at zlib level 1 (fast): lossless, the same
    values as the default level, a larger file than level 9 on smooth data."""
    yy, xx = np.mgrid[0:200, 0:300]
    h = (np.sin(xx / 17.0) * np.cos(yy / 11.0)).astype(np.float32)
    h[5:9, 7:20] = np.nan
    assert mio.files.TIFF_ZLIB_LEVEL == 1
    sizes = {}
    for level in (1, 9):
        monkeypatch.setattr(mio.files, "TIFF_ZLIB_LEVEL", level)
        path = tmp_path / f"h{level}.tif"
        mio.write_float_tiff(path, h)
        np.testing.assert_array_equal(mio.read_float_tiff(path), h)
        sizes[level] = path.stat().st_size
    assert sizes[1] > sizes[9]


@pytest.mark.parametrize("shape", [(1, 5), (5, 1), (1, 1)])
def test_float_tiff_round_trip_of_a_thin_map(tmp_path: Path, shape: tuple[int, int]) -> None:
    # a one-row, one-column or one-pixel map comes back with its shape (it was
    # squeezed to 1-D, or 0-D, and refused)
    h = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    mio.write_float_tiff(tmp_path / "h.tif", h)
    np.testing.assert_array_equal(mio.read_float_tiff(tmp_path / "h.tif"), h)


def test_float_tiff_errors(tmp_path: Path) -> None:
    with pytest.raises(MonitorError, match="does not exist"):
        mio.write_float_tiff(tmp_path / "no" / "h.tif", np.zeros((4, 4), np.float32))
    with pytest.raises(MonitorError, match="H x W"):
        mio.write_float_tiff(tmp_path / "h.tif", np.zeros((4, 4, 3), np.float32))
    tifffile.imwrite(tmp_path / "u8.tif", _rgb8())
    with pytest.raises(MonitorError, match="not a floating-point TIFF"):
        mio.read_float_tiff(tmp_path / "u8.tif")


def test_write_png_round_trip(tmp_path: Path) -> None:
    arr = _rgb8()
    mio.write_png(tmp_path / "w.png", arr)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "w.png")), arr)
    with pytest.raises(MonitorError):
        mio.write_png(tmp_path / "x.png", arr.astype(np.uint16))
