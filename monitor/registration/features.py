"""Features: the working grey image, SIFT candidates, plausibility of a homography."""

from __future__ import annotations

import cv2
import numpy as np

from monitor.errors import MonitorError
from monitor.geometry import apply_homography

_SIFT_MAX_FEATURES = 20000


_BRUTE_FORCE_PAIRS = 1e7  # exact matching below this many descriptor pairs, FLANN above


def _work_grey(image: np.ndarray, max_px: int) -> tuple[np.ndarray, float, float]:
    """8-bit contrast-normalised grey image at working resolution and its (sx, sy)."""
    h, w = image.shape[:2]
    s = min(1.0, max_px / max(h, w))
    ww, wh = max(1, round(w * s)), max(1, round(h * s))
    src = image[:, :, :3] if image.ndim == 3 and image.shape[2] == 4 else image
    small = src if (ww, wh) == (w, h) else cv2.resize(src, (ww, wh), interpolation=cv2.INTER_AREA)
    if small.ndim == 3:
        small = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    grey = small.astype(np.float32)
    lo, hi = np.percentile(grey, (0.5, 99.5))
    if hi - lo < 1e-3:  # flat image: nothing to stretch
        grey8 = np.zeros(grey.shape, np.uint8)
    else:
        grey8 = np.clip((grey - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
    return clahe.apply(grey8), ww / w, wh / h


def _candidates(
    pts: np.ndarray, weight: np.ndarray, shape: tuple[int, int], cells: int
) -> np.ndarray:
    """Refinement centres: per cell of a cells x cells grid over the BASELINE, the
    strongest inlier, or the cell centre when the cell holds none (weak texture that
    SIFT missed can still be good enough for patch matching)."""
    h, w = shape
    cx = np.clip((pts[:, 0] * cells / w).astype(np.int64), 0, cells - 1)
    cy = np.clip((pts[:, 1] * cells / h).astype(np.int64), 0, cells - 1)
    cell = cy * cells + cx
    order = np.lexsort((-weight, cell))
    first = np.ones(len(order), bool)
    first[1:] = cell[order][1:] != cell[order][:-1]
    chosen = pts[order[first]]
    empty = np.setdiff1d(np.arange(cells * cells), cell)
    centre = np.stack(
        [(empty % cells + 0.5) * w / cells, (empty // cells + 0.5) * h / cells], axis=1
    )
    return np.concatenate([chosen, centre])


def _check_plausible(h: np.ndarray, current_shape: tuple[int, int]) -> None:
    hc, wc = current_shape
    corners = np.array([[0, 0], [wc, 0], [wc, hc], [0, hc]], dtype=np.float64)
    den = corners @ h[2, :2] + h[2, 2]
    if np.any(den <= 0):
        raise MonitorError("implausible registration: the homography folds the image (horizon)")
    m = apply_homography(h, corners)
    edges = np.roll(m, -1, axis=0) - m
    cross = (
        edges[:, 0] * np.roll(edges, -1, axis=0)[:, 1] - edges[:, 1] * np.roll(edges, -1, 0)[:, 0]
    )
    if np.any(cross <= 0):
        raise MonitorError("implausible registration: the homography flips or twists the image")
    # local area scale (Jacobian determinant) at the corners: det(H) / w^3
    local = np.linalg.det(h) / den**3
    scale = float(np.sqrt(abs(cv2.contourArea(m.astype(np.float32))) / (wc * hc)))
    if not 0.25 <= scale <= 4.0:
        raise MonitorError(f"implausible registration: scale {scale:.2f} outside 0.25..4")
    if np.any(local <= 0) or float(local.max() / local.min()) > 3.0:
        raise MonitorError(
            "implausible registration: perspective too strong for a flat painting "
            f"(local scale varies {float(local.max() / local.min()):.1f}x across the image)"
        )
