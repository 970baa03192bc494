"""Writing outputs atomically: float32 TIFF (and reading it back), PNG."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import tifffile

from monitor.errors import MonitorError
from monitor.io.limits import _check_file, _decode_errors, _short

#: zlib level of :func:`write_float_tiff` (1 = fastest; the pixels are the same at any level).
TIFF_ZLIB_LEVEL = 1


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

    Examples
    --------
    >>> with tempfile.TemporaryDirectory() as d:
    ...     write_float_tiff(Path(d) / "h.tif", np.array([[0.5, np.nan]]))
    ...     read_float_tiff(Path(d) / "h.tif")
    array([[0.5, nan]], dtype=float32)
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
                # level 1: the same lossless content as zlib's default (6) in about
                # 2/3 of the time, a few % larger; readers are unaffected
                compression="zlib",
                compressionargs={"level": TIFF_ZLIB_LEVEL},
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

    Examples
    --------
    See :func:`write_float_tiff`.

    >>> with tempfile.TemporaryDirectory() as d:
    ...     write_float_tiff(Path(d) / "h.tif", np.zeros((3, 4)))
    ...     read_float_tiff(Path(d) / "h.tif").shape
    (3, 4)
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
    # drop only a trailing single-sample axis: squeezing everything made a
    # 1-row (or 1-column) map written by write_float_tiff unreadable
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
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

    Examples
    --------
    >>> with tempfile.TemporaryDirectory() as d:
    ...     write_png(Path(d) / "a.png", np.zeros((4, 6, 3), np.uint8))
    ...     (Path(d) / "a.png").read_bytes()[1:4]
    b'PNG'
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
