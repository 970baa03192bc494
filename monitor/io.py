"""Image reading and writing, size limits, EXIF, sRGB linearisation.

Reading (:func:`read_image`)
----------------------------
The format is decided by the file's first bytes, not its name:

* **JPEG** and 8-bit **PNG** are decoded by Pillow, 16-bit PNG by OpenCV
  (Pillow reduces 16-bit RGB PNG to 8 bits), **TIFF** by tifffile (first
  page of a multi-page file; chunky or planar; LZW/JPEG/Deflate/PackBits
  need the ``imagecodecs`` package beside tifffile).
* The pixel limit and the minimum size are checked from the header,
  **before** any pixel is decoded. Pillow's own decompression-bomb guard is a
  module global (``PIL.Image.MAX_IMAGE_PIXELS``) that ``Image.open`` applies;
  rather than mutate it for the whole process, the PNG/JPEG header is parsed
  by the format's plugin class directly (``JpegImageFile`` / ``PngImageFile``),
  which identifies the file lazily and applies no limit of its own, so our
  ``max_pixels`` is the one that speaks.
* Truncated or corrupt files fail: decoding is forced in full
  (``ImageFile.load``) and ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` must stay
  ``False`` (a process that set it gets a :class:`MonitorError` rather than
  silently grey-padded pixels). TIFF strips/tiles that point past the end of
  the file are reported as truncation before decoding.
* Floating-point TIFF is refused (it is a measurement, e.g. a height map, not
  an sRGB-encoded photograph; :func:`read_float_tiff` reads those).
* Pixels keep the file's encoding: uint8 or uint16, H x W x 3, C-contiguous.
  Grey is replicated to three channels, alpha is dropped, a palette is
  expanded, CMYK JPEG is converted by Pillow; ``source_channels`` records
  what the file had. The EXIF/TIFF orientation tag is applied and recorded.

Every failure is a one-line :class:`~monitor.errors.MonitorError`.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import tifffile
from PIL import ExifTags, Image, ImageFile, JpegImagePlugin, PngImagePlugin

from monitor.errors import MonitorError
from monitor.results import ImageData

__all__ = [
    "EXIF_FIELDS",
    "analysis_scale",
    "check_grey_levels",
    "downsample",
    "from_linear",
    "read_float_tiff",
    "read_image",
    "read_scan",
    "scaled_shape",
    "to_gray8",
    "to_linear",
    "write_float_tiff",
    "write_png",
]

#: EXIF fields kept (as strings) in :attr:`ImageData.exif`.
EXIF_FIELDS: tuple[str, ...] = (
    "DateTimeOriginal",
    "Make",
    "Model",
    "LensModel",
    "FocalLength",
    "ExposureTime",
)

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
# Formats we recognise only to name them in the error message.
_OTHER_MAGICS: tuple[tuple[bytes, int, str], ...] = (
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"BM", 0, "BMP"),
    (b"WEBP", 8, "WebP"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", 0, "JPEG 2000"),
    (b"\xff\x4f\xff\x51", 0, "JPEG 2000"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", 0, "JPEG XL"),
    (b"\xff\x0a", 0, "JPEG XL"),
    (b"ftypheic", 4, "HEIC"),
    (b"ftypheix", 4, "HEIC"),
    (b"ftypmif1", 4, "HEIF"),
    (b"ftypavif", 4, "AVIF"),
    (b"ftypcrx ", 4, "Canon CR3 raw"),
    (b"8BPS", 0, "Photoshop PSD"),
    (b"%PDF", 0, "PDF"),
    (b"FUJIFILMCCD-RAW", 0, "Fujifilm RAF raw"),
    (b"IIRO", 0, "Olympus ORF raw"),
    (b"IIRS", 0, "Olympus ORF raw"),
    (b"IIU\x00", 0, "Panasonic RW2 raw"),
)
# Camera raw formats built on TIFF: tifffile would return a thumbnail page.
_RAW_SUFFIXES = frozenset(
    {".nef", ".nrw", ".cr2", ".arw", ".srf", ".sr2", ".dng", ".pef", ".orf", ".rw2", ".raf",
     ".3fr", ".iiq", ".erf", ".kdc", ".mrw", ".srw", ".x3f"}
)
_CONVERT_HINT = "export it as PNG, JPEG or 8/16-bit RGB TIFF"


# --------------------------------------------------------------------------- helpers


def _short(exc: BaseException, limit: int = 120) -> str:
    """A short one-line reason from an exception from a third-party library."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_file(path: Path) -> int:
    """Return the file's size; raise for a missing file, a directory, an empty file."""
    if not path.exists():
        raise MonitorError(f"{path}: no such file")
    if path.is_dir():
        raise MonitorError(f"{path} is a directory, not an image file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise MonitorError(f"{path}: cannot access ({_short(exc)})") from exc
    if size == 0:
        raise MonitorError(f"{path.name} is empty (0 bytes)")
    return size


#: A file declaring at least this many pixels ...
BOMB_MIN_PIXELS = 4_000_000
#: ... in fewer bytes per pixel than this is refused before decoding as a decompression
#: bomb: photographs of paintings take 0.1-6 bytes per pixel (JPEG to 16-bit PNG); a
#: compression ratio beyond 300:1 on 8-bit RGB means (nearly) empty content.
BOMB_MIN_BYTES_PER_PIXEL = 0.01


def _check_size(
    name: str, width: int, height: int, max_pixels: int, min_side: int,
    file_size: int | None = None,
) -> None:
    """The pixel-count, bomb and minimum-side checks, done from the header."""
    if width <= 0 or height <= 0:
        raise MonitorError(f"{name}: corrupt header (size {width}x{height})")
    pixels = width * height
    if pixels > max_pixels:
        raise MonitorError(
            f"{name} is {pixels / 1e6:.1f} MP, above the limit of {max_pixels / 1e6:g} MP "
            "(set MONITOR_MAX_PIXELS to raise it)"
        )
    if (file_size is not None and pixels >= BOMB_MIN_PIXELS
            and file_size < pixels * BOMB_MIN_BYTES_PER_PIXEL):
        raise MonitorError(
            f"{name} declares {width}x{height} px ({pixels / 1e6:.1f} MP) in only "
            f"{file_size:,} bytes ({file_size / pixels:.4f} bytes per pixel): a decompression "
            "bomb or an empty image; refusing to decode it"
        )
    if width < min_side or height < min_side:
        raise MonitorError(
            f"{name}: image is {width}x{height} px; need at least {min_side} px on each side"
        )


def _apply_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF/TIFF orientation tag (1-8) to an H x W (x C) array.

    Returns a view; the caller makes it contiguous. Matches
    ``PIL.ImageOps.exif_transpose``.
    """
    swap = (1, 0, *range(2, arr.ndim))
    if orientation == 2:
        return arr[:, ::-1]
    if orientation == 3:
        return arr[::-1, ::-1]
    if orientation == 4:
        return arr[::-1]
    if orientation == 5:
        return arr.transpose(swap)
    if orientation == 6:
        return np.rot90(arr, k=-1)
    if orientation == 7:
        return arr[::-1, ::-1].transpose(swap)
    if orientation == 8:
        return np.rot90(arr, k=1)
    return arr


def _to_rgb3(arr: np.ndarray, layout: str) -> np.ndarray:
    """Grey, grey+alpha, RGB, RGBA or BGR(A) -> contiguous H x W x 3 (RGB order).

    ``layout`` is "RGB" or "BGR" (channel order of a 3/4-channel input).
    """
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 3 and arr.shape[2] == 2:  # grey + alpha
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        return cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_GRAY2RGB)
    if arr.ndim != 3 or arr.shape[2] < 3:
        raise MonitorError(f"unsupported pixel layout {arr.shape}")
    if arr.shape[2] == 3 and layout == "RGB":
        if arr.flags.c_contiguous and arr.flags.writeable:
            return arr  # already ours, in place
        return np.array(arr, order="C")  # one copy; also makes read-only input writeable
    if layout == "BGR":
        if arr.shape[2] == 3 and arr.flags.c_contiguous and arr.flags.writeable:
            return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB, dst=arr)  # in place
        if arr.shape[2] in (3, 4):
            code = cv2.COLOR_BGRA2RGB if arr.shape[2] == 4 else cv2.COLOR_BGR2RGB
            return cv2.cvtColor(np.ascontiguousarray(arr), code)
        return np.ascontiguousarray(arr[:, :, 2::-1])
    return np.array(arr[:, :, :3], order="C")


def _format_rational(tag: str, value: Any) -> str | None:
    """EXIF rational (Pillow IFDRational or tifffile (num, den)) -> readable string."""
    try:
        if isinstance(value, tuple | list) and len(value) == 2:
            frac = Fraction(int(value[0]), int(value[1]))
        else:
            frac = Fraction(value).limit_denominator(1_000_000)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    if tag == "ExposureTime" and 0 < frac < 1 and (1 / frac).denominator == 1:
        return f"1/{int(1 / frac)}"
    return f"{float(frac):g}"


def _format_exif_value(tag: str, value: Any) -> str | None:
    if value is None:
        return None
    if tag in ("ExposureTime", "FocalLength"):
        return _format_rational(tag, value)
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    text = " ".join(str(value).replace("\x00", " ").split())
    return text or None


def _pil_exif(exif: Image.Exif) -> tuple[int, dict[str, str]]:
    """Orientation and the fields of :data:`EXIF_FIELDS` from a Pillow ``Exif``."""
    found: dict[str, Any] = {}
    try:
        orientation = int(exif.get(ExifTags.Base.Orientation, 1) or 1)
    except (TypeError, ValueError):
        orientation = 1
    for name in ("Make", "Model"):
        found[name] = exif.get(ExifTags.Base[name])
    try:
        sub = exif.get_ifd(ExifTags.IFD.Exif)
    except Exception:  # a broken Exif IFD must not stop the read
        sub = {}
    for name in ("DateTimeOriginal", "LensModel", "FocalLength", "ExposureTime"):
        found[name] = sub.get(ExifTags.Base[name])
    out = {k: s for k in EXIF_FIELDS if (s := _format_exif_value(k, found.get(k))) is not None}
    return orientation if 1 <= orientation <= 8 else 1, out


def _tiff_exif(page: tifffile.TiffPage) -> tuple[int, dict[str, str]]:
    """Orientation and the fields of :data:`EXIF_FIELDS` from a TIFF page."""
    tags = page.tags
    try:
        orientation = int(tags.valueof("Orientation", 1) or 1)
    except (TypeError, ValueError):
        orientation = 1
    found: dict[str, Any] = {"Make": tags.valueof("Make"), "Model": tags.valueof("Model")}
    sub = tags.valueof("ExifTag")
    if isinstance(sub, dict):
        for name in ("DateTimeOriginal", "LensModel", "FocalLength", "ExposureTime"):
            found[name] = sub.get(name)
    out = {k: s for k in EXIF_FIELDS if (s := _format_exif_value(k, found.get(k))) is not None}
    return orientation if 1 <= orientation <= 8 else 1, out


def _sniff(head: bytes) -> str | None:
    if head.startswith(_PNG_MAGIC):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:4] in _TIFF_MAGICS:
        return "TIFF"
    return None


# --------------------------------------------------------------------------- readers


@contextmanager
def _decode_errors(name: str, kind: str) -> Iterator[None]:
    """Turn a decoder's exception into a one-line MonitorError."""
    try:
        yield
    except MonitorError:
        raise
    except MemoryError as exc:
        raise MonitorError(f"{name}: not enough memory to decode this {kind}") from exc
    except Exception as exc:  # decoders raise many types (OSError, SyntaxError, ...)
        if "imagecodecs" in str(exc):
            raise MonitorError(
                f"{name}: this {kind} needs the imagecodecs package to decode ({_short(exc)})"
            ) from exc
        raise MonitorError(f"{name}: truncated or corrupt {kind} ({_short(exc)})") from exc


def _read_png_header(path: Path, head: bytes) -> tuple[int, int, int, int]:
    """(width, height, bit depth, colour type) from the IHDR chunk."""
    if len(head) < 26 or head[12:16] != b"IHDR":
        raise MonitorError(f"{path.name}: corrupt PNG (no IHDR header)")
    width = int.from_bytes(head[16:20], "big")
    height = int.from_bytes(head[20:24], "big")
    return width, height, head[24], head[25]


_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}
_PIL_CHANNELS = {"1": 1, "L": 1, "LA": 2, "La": 2, "P": 3, "PA": 4, "RGB": 3, "RGBA": 4,
                 "RGBa": 4, "RGBX": 3, "CMYK": 4, "YCbCr": 3}
