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

from monitor.io.colour import (  # noqa: F401
    from_linear,
    linear_to_srgb,
    srgb_to_linear,
    to_gray8,
    to_linear,
)
from monitor.io.exif import (  # noqa: F401
    EXIF_FIELDS,
)
from monitor.io.files import (  # noqa: F401
    read_float_tiff,
    write_float_tiff,
    write_png,
)
from monitor.io.read import (  # noqa: F401
    read_image,
)
from monitor.io.resample import (  # noqa: F401
    analysis_scale,
    downsample,
    scaled_shape,
)

__all__ = [
    "EXIF_FIELDS",
    "analysis_scale",
    "downsample",
    "from_linear",
    "linear_to_srgb",
    "read_float_tiff",
    "read_image",
    "scaled_shape",
    "srgb_to_linear",
    "to_gray8",
    "to_linear",
    "write_float_tiff",
    "write_png",
]
