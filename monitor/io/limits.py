"""Limits and one-line errors shared by the readers: file checks, sizes, the hint."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from monitor.errors import MonitorError

# Camera raw formats built on TIFF: tifffile would return a thumbnail page.
_RAW_SUFFIXES = frozenset(
    {".nef", ".nrw", ".cr2", ".arw", ".srf", ".sr2", ".dng", ".pef", ".orf", ".rw2", ".raf",
     ".3fr", ".iiq", ".erf", ".kdc", ".mrw", ".srw", ".x3f"}
)


_CONVERT_HINT = "export it as PNG, JPEG or 8/16-bit RGB TIFF"


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


def _check_size(
    name: str, width: int, height: int, max_pixels: int, min_side: int
) -> None:
    """The pixel-count and minimum-side checks, done from the header."""
    if width <= 0 or height <= 0:
        raise MonitorError(f"{name}: corrupt header (size {width}x{height})")
    pixels = width * height
    if pixels > max_pixels:
        raise MonitorError(
            f"{name} is {pixels / 1e6:.1f} MP, above the limit of {max_pixels / 1e6:g} MP "
            "(set MONITOR_MAX_PIXELS to raise it)"
        )
    if width < min_side or height < min_side:
        raise MonitorError(
            f"{name}: image is {width}x{height} px; need at least {min_side} px on each side"
        )


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
