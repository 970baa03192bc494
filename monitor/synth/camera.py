"""The camera: pose homography, lens distortion and the mappings between the two scans."""

from __future__ import annotations

import math

import cv2
import numpy as np

from monitor.errors import MonitorError
from monitor.geometry import apply_homography
from monitor.synth.fields import _centres


def pose_homography(
    baseline_size: tuple[int, int],
    current_size: tuple[int, int],
    *,
    rotation_deg: float = 0.0,
    scale: float = 1.0,
    translation: tuple[float, float] = (0.0, 0.0),
    perspective: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """Homography mapping CURRENT pixel coordinates onto BASELINE ones for a pose change.

    Parameters
    ----------
    baseline_size, current_size
        ``(width, height)`` of the two images.
    rotation_deg
        Rotation of the painting in CURRENT, counter-clockwise as seen on screen.
    scale
        Magnification of the painting in CURRENT (> 1: it looks larger).
    translation
        Shift ``(tx, ty)`` in CURRENT pixels of the baseline centre from the current centre.
    perspective
        ``(px, py)``: relative change of scale at the right / bottom edge (tilt).

    Returns
    -------
    numpy.ndarray
        3 x 3 float64, corner-origin coordinates, ``H[2, 2] == 1``.
    """
    bw, bh = baseline_size
    cw, ch = current_size
    t1 = np.array([[1, 0, -bw / 2], [0, 1, -bh / 2], [0, 0, 1]], dtype=np.float64)
    persp = np.array(
        [[1, 0, 0], [0, 1, 0], [perspective[0] / (bw / 2), perspective[1] / (bh / 2), 1]],
        dtype=np.float64,
    )
    a = math.radians(rotation_deg)
    c, s = math.cos(a), math.sin(a)
    sr = np.array([[scale * c, scale * s, 0], [-scale * s, scale * c, 0], [0, 0, 1]])
    t2 = np.array(
        [[1, 0, cw / 2 + translation[0]], [0, 1, ch / 2 + translation[1]], [0, 0, 1]],
        dtype=np.float64,
    )
    forward = t2 @ sr @ persp @ t1  # baseline -> current
    hom = np.linalg.inv(forward)
    return hom / hom[2, 2]


def _lens_params(size: tuple[int, int]) -> tuple[float, float, float]:
    w, h = size
    return w / 2.0, h / 2.0, 0.5 * math.hypot(w, h)


def distort_points(points: np.ndarray, k1: float, size: tuple[int, int]) -> np.ndarray:
    """Apply the radial lens model to ideal CURRENT points (N x 2 or ... x 2).

    Parameters
    ----------
    points
        Ideal (undistorted) corner-origin coordinates, last axis ``(x, y)``.
    k1
        Radial coefficient; the image corners move by ``k1 * R`` pixels
        (``R`` = half the image diagonal).
    size
        ``(width, height)`` of the CURRENT image.

    Returns
    -------
    numpy.ndarray
        Observed (distorted) coordinates, same shape.
    """
    cx, cy, rad = _lens_params(size)
    p = np.asarray(points, dtype=np.float64)
    dx, dy = p[..., 0] - cx, p[..., 1] - cy
    f = 1.0 + k1 * (dx * dx + dy * dy) / (rad * rad)
    return np.stack([cx + dx * f, cy + dy * f], axis=-1)


def undistort_points(points: np.ndarray, k1: float, size: tuple[int, int]) -> np.ndarray:
    """Invert :func:`distort_points` (fixed-point iteration, exact to ~1e-9 px for |k1| < 0.05).

    Parameters
    ----------
    points
        Observed corner-origin CURRENT coordinates, last axis ``(x, y)``.
    k1
        Radial coefficient.
    size
        ``(width, height)`` of the CURRENT image.

    Returns
    -------
    numpy.ndarray
        Ideal coordinates, same shape.
    """
    cx, cy, rad = _lens_params(size)
    p = np.asarray(points, dtype=np.float64)
    if k1 == 0.0:
        return p.copy()
    dx, dy = p[..., 0] - cx, p[..., 1] - cy
    ux, uy = dx.copy(), dy.copy()
    for _ in range(12):
        f = 1.0 + k1 * (ux * ux + uy * uy) / (rad * rad)
        ux, uy = dx / f, dy / f
    return np.stack([cx + ux, cy + uy], axis=-1)


def current_to_baseline(
    points: np.ndarray, homography: np.ndarray, lens_k1: float, current_size: tuple[int, int]
) -> np.ndarray:
    """Map observed CURRENT pixel coordinates onto BASELINE coordinates (undistort, then H).

    Parameters
    ----------
    points
        Corner-origin CURRENT coordinates, last axis ``(x, y)``.
    homography
        ``SynthPair.homography``.
    lens_k1
        ``SynthPair.lens_k1``.
    current_size
        ``(width, height)`` of the CURRENT image.

    Returns
    -------
    numpy.ndarray
        Corner-origin BASELINE coordinates, same shape.
    """
    return apply_homography(
        np.asarray(homography, np.float64), undistort_points(points, lens_k1, current_size)
    )


def baseline_to_current(
    points: np.ndarray, homography: np.ndarray, lens_k1: float, current_size: tuple[int, int]
) -> np.ndarray:
    """Map BASELINE coordinates to observed CURRENT pixel coordinates (H^-1, then distort).

    Parameters
    ----------
    points
        Corner-origin BASELINE coordinates, last axis ``(x, y)``.
    homography
        ``SynthPair.homography``.
    lens_k1
        ``SynthPair.lens_k1``.
    current_size
        ``(width, height)`` of the CURRENT image.

    Returns
    -------
    numpy.ndarray
        Corner-origin CURRENT coordinates, same shape.
    """
    inv = np.linalg.inv(np.asarray(homography, np.float64))
    mapped = apply_homography(inv, np.asarray(points, np.float64))
    return distort_points(mapped, lens_k1, current_size)


def warp_current_to_baseline(
    image: np.ndarray,
    homography: np.ndarray,
    lens_k1: float,
    baseline_size: tuple[int, int],
    *,
    interpolation: int = cv2.INTER_LINEAR,
) -> np.ndarray:
    """Resample a CURRENT-frame image onto the baseline grid with the true mapping.

    Parameters
    ----------
    image
        H_c x W_c (x C) array in the CURRENT frame (converted to float32).
    homography, lens_k1
        The pair's ground truth.
    baseline_size
        ``(width, height)`` of the baseline grid.
    interpolation
        OpenCV interpolation flag.

    Returns
    -------
    numpy.ndarray
        float32 on the baseline grid, NaN where the baseline point falls outside CURRENT.
    """
    img = np.asarray(image)
    if img.ndim not in (2, 3):
        raise MonitorError(
            f"warp_current_to_baseline: expected a 2-D or 3-D image, got {img.shape}"
        )
    ch, cw = img.shape[:2]
    bw, bh = baseline_size
    grid = np.stack(np.meshgrid(_centres(bw), _centres(bh)), axis=-1)
    q = baseline_to_current(grid, homography, lens_k1, (cw, ch))
    mx = (q[..., 0] - 0.5).astype(np.float32)
    my = (q[..., 1] - 0.5).astype(np.float32)
    out = cv2.remap(
        img.astype(np.float32),
        mx,
        my,
        interpolation,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(np.nan, np.nan, np.nan, np.nan),
    )
    inside = (mx >= 0) & (my >= 0) & (mx <= cw - 1) & (my <= ch - 1)
    out[~inside] = np.nan
    return out
