"""The deformations of the support: profiles of bulges, recessions and ridges, blob masks."""

from __future__ import annotations

import math

import numpy as np

from monitor.synth.fields import _centres, _smoothstep
from monitor.synth.specs import _Deformation

#: Profile ``(1 - rho^2)^3`` (compact support rho < 1): max |d/d rho| = 6/sqrt(5) * (4/5)^2.
_PROFILE_MAX_SLOPE = 6.0 / math.sqrt(5.0) * 0.64


def _deformation_patch(d: _Deformation, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Height of one deformation at the grid ``ys[:, None], xs[None, :]``."""
    dx = xs[None, :] - d.cx
    dy = ys[:, None] - d.cy
    if d.kind == "ridge":
        c, s = math.cos(d.angle), math.sin(d.angle)
        u = dx * c + dy * s
        v = -dx * s + dy * c
        core = d.radius - d.width
        du = np.maximum(np.abs(u) - core, 0.0)
        rho2 = (du * du + v * v) / (d.width * d.width)
    else:
        rho2 = (dx * dx + dy * dy) / (d.radius * d.radius)
    prof = np.clip(1.0 - rho2, 0.0, None) ** 3
    return (d.peak * prof).astype(np.float32)


def _add_deformations(
    defs: list[_Deformation], w: int, h: int, ss: int
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Sum of deformations on the ``ss`` grid, and each one's field on the 1x grid."""
    total = np.zeros((h * ss, w * ss), np.float32)
    singles = []
    x1, y1 = _centres(w), _centres(h)
    xs, ys = _centres(w, ss), _centres(h, ss)
    for d in defs:
        b = d.bound + 1.0
        cols = slice(max(int((d.cx - b) * ss), 0), min(int((d.cx + b) * ss) + 1, w * ss))
        rows = slice(max(int((d.cy - b) * ss), 0), min(int((d.cy + b) * ss) + 1, h * ss))
        total[rows, cols] += _deformation_patch(d, xs[cols], ys[rows])
        singles.append(_deformation_patch(d, x1, y1))
    return total, singles


def _blob_alpha(
    blob: tuple[float, float, float, float, float, float, float], xs: np.ndarray, ys: np.ndarray
) -> np.ndarray:
    cx, cy, rad, a2, p2, a3, p3 = blob
    dx = xs[None, :] - cx
    dy = ys[:, None] - cy
    theta = np.arctan2(dy, dx)
    rb = rad * (1.0 + a2 * np.sin(2 * theta + p2) + a3 * np.sin(3 * theta + p3))
    t = np.sqrt(dx * dx + dy * dy) / rb
    return _smoothstep(1.0, 0.55, t).astype(np.float32)
