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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

Polarity = Literal["bulge", "recession"]
Status = Literal["ok", "identical", "insufficient"]

#: Per-scan depth estimators whose heights are in pixel pitch (model id prefixes).
PIXEL_DEPTH_MODELS = ("monitor/shading-", "monitor/relief-")


def height_units(method: str, model_id: str) -> str:
    """``"px"`` when a change map's heights are in baseline pixel pitch, else ``"rel."``.

    ``photometric``, ``pair`` and ``multilight`` measure in pixel pitch; the ``depth`` route does
    too with the shading and relief estimators (converted to baseline pixels),
    but not with an ``hf:`` model, whose heights stay in the baseline estimate's
    relative units.

    Parameters
    ----------
    method
        Change method (``photometric``, ``pair``, ``depth``).
    model_id
        The change map's model id (for ``depth``: the per-scan estimator's).

    Returns
    -------
    str

    Examples
    --------
    >>> height_units("depth", "monitor/shading-v1"), height_units("depth", "hf:/m")
    ('px', 'rel.')
    """
    if method in ("photometric", "pair", "multilight") or model_id.startswith(PIXEL_DEPTH_MODELS):
        return "px"
    return "rel."
AppearanceClass = Literal["discoloration", "possible loss"]


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
    #: ``residual_grid`` asked for (nodes per side; 0 = off); the fitted one may be smaller
    requested_grid: int = 0
    #: why the fitted residual differs from the request (reduced, not fitted, not used)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Warped:
    """CURRENT content resampled onto the BASELINE grid.

    Returned by :func:`monitor.registration.warp_to_baseline`.

    Unpacks as ``image, valid = warp_to_baseline(...)`` too.
    """

    image: np.ndarray  # float32 H x W (x C), 0 outside ``valid``
    valid: np.ndarray  # bool H x W, where the source point lies inside the image

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter((self.image, self.valid))