_PIL_CONVERT = {"1": "L", "La": "LA", "PA": "RGBA", "CMYK": "RGB", "YCbCr": "RGB", "RGBX": "RGB",
                "RGBa": "RGBA"}


def _pil_to_array(im: ImageFile.ImageFile, name: str) -> tuple[np.ndarray, int]:
    """Decoded 8-bit Pillow image -> (uint8 array, source channels). Closes ``im``.

    Copied out in strips of rows into one preallocated array: ``np.asarray``
    on the whole image would go through ``tobytes()``, which joins a list of
    chunks (two extra full copies at its peak). Peak here: Pillow's buffer
    (4 bytes per RGB pixel) + the result.
    """
    mode = im.mode
    channels = _PIL_CHANNELS.get(mode)
    if channels is None:
        raise MonitorError(f"{name}: unsupported pixel mode {mode}; {_CONVERT_HINT}")
    target = _PIL_CONVERT.get(mode)
    if mode == "P":
        channels = 4 if "transparency" in im.info else 3
        target = "RGBA" if channels == 4 else "RGB"
    conv: Image.Image = im.convert(target) if target else im
    if conv is not im:
        im.close()
    width, height = conv.size
    bands = len(conv.getbands())
    out = np.empty((height, width, bands) if bands > 1 else (height, width), dtype=np.uint8)
    # 1 MiB strips: far below Pillow's bomb check, which Image.crop applies to the strip
    step = max(1, (1 << 20) // max(1, width * bands))
    for top in range(0, height, step):
        bottom = min(height, top + step)
        with conv.crop((0, top, width, bottom)) as strip:
            out[top:bottom] = np.asarray(strip).reshape(out[top:bottom].shape)
    conv.close()
    im.close()
    return out, channels


def _read_pil(
    path: Path, fmt: str, max_pixels: int, min_side: int, file_size: int | None = None
) -> tuple[np.ndarray, int, int, dict[str, str], int]:
    """JPEG or 8-bit PNG through Pillow's plugin class (no global bomb limit)."""
    name = path.name
    factory: Callable[[str], ImageFile.ImageFile] = (
        JpegImagePlugin.JpegImageFile if fmt == "JPEG" else PngImagePlugin.PngImageFile
    )
    with _decode_errors(name, fmt):
        im = factory(str(path))
    try:
        width, height = im.size
        _check_size(name, width, height, max_pixels, min_side, file_size)
        with _decode_errors(name, fmt):
            im.load()
            exif = im.getexif()
        orientation, fields = _pil_exif(exif)
        arr, channels = _pil_to_array(im, name)
    finally:
        im.close()
    return arr, 8, channels, fields, orientation


def _read_png16(
    path: Path, head: bytes, max_pixels: int, min_side: int, file_size: int | None = None
) -> tuple[np.ndarray, int, int, dict[str, str], int]:
    """16-bit PNG through OpenCV (keeps 16 bits per channel)."""
    name = path.name
    width, height, _, colour = _read_png_header(path, head)
    _check_size(name, width, height, max_pixels, min_side, file_size)
    orientation, fields = 1, {}
    with _decode_errors(name, "PNG"):
        # lazy open: only chunks before the image data; eXIf after IDAT is ignored
        with PngImagePlugin.PngImageFile(str(path)) as lazy:
            raw_exif = lazy.info.get("exif")
        if raw_exif:
            exif = Image.Exif()
            exif.load(raw_exif)
            orientation, fields = _pil_exif(exif)
        buf = np.fromfile(path, dtype=np.uint8)
        arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        del buf
    if arr is None or arr.shape[:2] != (height, width):
        raise MonitorError(f"{name}: truncated or corrupt PNG (the decoder gave no image)")
    return arr, 16, _PNG_CHANNELS.get(colour, 3), fields, orientation


def _read_tiff(
    path: Path, file_size: int, max_pixels: int, min_side: int
) -> tuple[np.ndarray, int, int, dict[str, str], int]:
    """TIFF through tifffile: first page, chunky or planar, 8/16-bit integer."""
    name = path.name
    photometric = tifffile.PHOTOMETRIC
    with _decode_errors(name, "TIFF"), tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        if "DNGVersion" in page.tags or path.suffix.lower() in _RAW_SUFFIXES:
            raise MonitorError(f"{name}: camera raw files are not supported; {_CONVERT_HINT}")
        _check_size(name, int(page.imagewidth), int(page.imagelength), max_pixels, min_side,
                    file_size)
        dtype = np.dtype(page.dtype) if page.dtype is not None else None
        if dtype is not None and dtype.kind == "f":
            raise MonitorError(
                f"floating-point TIFF is not a photograph; {name} holds {dtype} samples "
                f"({_CONVERT_HINT}; read height maps with read_float_tiff)"
            )
        if dtype not in (np.dtype(np.uint8), np.dtype(np.uint16)) or page.bitspersample not in (
            8,
            16,
        ):
            raise MonitorError(
                f"{name}: unsupported TIFF sample format ({page.bitspersample}-bit "
                f"{dtype}); {_CONVERT_HINT}"
            )
        pm = page.photometric
        spp = int(page.samplesperpixel)
        if pm == photometric.YCBCR and page.compression != tifffile.COMPRESSION.JPEG:
            raise MonitorError(f"{name}: unsupported TIFF colour space YCbCr; {_CONVERT_HINT}")
        supported = (
            photometric.MINISBLACK,
            photometric.MINISWHITE,
            photometric.RGB,
            photometric.PALETTE,
            photometric.YCBCR,
        )
        if pm not in supported:
            raise MonitorError(
                f"{name}: unsupported TIFF colour space {getattr(pm, 'name', pm)}; "
                f"{_CONVERT_HINT}"
            )
        if pm in (photometric.MINISBLACK, photometric.MINISWHITE) and spp > 2:
            raise MonitorError(
                f"{name}: unsupported TIFF with {spp} grey samples per pixel; {_CONVERT_HINT}"
            )
        offsets, counts = page.dataoffsets, page.databytecounts
        ends = [int(o) + int(n) for o, n in zip(offsets, counts, strict=False)]
        if not ends or max(ends) > file_size:
            raise MonitorError(f"{name}: truncated TIFF (image data runs past the end of file)")
        orientation, fields = _tiff_exif(page)
        axes = page.axes
        arr = page.asarray()
        colormap = page.colormap if pm == photometric.PALETTE else None
    # layout: keep Y, X and S; drop other singleton axes; planar S first -> last
    keep = [i for i, a in enumerate(axes) if a in "YXS" or arr.shape[i] != 1]
    if len(keep) != arr.ndim:
        arr = arr.reshape([arr.shape[i] for i in keep])
        axes = "".join(axes[i] for i in keep)
    if axes == "SYX":
        arr = np.moveaxis(arr, 0, -1)
    elif axes not in ("YX", "YXS"):
        raise MonitorError(f"{name}: unsupported TIFF layout {axes}; {_CONVERT_HINT}")
    bits = 8 if arr.dtype == np.uint8 else 16
    if pm == photometric.MINISWHITE:
        arr = np.subtract(np.iinfo(arr.dtype).max, arr, dtype=arr.dtype)
    if colormap is not None:
        cmap = np.asarray(colormap)
        if cmap.ndim != 2 or cmap.shape[0] != 3 or arr.ndim != 2:
            raise MonitorError(f"{name}: corrupt TIFF palette")
        cmap8 = cmap if cmap.max() < 256 else (cmap.astype(np.uint32) + 128) // 257
        arr = np.ascontiguousarray(cmap8.T.astype(np.uint8)[arr])
        return arr, 8, 3, fields, orientation
    return arr, bits, spp, fields, orientation


def read_image(
    path: str | Path, *, max_pixels: int = 250_000_000, min_side: int = 32
) -> ImageData:
    """Read a photograph (PNG, JPEG or TIFF) as sRGB-encoded H x W x 3 pixels.

    Parameters
    ----------
    path
        The file. Its format is told by its content, not its name.
    max_pixels
        Refuse images with more pixels than this; checked from the header,
        before decoding (``Settings.max_pixels``, ``MONITOR_MAX_PIXELS``).
    min_side
        Refuse images narrower or shorter than this many pixels.

    Returns
    -------
    ImageData
        ``pixels`` uint8 or uint16 (as encoded in the file), H x W x 3,
        C-contiguous, EXIF orientation applied; ``bit_depth`` 8 or 16;
        ``source_channels`` 1 (grey), 2 (grey+alpha), 3 or 4 (RGBA, CMYK);
        ``orientation_applied`` the orientation tag (1 = none);
        ``exif`` the fields of :data:`EXIF_FIELDS` found, as strings.

    Raises
    ------
    MonitorError
        Missing file, directory, not an image, unsupported format,
        floating-point TIFF, truncated or corrupt file, too large, too small.
    """
    if max_pixels < 1 or min_side < 1:
        raise MonitorError(f"read_image: max_pixels and min_side must be >= 1, "
                           f"got {max_pixels} and {min_side}")
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise MonitorError(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set in this process; refusing to read "
            "images that could be silently padded"
        )
    p = Path(path).expanduser()
    file_size = _check_file(p)
    try:
        with p.open("rb") as fh:
            head = fh.read(64)
    except OSError as exc:
        raise MonitorError(f"{p}: cannot open ({_short(exc)})") from exc
    fmt = _sniff(head)
    if fmt is None:
        for magic, offset, label in _OTHER_MAGICS:
            if head[offset : offset + len(magic)] == magic:
                raise MonitorError(f"{p.name}: unsupported format {label}; {_CONVERT_HINT}")
        raise MonitorError(f"{p.name} is not an image (not PNG, JPEG or TIFF content)")

    with _library_messages(p.name):
        if fmt == "TIFF":
            arr, bits, channels, fields, orientation = _read_tiff(
                p, file_size, max_pixels, min_side)
            layout = "RGB"
        elif fmt == "PNG" and _read_png_header(p, head)[2] == 16:
            arr, bits, channels, fields, orientation = _read_png16(
                p, head, max_pixels, min_side, file_size)
            layout = "BGR"
        else:
            arr, bits, channels, fields, orientation = _read_pil(
                p, fmt, max_pixels, min_side, file_size)
            layout = "RGB"

    arr = _apply_orientation(arr, orientation)
    pixels = _to_rgb3(arr, layout)
    del arr
    if pixels.dtype not in (np.uint8, np.uint16):  # defensive: decoders should not do this
        raise MonitorError(f"{p.name}: unexpected decoded sample type {pixels.dtype}")
    return ImageData(
        pixels=pixels,
        path=str(p),
        bit_depth=bits,
        source_channels=channels,
        orientation_applied=orientation,
        exif=fields,
    )


#: Fewest distinct grey levels a scan must show to carry shading (a 1-bit scan has 2).
MIN_GREY_LEVELS = 16
_SAMPLE_PX = 1_000_000


def check_grey_levels(image: ImageData, min_levels: int = MIN_GREY_LEVELS) -> ImageData:
    """Refuse a scan with too few grey levels to carry shading (1-bit, posterised, blank).

    The levels are counted on the 8-bit luminance of an evenly strided
    subsample of at most a million pixels.

    Parameters
    ----------
    image
        From :func:`read_image`.
    min_levels
        Fewest distinct levels accepted.

    Returns
    -------
    ImageData
        ``image``, unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> from monitor.results import ImageData
    >>> flat = ImageData(np.zeros((40, 40, 3), np.uint8), "flat.png", 8, 3)
    >>> check_grey_levels(flat)
    Traceback (most recent call last):
    ...
    monitor.errors.MonitorError: flat.png has only 1 grey level(s): too few to carry shading \
(a 1-bit, posterised or blank image?); scan with 8 or 16 bits per channel
    """
    pixels = image.pixels
    step = max(1, int(math.sqrt(pixels.shape[0] * pixels.shape[1] / _SAMPLE_PX)))
    levels = int(np.unique(to_gray8(pixels[::step, ::step])).size)
    if levels < min_levels:
        raise MonitorError(
            f"{Path(image.path).name} has only {levels} grey level(s): too few to carry "
            "shading (a 1-bit, posterised or blank image?); scan with 8 or 16 bits per channel"
        )
    return image


def read_scan(path: str | Path, *, max_pixels: int = 250_000_000) -> ImageData:
    """:func:`read_image` plus the checks a scan to compare must pass (:func:`check_grey_levels`).

    Used wherever a scan enters: ``monitor compare``, ``monitor ingest`` and the inbox.

    Parameters
    ----------
    path
        The file.
    max_pixels
        As for :func:`read_image`.

    Returns
    -------
    ImageData
        The image.

    Examples
    --------
    >>> read_scan("scan.png").bit_depth  # doctest: +SKIP
    8
    """
    return check_grey_levels(read_image(path, max_pixels=max_pixels))


_log = logging.getLogger("monitor.io")
#: Loggers of the decoders whose messages are held back unless ``MONITOR_DEBUG`` is set.
_LIBRARY_LOGGERS = ("tifffile", "PIL", "imagecodecs")


@contextmanager
def _library_messages(name: str) -> Iterator[None]:
    """Hold back the decoders' warnings and log messages; one line for them all afterwards.

    A bit-rotted TIFF made tifffile log hundreds of lines, a corrupt EXIF block
    two lines of Python warning. On success one line (logger ``monitor.io``)
    says how many there were and shows the first; on failure the error is the
    one line. ``MONITOR_DEBUG=1`` lets everything through as it comes.
    """
    if os.environ.get("MONITOR_DEBUG"):
        yield
        return
    held: list[str] = []

    class _Hold(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            held.append(record.getMessage())

    handler = _Hold(logging.DEBUG)
    loggers = [logging.getLogger(n) for n in _LIBRARY_LOGGERS]
    saved = [(lg, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.propagate = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        for lg, propagate in saved:
            lg.removeHandler(handler)
            lg.propagate = propagate
    held.extend(str(w.message) for w in caught)
    if held:
        _log.warning(
            "%s: %d warning(s) from the image decoder, the first: %s (MONITOR_DEBUG=1 shows "
            "them all)", name, len(held), " ".join(held[0].split())[:120],
        )


# --------------------------------------------------------------------------- sRGB


@functools.cache
def _decode_lut(bits: int) -> np.ndarray:
    """sRGB-encoded code value -> linear light, float32, for 8 or 16 bits."""
    c = np.arange(2**bits, dtype=np.float64) / (2**bits - 1)
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)
    lin.setflags(write=False)
    return lin


_BLOCK = 1 << 22  # elements per block for float curve evaluation (16 MiB float32)


def _blocks(n: int) -> Iterator[slice]:
    for start in range(0, n, _BLOCK):
        yield slice(start, min(n, start + _BLOCK))


def to_linear(pixels: np.ndarray) -> np.ndarray:
    """sRGB-encoded values -> linear light in [0, 1], float32.

    Parameters
    ----------
    pixels
        uint8 or uint16 code values (through a lookup table, no ``pow``), or
        floating point already scaled to [0, 1] (exact curve, in blocks). Any
        shape.

    Returns
    -------
    numpy.ndarray
        float32, same shape.
    """
    arr = np.asarray(pixels)
    if arr.dtype == np.uint8:
        return _decode_lut(8)[arr]
    if arr.dtype == np.uint16:
        return _decode_lut(16)[arr]
    if arr.dtype.kind != "f":
        raise MonitorError(f"to_linear: need uint8, uint16 or float pixels, got {arr.dtype}")
    if arr.size and not (np.nanmin(arr) >= 0.0 and np.nanmax(arr) <= 1.0):
        raise MonitorError("to_linear: float pixels must lie in [0, 1] (and not all NaN)")
    out = np.empty(arr.shape, dtype=np.float32)
    flat_in, flat_out = arr.reshape(-1), out.reshape(-1)
    for sl in _blocks(arr.size):
        c = flat_in[sl].astype(np.float32)
        flat_out[sl] = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return out


def from_linear(linear: np.ndarray, bit_depth: int = 8) -> np.ndarray:
    """Linear light -> sRGB-encoded integers (the inverse of :func:`to_linear`).

    Parameters
    ----------
    linear
        Floating point, nominally [0, 1]; values outside are clipped, NaN
        becomes 0. Any shape.
    bit_depth
        8 (uint8) or 16 (uint16).

    Returns
    -------
    numpy.ndarray
        uint8 or uint16, same shape, rounded to the nearest code value.
    """
    if bit_depth not in (8, 16):
        raise MonitorError(f"from_linear: bit_depth must be 8 or 16, got {bit_depth}")
    arr = np.asarray(linear)
    if arr.dtype.kind not in "fiu":
        raise MonitorError(f"from_linear: need a numeric array, got {arr.dtype}")
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    top = float(2**bit_depth - 1)
    out = np.empty(arr.shape, dtype=dtype)
    flat_in, flat_out = arr.reshape(-1), out.reshape(-1)
    for sl in _blocks(arr.size):
        x = np.nan_to_num(flat_in[sl].astype(np.float32), nan=0.0)
        np.clip(x, 0.0, 1.0, out=x)
        enc = np.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1 / 2.4) - 0.055)
        flat_out[sl] = np.rint(np.clip(enc, 0.0, 1.0) * top)
    return out


def to_gray8(pixels: np.ndarray) -> np.ndarray:
    """uint8 grey (Rec. 601 luma of the encoded values) for feature matching.

    Parameters
    ----------
    pixels
        H x W x 3 RGB or H x W grey; uint8, uint16, or float in [0, 1].

    Returns
    -------
    numpy.ndarray
        H x W uint8.
    """
    arr = np.asarray(pixels)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise MonitorError(f"to_gray8: need H x W or H x W x 3 pixels, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        scale = 1.0
    elif arr.dtype == np.uint16:
        scale = 1.0 / 257.0
    elif arr.dtype.kind == "f":
        scale = 255.0
        arr = arr.astype(np.float32, copy=False)
    else:
        raise MonitorError(f"to_gray8: need uint8, uint16 or float pixels, got {arr.dtype}")
    arr = np.ascontiguousarray(arr)
    grey = cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY) if arr.ndim == 3 else arr
    if grey.dtype == np.uint8:
        return grey if grey is not pixels else grey.copy()
    return cv2.convertScaleAbs(grey, alpha=scale)


# --------------------------------------------------------------------------- resizing


def analysis_scale(shape: tuple[int, int], max_px: int) -> float:
    """Scale that brings the long side of ``shape`` to at most ``max_px``.

    Parameters
    ----------
    shape
        (height, width) in pixels (extra trailing entries are ignored).
    max_px
        Largest allowed long side.

    Returns
    -------
    float
        ``min(1, max_px / max(height, width))``.
    """
    if len(shape) < 2 or min(shape[:2]) <= 0:
        raise MonitorError(f"analysis_scale: need a positive (height, width), got {shape}")
    if max_px <= 0:
        raise MonitorError(f"analysis_scale: max_px must be positive, got {max_px}")
    return min(1.0, max_px / max(shape[0], shape[1]))


def scaled_shape(shape: tuple[int, ...], scale: float) -> tuple[int, int]:
    """(height, width) that :func:`downsample` produces for ``scale`` (< 1).

    Parameters
    ----------
    shape
        (height, width, ...) of the input.
    scale
        Output pixels per input pixel.

    Returns
    -------
    tuple of int
        ``(max(1, round(height * scale)), max(1, round(width * scale)))``.
    """
    return max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))


