"""read_image(): sniff the format, decode PNG / JPEG / TIFF within limits, orient, to 3 channels."""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import tifffile
from PIL import Image, ImageFile, JpegImagePlugin, PngImagePlugin

from monitor.errors import MonitorError
from monitor.io.colour import to_gray8
from monitor.io.exif import _apply_orientation, _pil_exif, _tiff_exif
from monitor.io.limits import (
    _CONVERT_HINT,
    _RAW_SUFFIXES,
    _check_file,
    _check_size,
    _decode_errors,
    _short,
)
from monitor.results import ImageData

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


def _sniff(head: bytes) -> str | None:
    if head.startswith(_PNG_MAGIC):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:4] in _TIFF_MAGICS:
        return "TIFF"
    return None


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
    orientation: int = 1
    fields: dict[str, str] = {}
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

    Examples
    --------
    >>> import tempfile
    >>> from monitor.io.files import write_png
    >>> with tempfile.TemporaryDirectory() as d:
    ...     write_png(Path(d) / "scan.png", np.full((20, 30, 3), 200, np.uint8))
    ...     img = read_image(Path(d) / "scan.png", min_side=8)
    >>> img.pixels.shape, img.pixels.dtype, img.bit_depth
    ((20, 30, 3), dtype('uint8'), 8)
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
