"""Relief from shading, physically based, no weights.

Under a lamp of direction ``l`` a small height field ``h`` changes the log
shading by about ``-(l_xy . grad h) / l_z`` (FIELD-NOTES.md). The derivative
of ``h`` along the light's direction in the picture plane is therefore
observed, and ``h`` follows by integrating along that direction
(:func:`integrate_two_sided`, leaky integrators run with and against the
light, in the Fourier domain). The component of ``h`` perpendicular to the
light is invisible to a single lamp and is only smoothed.

The two operations live in :mod:`monitor.photometry`; they serve the
per-scan estimator here (one scan: its log luminance, high-passed, taken as
shading -- paint is mistaken for relief) and the photometric change method
(two scans: their log ratio cancels the paint).
"""

from __future__ import annotations

import numpy as np
import torch

from monitor.checks import check_image

# the physics lives in monitor.photometry; re-exported here for older imports
from monitor.photometry import (
    MIN_IN_PLANE,
    in_plane_direction,
    integrate_two_sided,
    log_luminance,
    smooth_background,
)
from monitor.results import DepthMap, Light

__all__ = [
    "MIN_IN_PLANE",
    "ShadingEstimator",
    "in_plane_direction",
    "integrate_two_sided",
    "log_luminance",
    "smooth_background",
]


class ShadingEstimator:
    """Per-scan relief from shading: high-passed log luminance integrated along the light.

    Paint (albedo) variations are read as relief too: this estimator is only
    meaningful in differences of two scans of the same painting, and even
    there a discoloration reads as relief. It has no weights.

    Examples
    --------
    A 3 px bump on flat grey paint, lit from the left at 30 degrees, is found
    where it is (within a pixel):

    >>> from monitor.depth.photometric_stereo import normals_from_height
    >>> light = Light(180, 30)
    >>> yy, xx = np.mgrid[0:96, 0:128]
    >>> bump = 3.0 * np.exp(-((xx - 64) ** 2 + (yy - 48) ** 2) / 80.0)
    >>> shade = np.clip(normals_from_height(bump) @ light.vector(), 0, 1)
    >>> rgb = np.repeat(0.5 * shade[..., None], 3, axis=2).astype(np.float32)
    >>> depth = ShadingEstimator().estimate(rgb, light)
    >>> row, col = np.unravel_index(np.argmax(depth.height), depth.height.shape)
    >>> depth.height.shape, int(row), abs(int(col) - 64) <= 1
    ((96, 128), 48, True)
    """

    name = "shading"
    model_id = "monitor/shading-v1"
    weights_sha256: str | None = None

    def __init__(self, device: torch.device | None = None, background_frac: float = 0.08) -> None:
        self.device = device or torch.device("cpu")
        self.background_frac = background_frac

    def estimate(self, rgb_linear: np.ndarray, light: Light) -> DepthMap:
        check_image(rgb_linear, "H W 3", name="shading estimator: linear RGB")
        ux, uy, gain = in_plane_direction(light)
        with torch.inference_mode():
            t = torch.from_numpy(np.ascontiguousarray(rgb_linear, dtype=np.float32)).to(self.device)
            t = t.permute(2, 0, 1).clamp_min(0)  # resampling overshoot: no log of negatives
            lum = log_luminance(t)
            weight = torch.ones_like(lum)
            sigma = self.background_frac * max(lum.shape)
            hp = lum - smooth_background(lum, weight, sigma)
            # the linear integral: paint reads as relief everywhere, tails are moot
            _, height = integrate_two_sided(-hp * gain, (ux, uy))
        return DepthMap(
            height=height.cpu().numpy().astype(np.float32),
            model_id=self.model_id,
            weights_sha256=None,
            device=str(self.device),
        )
