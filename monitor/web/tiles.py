"""Deep Zoom Image (DZI) tile pyramids of stored scans, cached in the data home.

The viewer (OpenSeadragon) asks only for the tiles it shows, so a 100 MP scan
is never sent to the browser whole. Pyramids are made with Pillow (already a
dependency of ``monitor``): no system library is needed, and at the sizes a
museum scan has (up to a few hundred MP) the one-off cost is seconds to tens of
seconds per scan (see docs/viewer.md for measured times). pyvips would be
faster but needs libvips installed system-wide.

Cache layout (content-addressed, never a name from a request)::

    <home>/cache/web/dzi/<key>/info.json        width, height, tile size, overlap, format
    <home>/cache/web/dzi/<key>/image.dzi        the DZI descriptor (XML)
    <home>/cache/web/dzi/<key>/image_files/<level>/<col>_<row>.<fmt>

``key`` is the sha256 of a *recipe*: what the pyramid is made from (the sha256
of the stored scan, or of the change map and the homography) and how (tile
size, overlap, format, version). A pyramid is built in ``<home>/tmp`` and
renamed into place in one step, so a reader never sees half a pyramid; two
processes building the same pyramid at once both succeed, one rename wins.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from monitor.errors import MonitorError
from monitor.io import read_float_tiff, read_image

TILE_SIZE = 254
OVERLAP = 1
JPEG_QUALITY = 88
RECIPE_VERSION = 1
KEY_PATTERN = re.compile(r"[0-9a-f]{64}")
Format = Literal["jpeg", "png"]
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


@dataclass(frozen=True)
class DziInfo:
    """One cached pyramid: its key and the figures OpenSeadragon needs."""

    key: str
    width: int
    height: int
    tile_size: int
    overlap: int
    format: str

    @property
    def max_level(self) -> int:
        """Index of the full-resolution level."""
        return max_level(self.width, self.height)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    def tile_source(self, base_url: str = "/tiles") -> dict[str, Any]:
        """An inline OpenSeadragon DZI tile source (no extra request for the descriptor).

        Examples
        --------
        >>> DziInfo("0" * 64, 300, 200, 254, 1, "jpeg").tile_source()["Image"]["Size"]
        {'Width': '300', 'Height': '200'}
        """
        return {
            "Image": {
                "xmlns": "http://schemas.microsoft.com/deepzoom/2008",
                "Url": f"{base_url}/{self.key}_files/",
                "Format": self.format,
                "Overlap": str(self.overlap),
                "TileSize": str(self.tile_size),
                "Size": {"Width": str(self.width), "Height": str(self.height)},
            }
        }


def max_level(width: int, height: int) -> int:
    """DZI level of the full-resolution image: ``ceil(log2(max(width, height)))``.

    Examples
    --------
    >>> max_level(1280, 960)
    11
    >>> max_level(1, 1)
    0
    """
    return math.ceil(math.log2(max(width, height, 1)))


def recipe_key(recipe: dict[str, Any]) -> str:
    """sha256 of a JSON recipe (keys sorted), the cache key of a pyramid.

    Examples
    --------
    >>> len(recipe_key({"kind": "scan", "sha256": "ab"}))
    64
    """
    payload = {"version": RECIPE_VERSION, "tile_size": TILE_SIZE, "overlap": OVERLAP, **recipe}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def dzi_xml(info: DziInfo) -> str:
    """The ``.dzi`` descriptor of a pyramid.

    Examples
    --------
    >>> "TileSize=\\"254\\"" in dzi_xml(DziInfo("0" * 64, 300, 200, 254, 1, "jpeg"))
    True
    """
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" '
        f'Format="{info.format}" Overlap="{info.overlap}" TileSize="{info.tile_size}">'
        f'<Size Width="{info.width}" Height="{info.height}"/></Image>\n'
    )


def build_pyramid(
    image: Image.Image,
    out_dir: Path,
    *,
    fmt: Format = "jpeg",
    tile_size: int = TILE_SIZE,
    overlap: int = OVERLAP,
) -> tuple[int, int]:
    """Write the DZI tiles of ``image`` into ``out_dir/image_files`` (not atomic; see ensure).

    Each level halves the previous one (box filter, sizes rounded up as DZI
    defines them) down to 1 x 1.

    Parameters
    ----------
    image
        RGB (``jpeg``) or RGBA (``png``) image.
    out_dir
        Empty folder to fill.
    fmt
        Tile format.
    tile_size, overlap
        DZI tile size and overlap in pixels.

    Returns
    -------
    tuple
        (width, height) of the full-resolution level.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> build_pyramid(Image.new("RGB", (600, 300)), d)
    (600, 300)
    >>> sorted(p.name for p in (d / "image_files" / "10").iterdir())
    ['0_0.jpeg', '0_1.jpeg', '1_0.jpeg', '1_1.jpeg', '2_0.jpeg', '2_1.jpeg']
    """
    width, height = image.size
    top = max_level(width, height)
    level_image = image
    for level in range(top, -1, -1):
        w, h = level_image.size
        folder = out_dir / "image_files" / str(level)
        folder.mkdir(parents=True)
        for col in range(math.ceil(w / tile_size)):
            x0 = max(col * tile_size - overlap, 0)
            x1 = min((col + 1) * tile_size + overlap, w)
            for row in range(math.ceil(h / tile_size)):
                y0 = max(row * tile_size - overlap, 0)
                y1 = min((row + 1) * tile_size + overlap, h)
                tile = level_image.crop((x0, y0, x1, y1))
                path = folder / f"{col}_{row}.{fmt}"
                if fmt == "jpeg":
                    tile.save(path, "JPEG", quality=JPEG_QUALITY)
                else:
                    tile.save(path, "PNG", compress_level=3)
        if level:
            size = (math.ceil(w / 2), math.ceil(h / 2))
            level_image = level_image.resize(size, Image.Resampling.BOX)
    return width, height


def _read_info(folder: Path) -> DziInfo | None:
    try:
        data = json.loads((folder / "info.json").read_text())
        return DziInfo(**data)
    except (OSError, ValueError, TypeError):
        return None


def cached(home: Path, key: str) -> DziInfo | None:
    """The cached pyramid of ``key``, or None when it has not been built.

    Parameters
    ----------
    home
        Data home.
    key
        64 lower-case hex digits (anything else is None).

    Returns
    -------
    DziInfo or None

    Examples
    --------
    >>> cached(Path("/nonexistent"), "../etc") is None
    True
    """
    if not KEY_PATTERN.fullmatch(key):
        return None
    return _read_info(cache_dir(home) / key)


def cache_dir(home: Path) -> Path:
    """Folder of the cached pyramids in a data home.

    Examples
    --------
    >>> cache_dir(Path("/h")).as_posix()
    '/h/cache/web/dzi'
    """
    return home / "cache" / "web" / "dzi"


def ensure_pyramid(
    home: Path, key: str, make_image: Callable[[], Image.Image], *, fmt: Format = "jpeg"
) -> DziInfo:
    """The pyramid of ``key``, built from ``make_image()`` the first time only.

    Parameters
    ----------
    home
        Data home (its ``tmp`` folder stages the build).
    key
        From :func:`recipe_key`.
    make_image
        Called only when the pyramid is not cached yet.
    fmt
        ``jpeg`` for photographs, ``png`` for overlays with transparency.

    Returns
    -------
    DziInfo

    Examples
    --------
    >>> import tempfile
    >>> home = Path(tempfile.mkdtemp())
    >>> key = recipe_key({"kind": "doc"})
    >>> ensure_pyramid(home, key, lambda: Image.new("RGB", (8, 8))).width
    8
    >>> ensure_pyramid(home, key, lambda: 1 / 0).width  # cached: not rebuilt
    8
    """
    if not KEY_PATTERN.fullmatch(key):
        raise MonitorError(f"invalid tile key {key[:80]!r}")
    final = cache_dir(home) / key
    info = _read_info(final)
    if info is not None:
        return info
    with _lock(key):  # one build per key in this process; other processes race on the rename
        return _build(home, key, final, make_image, fmt)


def _lock(key: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


def _build(
    home: Path, key: str, final: Path, make_image: Callable[[], Image.Image], fmt: Format
) -> DziInfo:
    info = _read_info(final)  # built by another thread while this one waited
    if info is not None:
        return info
    staging = home / "tmp" / f"dzi-{key}.{uuid.uuid4().hex}"
    try:
        staging.mkdir(parents=True)
        image = make_image()
        width, height = build_pyramid(image, staging, fmt=fmt)
        info = DziInfo(key, width, height, TILE_SIZE, OVERLAP, fmt)
        (staging / "image.dzi").write_text(dzi_xml(info))
        (staging / "info.json").write_text(json.dumps(info.to_dict()))
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(staging, final)  # one step: the pyramid appears complete
        except OSError:
            other = _read_info(final)  # another process won the race
            if other is None:
                raise
            return other
        return info
    except OSError as exc:
        raise MonitorError(f"cannot build tiles in {home}: {exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging, ignore_errors=True)


# --------------------------------------------------------------------------- sources


def _to_rgb8(pixels: np.ndarray) -> np.ndarray:
    if pixels.dtype == np.uint16:
        return (pixels >> 8).astype(np.uint8)
    return np.ascontiguousarray(pixels, dtype=np.uint8)


def scan_image(path: Path, max_pixels: int = 250_000_000) -> Image.Image:
    """A stored scan as an 8-bit RGB image (16-bit scans keep their high byte).

    Parameters
    ----------
    path
        The scan's file in the store (any format :func:`monitor.io.read_image` reads).
    max_pixels
        Refuse larger images.

    Returns
    -------
    PIL.Image.Image
    """
    return Image.fromarray(_to_rgb8(read_image(path, max_pixels=max_pixels).pixels), "RGB")


def warped_image(
    path: Path, homography: tuple[float, ...], size: tuple[int, int], max_pixels: int = 250_000_000
) -> Image.Image:
    """A CURRENT scan resampled into BASELINE pixels through the stored homography.

    Only the homography is applied (the stored comparison keeps no residual
    grid), so the swipe shows the global alignment, not the sub-pixel one the
    analysis used.

    Parameters
    ----------
    path
        The current scan's file.
    homography
        Row-major 3 x 3, mapping CURRENT pixel coordinates onto BASELINE ones.
    size
        (width, height) of the baseline.
    max_pixels
        Refuse larger images.

    Returns
    -------
    PIL.Image.Image
        RGB, ``size``; black outside the current scan.
    """
    h = np.asarray(homography, dtype=np.float64).reshape(3, 3)
    inv = np.linalg.inv(h)  # BASELINE -> CURRENT: where each output pixel is sampled
    inv = inv / inv[2, 2]
    coeffs = tuple(float(v) for v in inv.ravel()[:8])
    return scan_image(path, max_pixels).transform(
        size, Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR
    )


def change_overlay(path: Path) -> tuple[Image.Image, float]:
    """The stored change map (``change.tif``) as a transparent red/blue heat map.

    Red is a rise (towards the viewer), blue a recession; opacity grows with
    the magnitude up to the 99.5th percentile of ``|change|``; no data
    (outside the overlap) is fully transparent.

    Parameters
    ----------
    path
        The comparison's ``change.tif`` artifact (float32, baseline pixels).

    Returns
    -------
    tuple
        (RGBA image, the magnitude drawn fully opaque).
    """
    change = read_float_tiff(path)
    finite = np.isfinite(change)
    np.nan_to_num(change, copy=False, nan=0.0)
    # the scale from a regular subsample (at most ~4 M values), not a full-size copy
    step = max(1, int(math.sqrt(change.size / 4e6)))
    sample = np.abs(change[::step, ::step][finite[::step, ::step]])
    vmax = float(np.percentile(sample, 99.5)) if sample.size else 0.0
    if not vmax > 0:
        vmax = 1.0
    rise = change > 0
    rgba = np.empty((*change.shape, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2] = 30, 90, 230  # recession: blue
    rgba[rise, 0], rgba[rise, 1], rgba[rise, 2] = 220, 40, 30  # rise: red
    del rise
    np.abs(change, out=change)  # the change map is reused as the opacity, in place
    np.multiply(change, 255.0 / vmax, out=change)
    np.clip(change, 0, 255, out=change)
    change[~finite] = 0
    rgba[..., 3] = change
    return Image.fromarray(rgba, "RGBA"), vmax
