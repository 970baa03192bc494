"""EXIF: orientation and the kept fields, from PIL and from TIFF tags."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import tifffile
from PIL import ExifTags, Image

#: EXIF fields kept (as strings) in :attr:`ImageData.exif`.
EXIF_FIELDS: tuple[str, ...] = (
    "DateTimeOriginal",
    "Make",
    "Model",
    "LensModel",
    "FocalLength",
    "ExposureTime",
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