@dataclass(frozen=True)
class ReliefInputs:
    """The relief network's inputs for one scan, turned to canonical orientation.

    Unpacks as ``features, turns, gain = relief_inputs(...)`` too.
    """

    features: Any  # torch.Tensor (N_INPUTS, H', W'), canonical orientation
    turns: int  # quarter turns applied (undo with -turns)
    gain: float  # l_z / |l_xy| of the turned light

    def __iter__(self) -> Iterator[Any]:
        return iter((self.features, self.turns, self.gain))


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
    #: share of the overlap the estimate could use (not clipped, masked or too dark)
    usable_fraction: float = 1.0
    delta_e: np.ndarray | None = None  # CIEDE2000 colour difference (H' x W'), when computed
    delta_l: np.ndarray | None = None  # lightness change L*(current) - L*(baseline), idem
    delta_c: np.ndarray | None = None  # chroma change C*ab(current) - C*ab(baseline), idem


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

    def to_dict(
        self, px_per_mm: float | None = None, *, height_in_px: bool = True
    ) -> dict[str, object]:
        """JSON-ready record; pixel keys always, ``*_mm`` keys when ``px_per_mm`` is known.

        Parameters
        ----------
        px_per_mm
            Baseline pixels per millimetre, or None (then every ``*_mm`` key is None).
        height_in_px
            Whether ``peak`` / ``mean`` are in baseline pixel pitch (photometric
            and pair methods) and so convert to mm; relative units never do.

        Examples
        --------
        >>> r = Region(1, "bulge", (40.0, 20.0), (30.0, 10.0, 50.0, 30.0), 300.0, 2.0, 1.0, 9.0)
        >>> r.to_dict(4.0)["centroid_mm"]
        [10.0, 5.0]
        """
        out: dict[str, object] = {
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
        out.update(_mm_keys(self.centroid, self.bbox, px_per_mm))
        ok = bool(px_per_mm) and height_in_px
        out["peak_mm"] = round(self.peak / px_per_mm, 5) if ok and px_per_mm else None
        out["mean_mm"] = round(self.mean / px_per_mm, 5) if ok and px_per_mm else None
        return out


def _mm_keys(
    centroid: tuple[float, float], bbox: tuple[float, float, float, float], px_per_mm: float | None
) -> dict[str, object]:
    if not px_per_mm:
        return {"centroid_mm": None, "bbox_mm": None}
    return {
        "centroid_mm": [round(v / px_per_mm, 2) for v in centroid],
        "bbox_mm": [round(v / px_per_mm, 2) for v in bbox],
    }


@dataclass(frozen=True)
class AppearanceRegion:
    """One connected area of colour / lightness change that is not relief, in baseline pixels.

    ``delta_e_mean`` / ``delta_e_max`` are CIEDE2000 colour differences
    between the scans (after exposure and white balance are matched);
    ``delta_l`` is the mean lightness change (L*, + = lighter). ``kind`` is
    ``discoloration`` (stain, yellowing, darkening) or ``possible loss``
    (lighter and less saturated: ground or canvas showing through). These
    are never bulges or recessions.
    """

    id: int
    kind: AppearanceClass
    centroid: tuple[float, float]
    bbox: tuple[float, float, float, float]
    area_px: float
    delta_e_mean: float
    delta_e_max: float
    delta_l: float
    delta_chroma: float
    area_mm2: float | None = None

    def to_dict(self, px_per_mm: float | None = None) -> dict[str, object]:
        """JSON-ready record (pixel keys, plus ``*_mm`` keys when the scale is known)."""
        out: dict[str, object] = {
            "id": self.id,
            "kind": self.kind,
            "centroid": [round(self.centroid[0], 2), round(self.centroid[1], 2)],
            "bbox": [round(v, 2) for v in self.bbox],
            "area_px": round(self.area_px, 1),
            "area_mm2": None if self.area_mm2 is None else round(self.area_mm2, 3),
            "delta_e_mean": round(self.delta_e_mean, 2),
            "delta_e_max": round(self.delta_e_max, 2),
            "delta_l": round(self.delta_l, 2),
            "delta_chroma": round(self.delta_chroma, 2),
        }
        out.update(_mm_keys(self.centroid, self.bbox, px_per_mm))
        return out


@dataclass(frozen=True)
class Outline:
    """The painting's edges in the baseline image (baseline pixels, ``x0, y0, x1, y1``).

    ``source`` says where it comes from: ``found`` (detected against the wall
    or backing), ``image`` (no edge found: the work fills the frame, so the
    image edge stands for the work's edge) or ``user``.
    """

    bbox: tuple[float, float, float, float]
    source: Literal["found", "image", "user"]

    def to_dict(self, px_per_mm: float | None = None) -> dict[str, object]:
        return {
            "bbox": [round(v, 1) for v in self.bbox],
            "bbox_mm": None if not px_per_mm else [round(v / px_per_mm, 2) for v in self.bbox],
            "source": self.source,
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
    #: ``ok``; ``identical`` (same pixels: no change, nothing measured); ``insufficient``
    #: (too little of the overlap usable: the comparison cannot tell, regions are empty)
    status: Status = "ok"
    #: what the user must read beside the regions, one sentence each
    warnings: tuple[str, ...] = ()
    appearance_regions: tuple[AppearanceRegion, ...] = ()
    outline: Outline | None = None
    normal_map: NormalMap | None = None  # multi-light: the baseline capture's normals
    light_used: LightUsed | None = None  # where the lamp came from, the scans' evidence
    min_detectable_px: float | None = None  # smallest reportable region diameter, baseline px

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

    def to_dict(
        self, px_per_mm: float | None = None, *, height_in_px: bool = True
    ) -> dict[str, object]:
        """As :meth:`Region.to_dict`, with the region's scale."""
        out = super().to_dict(px_per_mm, height_in_px=height_in_px)
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
    min_height_px: float = 0.0  # absolute floor on a region's peak, baseline pixel pitches
    weights_sha256: str | None = None  # the network's weights, for a learned route


@dataclass(frozen=True)
class LightEstimate:
    """Where the scans say the lamp was (see :mod:`monitor.light`).

    ``azimuth_deg`` follows :class:`Light` (0 = from the right, 90 = from the
    top, CCW); NaN when the scans could not tell. ``azimuth_uncertainty_deg``
    is a ~2 sigma half-width; 180 means the end of the axis is unknown (or
    nothing is known). ``axis_deg`` is the azimuth mod 180 and
    ``axis_uncertainty_deg`` its own uncertainty (90 = unknown).
    ``elevation_deg`` is None when not estimated. ``sign_evidence`` is the t
    statistic of the cue that picks the end of the axis (positive:
    ``azimuth_deg``), ``anisotropy`` the strength of the directional shading,
    ``n_tiles`` the tiles the cues were measured on, ``note`` what limited the
    estimate.
    """

    azimuth_deg: float
    azimuth_uncertainty_deg: float
    elevation_deg: float | None
    elevation_uncertainty_deg: float | None
    confidence: float
    method: str
    axis_deg: float
    axis_uncertainty_deg: float
    sign_evidence: float
    anisotropy: float
    n_tiles: int
    note: str = ""

    @property
    def confident(self) -> bool:
        """True when the estimate may override or contradict a claim (confidence >= 0.5)."""
        return self.confidence >= 0.5 and self.azimuth_uncertainty_deg < 180.0

    @property
    def known(self) -> bool:
        """False for "could not tell" (not even the axis); the axis may be known alone."""
        return math.isfinite(self.azimuth_deg)

    def light(self, elevation_deg: float) -> Light:
        """This estimate as a :class:`Light`, with an elevation taken from elsewhere."""
        if not self.known:
            raise ValueError("the scans could not tell where the lamp was")
        el = self.elevation_deg if self.elevation_deg is not None else elevation_deg
        return Light(float(self.azimuth_deg), float(el))

    def to_dict(self) -> dict[str, object]:
        def num(v: float | None) -> float | None:
            return None if v is None or not math.isfinite(v) else round(float(v), 2)

        return {
            "azimuth_deg": num(self.azimuth_deg),
            "azimuth_uncertainty_deg": num(self.azimuth_uncertainty_deg),
            "elevation_deg": num(self.elevation_deg),
            "elevation_uncertainty_deg": num(self.elevation_uncertainty_deg),
            "confidence": round(float(self.confidence), 3),
            "method": self.method,
            "axis_deg": num(self.axis_deg),
            "axis_uncertainty_deg": num(self.axis_uncertainty_deg),
            "sign_evidence": num(self.sign_evidence),
            "note": self.note,
        }


@dataclass(frozen=True)
class LightCheck:
    """A claimed lamp checked against the scans' estimate (:func:`monitor.light.compare_light`).

    ``difference_deg`` is the angle between the given and estimated azimuths
    in [0, 180] (NaN when the estimate could not tell); ``tolerance_deg`` the
    difference beyond which they disagree; ``opposite`` true when the given
    lamp points the other way (bulges would read as recessions);
    ``sign_known`` whether the estimate knew the end of the axis (when not,
    only the axis was checked).
    """

    given: Light
    estimate: LightEstimate
    difference_deg: float
    tolerance_deg: float
    disagrees: bool
    opposite: bool
    sign_known: bool
    message: str

    def to_dict(self) -> dict[str, object]:
        return {
            "given_azimuth_deg": float(self.given.azimuth_deg),
            "given_elevation_deg": float(self.given.elevation_deg),
            "difference_deg": None
            if not math.isfinite(self.difference_deg)
            else round(self.difference_deg, 2),
            "disagrees": self.disagrees,
            "opposite": self.opposite,
            "sign_known": self.sign_known,
            "message": self.message,
            "estimate": self.estimate.to_dict(),
        }


#: Where the lamp of a scan or a comparison came from.
LIGHT_SOURCES = ("given", "sidecar", "ingest", "estimated", "default")


@dataclass(frozen=True)
class LightUsed:
    """The lamp a comparison used, where it came from and what the scans said.

    ``source`` is one of :data:`LIGHT_SOURCES`; ``azimuth_uncertainty_deg``
    the estimate's ~2 sigma half-width when ``source == "estimated"``, else
    None (a claimed lamp carries no stated uncertainty). ``elevation_source``
    says where the elevation came from (the scans do not fix it).
    ``estimate`` is the pair's estimate, ``baseline_estimate`` /
    ``current_estimate`` each scan's; ``check`` the given lamp against the
    pair estimate (None when the lamp was estimated); ``warnings`` what the
    user must be told (a disagreeing claim).
    """

    light: Light
    source: str
    azimuth_uncertainty_deg: float | None
    elevation_source: str
    estimate: LightEstimate | None = None
    baseline_estimate: LightEstimate | None = None
    current_estimate: LightEstimate | None = None
    check: LightCheck | None = None
    warnings: tuple[str, ...] = ()

    @property
    def disagrees(self) -> bool:
        """True when a given lamp disagrees with the scans' evidence."""
        return self.check is not None and self.check.disagrees

    def to_dict(self) -> dict[str, object]:
        def est(e: LightEstimate | None) -> dict[str, object] | None:
            return None if e is None else e.to_dict()

        unc = self.azimuth_uncertainty_deg
        return {
            "azimuth_deg": round(float(self.light.azimuth_deg), 2),
            "elevation_deg": round(float(self.light.elevation_deg), 2),
            "source": self.source,
            "azimuth_uncertainty_deg": None if unc is None else round(float(unc), 2),
            "elevation_source": self.elevation_source,
            "disagrees": self.disagrees,
            "check": None if self.check is None else self.check.to_dict(),
            "estimate": est(self.estimate),
            "baseline_estimate": est(self.baseline_estimate),
            "current_estimate": est(self.current_estimate),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class Capture:
    """A multi-light capture: one camera, one lamp per image (RTI / photometric stereo).

    ``paths`` are the image files in the order of the light file; ``lights`` is
    N x 3 float64, unit vectors pointing *at* each lamp in ``monitor``'s frame
    (x right, y down, z towards the viewer, see :meth:`Light.vector`).
    ``source`` is the light file that was read (``.lp`` or ``.csv``).
    """

    paths: tuple[str, ...]
    lights: np.ndarray = field(repr=False)
    source: str
    size: tuple[int, int]  # (width, height) shared by every image

    @property
    def n_lights(self) -> int:
        return len(self.paths)


@dataclass(frozen=True)
class NormalMap:
    """Per-pixel photometric stereo: albedo, unit normals, confidence, outlier counts.

    ``normals`` is H x W x 3 float32 (x right, y down, z towards the viewer,
    ``n_z > 0``); ``albedo`` H x W (grey) or H x W x 3 float32, linear, relative to
    the lamps' common intensity; ``confidence`` H x W float32 in [0, 1] (0 = could
    not tell: fewer than 3 usable lamps or an ill-conditioned set); ``n_used`` the
    lamps kept at each pixel, ``n_shadow`` / ``n_highlight`` those rejected as
    shadow (too dark or facing away) and highlight (too bright for the Lambertian
    fit); ``residual`` the RMS relative residual of the kept lamps.
    """

    normals: np.ndarray = field(repr=False)
    albedo: np.ndarray = field(repr=False)
    confidence: np.ndarray = field(repr=False)
    n_used: np.ndarray = field(repr=False)
    n_shadow: np.ndarray = field(repr=False)
    n_highlight: np.ndarray = field(repr=False)
    residual: np.ndarray = field(repr=False)
    lights: np.ndarray = field(repr=False)
    device: str = "cpu"

    def gradients(self) -> tuple[np.ndarray, np.ndarray]:
        """Surface slopes ``(dh/dx, dh/dy)`` (x right, y down), from ``-n_x/n_z, -n_y/n_z``."""
        nz = np.maximum(self.normals[..., 2], 1e-3)
        return -self.normals[..., 0] / nz, -self.normals[..., 1] / nz


@dataclass(frozen=True)
class Topography:
    """One scan's relief: height, normals and the files written for it.

    ``source`` says what the height is: ``"multilight"`` (photometric stereo of a
    capture), ``"shading"`` (one photo, relief along its lamp) or
    ``"depth:<model>"`` (one photo, the depicted scene's depth from a network).
    """

    height: np.ndarray = field(repr=False)  # H x W float32, pixel-pitch units
    normal_map: NormalMap
    files: dict[str, str]
    n_lights: int
    n_vertices: int
    px_per_mm: float | None = None
    source: str = "multilight"


#: ``run(baseline_file, current_file, light, px_per_mm) -> Comparison``: one
#: comparison of two files; ``light`` is a :class:`Light` or ``"auto"`` (estimate it).
RunFn = Callable[[Path, Path, Light | Literal["auto"], float | None], Comparison]

#: ``write(comparison, out_dir) -> {name: path}``: a comparison's files written.
WriteFn = Callable[[Comparison, Path], Mapping[str, Path]]