def downsample(pixels: np.ndarray, scale: float) -> np.ndarray:
    """Area-average resize to ``round(shape * scale)`` (OpenCV ``INTER_AREA``).

    The effective factor per axis is ``new / old`` (rounding makes it differ
    slightly from ``scale``). NaN in float input spreads to the output pixels
    whose footprint contains it.

    Parameters
    ----------
    pixels
        H x W or H x W x C; uint8, uint16, float32 or float64.
    scale
        Output pixels per input pixel, > 0. ``scale >= 1`` returns ``pixels``
        itself (no copy, no upsampling).

    Returns
    -------
    numpy.ndarray
        Same dtype and channel count.
    """
    try:
        scale = float(scale)
    except (TypeError, ValueError) as exc:
        raise MonitorError(f"downsample: scale must be a number, got {scale!r}") from exc
    if not (math.isfinite(scale) and scale > 0):
        raise MonitorError(f"downsample: scale must be a positive number, got {scale!r}")
    if scale >= 1:
        return pixels
    arr = np.asarray(pixels)
    if arr.ndim not in (2, 3) or min(arr.shape[:2]) < 1:
        raise MonitorError(f"downsample: need H x W or H x W x C pixels, got shape {arr.shape}")
    if arr.dtype not in (np.uint8, np.uint16, np.float32, np.float64):
        raise MonitorError(f"downsample: unsupported dtype {arr.dtype}")
    h, w = scaled_shape(arr.shape, scale)
    if (h, w) == arr.shape[:2]:
        return arr
    out = cv2.resize(np.ascontiguousarray(arr), (w, h), interpolation=cv2.INTER_AREA)
    if arr.ndim == 3 and out.ndim == 2:  # OpenCV drops a single channel axis
        out = out[:, :, None]
    return out


