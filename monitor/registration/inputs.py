"""Entry checks of the registration stages (images as read from disk, Registration records)."""

from __future__ import annotations

import numpy as np

from monitor.checks import check_image
from monitor.errors import MonitorError
from monitor.results import Registration


def _check_image(image: object, name: str) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise MonitorError(f"{name} must be a numpy array, got {type(image).__name__}")
    check_image(image, "H W | H W 1 | H W 3 | H W 4", name=name,
                dtype=(np.uint8, np.uint16))
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if min(image.shape[:2]) < 64:
        raise MonitorError(f"{name} is too small to register: {image.shape[1]}x{image.shape[0]} px")
    return image


def _check_registration(reg: object) -> Registration:
    if not isinstance(reg, Registration):
        raise MonitorError(f"expected a Registration, got {type(reg).__name__}")
    h = np.asarray(reg.homography, dtype=np.float64)
    if h.shape != (3, 3) or not np.all(np.isfinite(h)):
        raise MonitorError("registration homography must be a finite 3 x 3 matrix")
    if reg.residual_grid is not None:
        g = np.asarray(reg.residual_grid)
        if g.ndim != 3 or g.shape[2] != 2 or min(g.shape[:2]) < 3:
            raise MonitorError(f"residual grid must be ny x nx x 2 (>= 3 nodes), got {g.shape}")
    return reg
