"""Plane projective geometry shared by the renderer and registration.

Below both :mod:`monitor.synth` (which renders a camera pose as a homography)
and :mod:`monitor.registration` (which estimates one), so neither keeps its
own copy of the point mapping.
"""

from __future__ import annotations

import numpy as np

__all__ = ["apply_homography"]


def apply_homography(hom: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a 3 x 3 homography to points ``(..., 2)`` (x, y); NaN where ``w <= 0``.

    Parameters
    ----------
    hom
        3 x 3 homography.
    pts
        Points, last axis (x, y); any leading shape.

    Returns
    -------
    numpy.ndarray
        float64, same shape as ``pts``; points mapped behind the camera
        (``w <= 0``) are NaN.

    Examples
    --------
    >>> apply_homography(np.diag([2.0, 2.0, 1.0]), np.array([[1.0, 3.0]])).tolist()
    [[2.0, 6.0]]
    """
    pts = np.asarray(pts, dtype=np.float64)
    num = pts @ hom[:2, :2].T + hom[:2, 2]
    den = pts @ hom[2, :2] + hom[2, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den[..., None]
    out[den <= 0] = np.nan
    return out