# --------------------------------------------------------------------------- writing


@contextmanager
def _atomic_target(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place on success."""
    parent = path.parent
    if not parent.is_dir():
        raise MonitorError(f"cannot write {path}: folder {parent} does not exist")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        raise MonitorError(f"cannot write {path}: {_short(exc)}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def write_float_tiff(path: str | Path, array: np.ndarray) -> None:
    """Write one float32 band as a zlib-compressed TIFF (floating-point predictor).

    A float32 C-contiguous array is written strip by strip without copying it
    whole; other float/int dtypes are converted once. BigTIFF is used above
    2 GiB. The file appears atomically (temporary file + rename).

    Parameters
    ----------
    path
        Destination; its folder must exist.
    array
        H x W (or H x W x 1) numeric array; NaN and inf are kept.
    """
    arr = np.asarray(array)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2 or min(arr.shape) < 1:
        raise MonitorError(f"write_float_tiff: need an H x W array, got shape {arr.shape}")
    if arr.dtype.kind not in "fiub":
        raise MonitorError(f"write_float_tiff: need a numeric array, got {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    target = Path(path)
    with _atomic_target(target) as tmp:
        try:
            tifffile.imwrite(
                tmp,
                arr,
                photometric="minisblack",
                compression="zlib",
                predictor=3,
                rowsperstrip=64,
                bigtiff=arr.nbytes > 2**31,
                metadata=None,
            )
        except (KeyError, ValueError, RuntimeError) as exc:  # codec missing or similar
            raise MonitorError(f"cannot write {target}: {_short(exc)}") from exc


def read_float_tiff(path: str | Path) -> np.ndarray:
    """Read a single-band floating-point TIFF (as written by :func:`write_float_tiff`).

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    numpy.ndarray
        H x W float32 (first page).
    """
    p = Path(path).expanduser()
    _check_file(p)
    with _decode_errors(p.name, "TIFF"), tifffile.TiffFile(p) as tif:
        page = tif.pages.first
        if page.dtype is None or np.dtype(page.dtype).kind != "f":
            raise MonitorError(f"{p.name}: not a floating-point TIFF ({page.dtype} samples)")
        if int(page.samplesperpixel) != 1:
            raise MonitorError(
                f"{p.name}: need a single-band TIFF, got {page.samplesperpixel} samples"
            )
        arr = page.asarray()
    arr = np.squeeze(arr)
    if arr.ndim != 2:
        raise MonitorError(f"{p.name}: need a 2-D TIFF, got shape {arr.shape}")
    return arr.astype(np.float32, copy=False)


def write_png(path: str | Path, rgb_uint8: np.ndarray) -> None:
    """Write an 8-bit RGB (or grey) PNG, atomically.

    Parameters
    ----------
    path
        Destination; its folder must exist.
    rgb_uint8
        H x W x 3 uint8 RGB, or H x W uint8 grey.
    """
    arr = np.asarray(rgb_uint8)
    if arr.dtype != np.uint8:
        raise MonitorError(f"write_png: need uint8 pixels, got {arr.dtype}")
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)) or min(arr.shape[:2]) < 1:
        raise MonitorError(f"write_png: need H x W x 3 or H x W pixels, got shape {arr.shape}")
    bgr = cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_RGB2BGR) if arr.ndim == 3 else arr
    ok, buf = cv2.imencode(".png", bgr)
    if not ok:
        raise MonitorError(f"cannot encode {path} as PNG")
    target = Path(path)
    with _atomic_target(target) as tmp:
        buf.tofile(tmp)
