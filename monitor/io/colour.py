"""The sRGB transfer curve (the project's one copy) and code values <-> linear light."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import cv2
import numpy as np

from monitor.errors import MonitorError


def srgb_to_linear(encoded: np.ndarray) -> np.ndarray:
    """The sRGB decoding curve (IEC 61966-2-1): encoded [0, 1] -> linear light, float32.

    Evaluated in the input's floating dtype (float64 input: float64 curve,
    then rounded), so a float64 lookup table and a float32 image both come
    out as they always did.

    Parameters
    ----------
    encoded
        Floating point in [0, 1], any shape.

    Returns
    -------
    numpy.ndarray
        float32, same shape.

    Examples
    --------
    >>> float(srgb_to_linear(np.array([1.0], np.float32))[0])
    1.0
    """
    c = np.asarray(encoded)
    if c.dtype.kind != "f":
        c = c.astype(np.float32)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """The sRGB encoding curve: linear light -> encoded [0, 1], float32 (input clipped to [0, 1]).

    Parameters
    ----------
    linear
        Linear light, any shape; values outside [0, 1] are clipped.

    Returns
    -------
    numpy.ndarray
        float32, same shape.

    Examples
    --------
    >>> round(float(linear_to_srgb(np.array([2.0]))[0]), 6)
    1.0
    """
    x = np.clip(np.asarray(linear), 0.0, 1.0).astype(np.float32)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1.0 / 2.4) - 0.055).astype(
        np.float32
    )


@functools.cache
def _decode_lut(bits: int) -> np.ndarray:
    """sRGB-encoded code value -> linear light, float32, for 8 or 16 bits."""
    lin = srgb_to_linear(np.arange(2**bits, dtype=np.float64) / (2**bits - 1))
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

    Examples
    --------
    >>> to_linear(np.array([0, 128, 255], np.uint8)).round(4)
    array([0.    , 0.2159, 1.    ], dtype=float32)
    """
    arr = np.asarray(pixels)
    if arr.dtype == np.uint8:
        if 1 <= arr.ndim <= 3 and arr.size and (arr.ndim < 3 or arr.shape[2] <= 4):
            # cv2.LUT: the same table entries as the gather below, several times faster
            # (no index arithmetic); it takes 1-4 channel 2-D images and writes into
            # a numpy array (which asks the kernel for huge pages when it is large)
            out = np.empty(arr.shape, np.float32)
            shaped = (lambda x: x.reshape(1, -1)) if arr.ndim == 1 else (lambda x: x)
            cv2.LUT(shaped(arr), _decode_lut(8), dst=shaped(out))
            return out
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
        flat_out[sl] = srgb_to_linear(flat_in[sl].astype(np.float32))
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

    Examples
    --------
    >>> from_linear(np.array([0.0, 0.2158, 1.0, np.nan]))
    array([  0, 128, 255,   0], dtype=uint8)
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
        enc = linear_to_srgb(np.nan_to_num(flat_in[sl].astype(np.float32), nan=0.0))
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

    Examples
    --------
    >>> to_gray8(np.full((2, 2, 3), 65535, np.uint16))
    array([[255, 255],
           [255, 255]], dtype=uint8)
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
