"""Smooth random fields and pixel-centre grids shared by the renderer's rooms."""

from __future__ import annotations

import cv2
import numpy as np


def _smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.minimum(np.maximum((x - edge0) * (1.0 / (edge1 - edge0)), 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: float) -> np.ndarray:
    """Zero-mean, unit-std smooth random field with about ``cells`` bumps along the long side."""
    h, w = shape
    long_side = max(h, w)
    gh = max(2, round(cells * h / long_side)) + 3
    gw = max(2, round(cells * w / long_side)) + 3
    coarse = rng.standard_normal((gh, gw)).astype(np.float32)
    # crop the interior so that the cubic upsampling has no edge artefacts
    field_ = cv2.resize(
        coarse, (w + 2 * (w // gw), h + 2 * (h // gh)), interpolation=cv2.INTER_CUBIC
    )
    field_ = field_[h // gh : h // gh + h, w // gw : w // gw + w]
    field_ = field_ - field_.mean()
    std = float(field_.std())
    return (field_ / std if std > 0 else field_).astype(np.float32)


def _centres(n: int, ss: int = 1) -> np.ndarray:
    """Corner-origin baseline coordinates of the sample centres of an ``n * ss`` grid."""
    return ((np.arange(n * ss, dtype=np.float32) + 0.5) / ss).astype(np.float32)
