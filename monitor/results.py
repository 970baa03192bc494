"""Frozen dataclasses that every layer speaks.

Coordinates everywhere in `monitor` are pixel coordinates of the *baseline*
scan at full resolution unless a name says otherwise: x to the right, y down,
origin at the top-left corner of the top-left pixel (so the centre of pixel
``[row, col]`` is ``(col + 0.5, row + 0.5)``). With this convention a change
of resolution by a factor ``s`` maps a point ``p`` to ``s * p`` exactly.

Heights are relative heights, positive towards the viewer. Photometric
estimates are in units of the baseline pixel pitch (multiply by
``1 / px_per_mm`` for millimetres when the scale is known).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Polarity = Literal["bulge", "recession"]


@dataclass(frozen=True)
class Light:
    """Direction the light comes *from*.

    Parameters
    ----------
    azimuth_deg
        Angle in the picture plane, counter-clockwise as the viewer sees it:
        0 = light from the right, 90 = from the top, 180 = from the left,
        270 = from the bottom.
    elevation_deg
        Angle above the picture plane: 90 = straight on, 10-30 = raking.
    """

    azimuth_deg: float = 180.0
    elevation_deg: float = 30.0

    def vector(self) -> np.ndarray:
        """Unit vector (x right, y down, z towards the viewer) pointing at the lamp."""
        az = math.radians(self.azimuth_deg)
        el = math.radians(self.elevation_deg)
        return np.array(
            [math.cos(el) * math.cos(az), -math.cos(el) * math.sin(az), math.sin(el)],
            dtype=np.float64,
        )


@dataclass(frozen=True)
class ImageData:
    """An image as read from disk (see :func:`monitor.io.read_image`).

    ``pixels`` keep the file's encoding (sRGB-encoded, uint8 or uint16,
    H x W x 3) so that large scans stay compact; use
    :func:`monitor.io.to_linear` for linear light.
    """

    pixels: np.ndarray
    path: str
    bit_depth: int
    source_channels: int
    orientation_applied: int = 1
    exif: dict[str, str] = field(default_factory=dict)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


@dataclass(frozen=True)
class Registration:
    """How CURRENT maps onto BASELINE.

    ``homography`` maps CURRENT pixel coordinates onto BASELINE pixel
    coordinates (3 x 3, full resolution, corner-origin convention).
    ``residual_grid`` is a smooth displacement field, in CURRENT pixels,
    added after the inverse homography: a baseline point ``p`` is found in
    CURRENT at ``H^-1(p) + d(p)``. ``d`` is sampled on a regular grid of
    ``residual_grid.shape[:2]`` nodes spanning the baseline image
    (node ``(i, j)`` at ``x = j * W / (nx - 1)``, ``y = i * H / (ny - 1)``),
    last axis = (dx, dy), and interpolated bicubically between nodes.
    ``None`` means no residual was fitted.
    """

    homography: np.ndarray
    baseline_shape: tuple[int, int]
    current_shape: tuple[int, int]
    n_matches: int
    n_inliers: int
    rmse_homography_px: float
    rmse_px: float
    residual_grid: np.ndarray | None = None
    working_scale: float = 1.0


@dataclass(frozen=True)
class DepthMap:
    """Relative height of one scan (larger = towards the viewer)."""

    height: np.ndarray
    model_id: str
    weights_sha256: str | None
    device: str


@dataclass(frozen=True)
class Alignment:
    """Robust fit ``reference ~= scale * moving + shift`` over unchanged pixels."""

    scale: float
    shift: float
    n_used: int
    inlier_fraction: float


@dataclass(frozen=True)
class ChangeMap:
    """Signed height change on the baseline grid at analysis resolution.

    ``height`` is H' x W' float32, NaN where the scans do not overlap;
    ``scale`` is analysis pixels per baseline pixel (<= 1).
    ``appearance`` marks pixels whose change is chromatic (stains,
    yellowing) and therefore not treated as relief. ``integration_direction``
    is the in-plane light direction along which shading was integrated, when
    it was (integration leaves faint tails along it). ``noise_map`` is a local
    level of detection where noise varies across the canvas (dark paint is
    noisier); ``noise_sigma`` is then its median.
    """

    height: np.ndarray
    scale: float
    method: str
    noise_sigma: float
    appearance: np.ndarray | None = None
    alignment: Alignment | None = None
    model_id: str = ""
    weights_sha256: str | None = None
    integration_direction: tuple[float, float] | None = None  # (ux, uy) when integrated
    noise_map: np.ndarray | None = None  # local level of detection (H' x W'), when known


@dataclass(frozen=True)
class Region:
    """One connected area of significant change, in baseline pixels."""

    id: int
    polarity: Polarity
    centroid: tuple[float, float]
    bbox: tuple[float, float, float, float]
    area_px: float
    peak: float
    mean: float
    significance: float
    area_mm2: float | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "polarity": self.polarity,
            "centroid": [round(self.centroid[0], 2), round(self.centroid[1], 2)],
            "bbox": [round(v, 2) for v in self.bbox],
            "area_px": round(self.area_px, 1),
            "area_mm2": None if self.area_mm2 is None else round(self.area_mm2, 3),
            "peak": float(self.peak),
            "mean": float(self.mean),
            "significance": round(float(self.significance), 3),
        }


@dataclass(frozen=True)
class StageTiming:
    name: str
    seconds: float
    peak_rss_mb: float


@dataclass(frozen=True)
class Comparison:
    """Everything one comparison produced; storage and reports read this."""

    baseline_path: str
    current_path: str
    baseline_shape: tuple[int, int]
    registration: Registration
    change: ChangeMap
    regions: tuple[Region, ...]
    light: Light
    params: dict[str, object]
    timings: tuple[StageTiming, ...]
    software_version: str
    px_per_mm: float | None = None
    preview: np.ndarray | None = None  # baseline at analysis resolution, uint8 (figures)

    @property
    def model_id(self) -> str:
        return self.change.model_id

    @property
    def weights_sha256(self) -> str | None:
        return self.change.weights_sha256


@dataclass(frozen=True)
class ScaledRegion(Region):
    """A :class:`Region` found by the multi-scale detector, with the scale it was found at.

    ``scale_px`` is the pixel pitch, in baseline pixels, of the pyramid level
    where the region is most significant (1 = native resolution, 2, 4, ...);
    ``scale_mm`` is the same in millimetres when ``px_per_mm`` is known.
    ``level`` is that level's index (0 = native). Every :class:`Region` field
    keeps its meaning (baseline full-resolution pixels).
    """

    scale_px: float = 1.0
    scale_mm: float | None = None
    level: int = 0

    def to_dict(self) -> dict[str, object]:
        out = super().to_dict()
        out["scale_px"] = float(self.scale_px)
        out["scale_mm"] = None if self.scale_mm is None else round(float(self.scale_mm), 4)
        out["level"] = int(self.level)
        return out


@dataclass(frozen=True)
class ScaleLevel:
    """One level of the multi-scale change pyramid.

    ``pitch_px`` baseline pixels per level pixel; ``shape`` the level's
    (rows, cols); ``noise_sigma`` the median local level of detection at that
    level (baseline pixel-pitch height units); ``n_candidates`` regions found
    at that level before suppression across levels, ``n_kept`` after;
    ``z_seed`` the seed threshold used at that level, in its sigmas.
    """

    level: int
    pitch_px: float
    shape: tuple[int, int]
    noise_sigma: float
    n_candidates: int
    n_kept: int
    z_seed: float = math.nan


@dataclass(frozen=True)
class MultiScaleChange:
    """Result of :func:`monitor.change.multiscale.multiscale_change`.

    ``regions`` are in baseline full-resolution pixels, most significant
    first, each at the level where it is most significant and reported once.
    ``preview`` is the height change of a coarse level (for figures), NaN
    outside the overlap, ``preview_scale`` its pixels per baseline pixel.
    ``min_detectable_px`` / ``min_detectable_mm`` is the smallest region
    diameter the finest level keeps.
    """

    regions: tuple[ScaledRegion, ...]
    levels: tuple[ScaleLevel, ...]
    preview: np.ndarray
    preview_scale: float
    method: str
    model_id: str
    device: str
    tile: int
    min_detectable_px: float
    min_detectable_mm: float | None
    integration_direction: tuple[float, float]
    timings: tuple[StageTiming, ...] = ()
