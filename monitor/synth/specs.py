"""What to render: the pair specification, its truth records, validation and the canned specs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from monitor.errors import MonitorError
from monitor.results import Light, Polarity

Kind = Literal["bulge", "recession", "ridge"]


KINDS: tuple[Kind, ...] = ("bulge", "recession", "ridge")


SUPERSAMPLING = 2


#: Fraction of the peak that defines a truth mask.
MASK_FRACTION = 0.2


#: A ridge's axis makes at least this angle with the light direction (else it is
#: nearly invisible to a single lamp; see FIELD-NOTES "blind spot").
RIDGE_MIN_ANGLE_DEG = 35.0


_MAX_SIDE = 8192


#: Largest side of a spec (:func:`sample_spec`) and of the strip renderer
#: (:func:`monitor.synth.strips.render_pair_files`); whole-image renders stop at 8192.
_MAX_SIDE_STRIPS = 16000


_MIN_SIDE = 64


@dataclass(frozen=True)
class TruthRegion:
    """One deformation added to the later scan's height (baseline grid).

    ``mask`` marks pixels where ``|dh_i| >= 0.2 * |peak|``; ``centroid`` is the mean
    ``(x, y)`` of the mask's pixel centres and ``bbox`` its ``(x0, y0, x1, y1)``
    extent, both corner-origin baseline pixels. ``size_px`` is the support radius
    (bulge, recession) or half-length (ridge); ``peak`` is the signed peak height
    in baseline pixel-pitch units.
    """

    id: int
    kind: Kind
    polarity: Polarity
    centroid: tuple[float, float]
    bbox: tuple[float, float, float, float]
    peak: float
    max_slope: float
    size_px: float
    area_px: int
    mask: np.ndarray = field(compare=False, repr=False)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dictionary without the mask."""
        return {
            "id": self.id,
            "kind": self.kind,
            "polarity": self.polarity,
            "centroid": [round(self.centroid[0], 3), round(self.centroid[1], 3)],
            "bbox": [round(v, 3) for v in self.bbox],
            "peak": round(float(self.peak), 5),
            "max_slope": round(float(self.max_slope), 5),
            "size_px": round(float(self.size_px), 3),
            "area_px": int(self.area_px),
        }


@dataclass(frozen=True)
class AppearanceTruth:
    """A chromatic discoloration in the later scan (not a relief change).

    The albedo inside the blob is multiplied by ``1 + alpha * (factors - 1)``
    per channel, ``alpha`` in [0, 1] with a smooth edge; ``mask`` is
    ``alpha >= 0.5`` on the baseline grid.
    """

    kind: Literal["stain", "bloom"]
    factors: tuple[float, float, float]
    centroid: tuple[float, float]
    bbox: tuple[float, float, float, float]
    area_px: int
    mask: np.ndarray = field(compare=False, repr=False)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dictionary without the mask."""
        return {
            "kind": self.kind,
            "factors": [round(f, 4) for f in self.factors],
            "centroid": [round(self.centroid[0], 3), round(self.centroid[1], 3)],
            "bbox": [round(v, 3) for v in self.bbox],
            "area_px": int(self.area_px),
        }


@dataclass(frozen=True)
class PairSpec:
    """Every knob of a synthetic pair; :func:`render_pair` is deterministic in it.

    Sizes are ``(width, height)`` in pixels. Lengths of deformations are fractions
    of the baseline's long side; slopes are dimensionless (height units per
    baseline pixel). ``exposure`` and ``wb`` are the CURRENT scan's gains relative
    to the baseline. Pose: the painting appears in CURRENT rotated by
    ``rotation_deg`` (counter-clockwise as seen on screen), magnified by ``scale``,
    shifted by ``translation`` pixels and tilted by ``perspective`` (relative scale
    change at the right / bottom edge). ``point_lamp`` is the lamp's distance from
    the canvas centre in long sides (None = lamp at infinity). ``vignetting`` is the
    relative darkening at the image corners of (baseline, current). ``psf_sigma``
    is the Gaussian optical blur of both cameras, in output pixels.
    """

    seed: int = 0
    size: tuple[int, int] = (640, 480)
    current_size: tuple[int, int] | None = None
    painting: str | None = None
    # lighting
    light_baseline: Light = Light(180.0, 25.0)
    light_current: Light = Light(180.0, 25.0)
    ambient: float = 0.05
    point_lamp: float | None = None
    gloss: float = 0.0
    gloss_shininess: float = 60.0
    # base relief (both scans)
    weave_amplitude: float = 0.3
    weave_period: float = 6.0
    impasto: float = 1.6
    # deformations (later scan)
    kinds: tuple[Kind, ...] | None = None
    n_deformations: tuple[int, int] = (2, 5)
    slope_range: tuple[float, float] = (0.05, 0.16)
    size_range: tuple[float, float] = (0.01, 0.05)
    no_change: bool = False
    # appearance changes (later scan)
    discoloration: bool = True
    yellowing: float = 0.0
    exposure: float = 1.0
    wb: tuple[float, float, float] = (1.0, 1.0, 1.0)
    base_exposure: float = 0.6
    # camera of the later scan
    rotation_deg: float = 0.0
    scale: float = 1.0
    translation: tuple[float, float] = (0.0, 0.0)
    perspective: tuple[float, float] = (0.0, 0.0)
    lens_k1: float = 0.0
    vignetting: tuple[float, float] = (0.0, 0.0)
    # sensor and file
    psf_sigma: float = 0.5
    noise: float = 0.007
    bit_depth: int = 8
    jpeg_quality: int | None = None
    wall: float = 0.04

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dictionary of every knob."""
        out: dict[str, object] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, Light):
                value = {"azimuth_deg": value.azimuth_deg, "elevation_deg": value.elevation_deg}
            elif isinstance(value, tuple):
                value = list(value)
            out[name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> PairSpec:
        """Rebuild a spec from :meth:`to_dict` output (e.g. ``truth.json["spec"]``).

        Parameters
        ----------
        data
            Knob names to JSON values.

        Returns
        -------
        PairSpec
        """
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise MonitorError(f"unknown PairSpec field(s): {', '.join(sorted(unknown))}")
        kwargs: dict[str, object] = {}
        for name, value in data.items():
            if isinstance(value, dict) and name.startswith("light_"):
                value = Light(float(value["azimuth_deg"]), float(value["elevation_deg"]))
            elif isinstance(value, list):
                value = tuple(value)
            kwargs[name] = value
        return cls(**kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True)
class SynthPair:
    """A rendered pair and its ground truth.

    ``baseline`` / ``current`` are sRGB-encoded H x W x 3 (uint8 or uint16); when
    ``spec.jpeg_quality`` is set they are the decoded JPEGs and ``jpeg`` holds
    the encoded bytes (what :func:`write_pair` writes for ``fmt="jpg"``).
    ``homography`` maps undistorted CURRENT pixel coordinates onto BASELINE pixel
    coordinates (3 x 3, corner-origin). ``height_change`` is the later scan's
    height minus the baseline's, float32 on the baseline grid, pixel-pitch units.
    """

    baseline: np.ndarray = field(repr=False)
    current: np.ndarray = field(repr=False)
    homography: np.ndarray = field(repr=False)
    lens_k1: float
    height_change: np.ndarray = field(repr=False)
    regions: tuple[TruthRegion, ...]
    discoloration: AppearanceTruth | None
    spec: PairSpec
    jpeg: tuple[bytes, bytes] | None = field(default=None, repr=False)

    def truth_dict(self) -> dict[str, object]:
        """Everything ``truth.json`` holds."""
        bh, bw = self.baseline.shape[:2]
        ch, cw = self.current.shape[:2]
        return {
            "conventions": {
                "coordinates": "pixels, origin at the top-left corner of the top-left pixel; "
                "pixel [row, col] centre at (col + 0.5, row + 0.5); x right, y down",
                "homography": "maps undistorted CURRENT pixel coordinates onto BASELINE "
                "pixel coordinates (row vector [x, y, 1] as a column, divide by w)",
                "lens": "p_distorted = c + (p_ideal - c) * (1 + k1 * (|p_ideal - c| / R)^2) "
                "in CURRENT pixels, c = image centre, R = half the image diagonal",
                "height": "baseline pixel-pitch units, positive towards the viewer; "
                "height_change = current - baseline on the baseline grid",
                "light": "azimuth 0 = from the right, 90 = from the top, 180 = from the left",
                "mask": f"|dh_i| >= {MASK_FRACTION} * |peak_i|",
            },
            "baseline_size": [bw, bh],
            "current_size": [cw, ch],
            "bit_depth": int(self.spec.bit_depth),
            "homography": [[float(v) for v in row] for row in self.homography],
            "lens": {
                "k1": float(self.lens_k1),
                "centre": [cw / 2.0, ch / 2.0],
                "norm_radius": 0.5 * math.hypot(cw, ch),
            },
            "light_baseline": _light_dict(self.spec.light_baseline),
            "light_current": _light_dict(self.spec.light_current),
            "regions": [r.to_dict() for r in self.regions],
            "discoloration": None if self.discoloration is None else self.discoloration.to_dict(),
            "spec": self.spec.to_dict(),
        }


def _light_dict(light: Light) -> dict[str, float]:
    return {"azimuth_deg": float(light.azimuth_deg), "elevation_deg": float(light.elevation_deg)}


@dataclass(frozen=True)
class _Deformation:
    kind: Kind
    cx: float
    cy: float
    radius: float  # support radius (bulge/recession) or half-length (ridge)
    width: float  # ridge half-width (support); equals radius for round ones
    angle: float  # ridge axis angle, radians, image coordinates (x right, y down)
    peak: float  # signed
    slope: float

    @property
    def bound(self) -> float:
        return self.radius


def _check_size(name: str, size: object, max_side: int = _MAX_SIDE) -> tuple[int, int]:
    if (
        not isinstance(size, tuple)
        or len(size) != 2
        or not all(isinstance(v, int | np.integer) for v in size)
    ):
        raise MonitorError(f"{name} must be a (width, height) tuple of ints, got {size!r}")
    w, h = int(size[0]), int(size[1])
    if not (_MIN_SIDE <= w <= max_side and _MIN_SIDE <= h <= max_side):
        hint = (" (larger pairs: monitor.synth.strips.render_pair_files)"
                if max_side < _MAX_SIDE_STRIPS else "")
        raise MonitorError(f"{name} {w}x{h} outside {_MIN_SIDE}..{max_side} px per side{hint}")
    return w, h


def _check_range(name: str, rng_: tuple[float, float], lo: float, hi: float) -> None:
    if len(rng_) != 2 or not (lo <= rng_[0] <= rng_[1] <= hi):
        raise MonitorError(f"{name} must be (min, max) with {lo} <= min <= max <= {hi}, got {rng_}")


def _validate(spec: PairSpec, max_side: int = _MAX_SIDE) -> None:
    _check_size("size", spec.size, max_side)
    if spec.current_size is not None:
        _check_size("current_size", spec.current_size, max_side)
    _check_range("slope_range", spec.slope_range, 1e-4, 0.5)
    _check_range("size_range", spec.size_range, 0.002, 0.2)
    lo, hi = spec.n_deformations
    if not (0 <= lo <= hi <= 50):
        raise MonitorError(
            f"n_deformations must be (min, max) within 0..50, got {spec.n_deformations}"
        )
    if spec.kinds is not None and any(k not in KINDS for k in spec.kinds):
        raise MonitorError(f"kinds must be among {KINDS}, got {spec.kinds}")
    if spec.bit_depth not in (8, 16):
        raise MonitorError(f"bit_depth must be 8 or 16, got {spec.bit_depth}")
    if spec.jpeg_quality is not None:
        if not 1 <= spec.jpeg_quality <= 100:
            raise MonitorError(f"jpeg_quality must be 1..100, got {spec.jpeg_quality}")
        if spec.bit_depth != 8:
            raise MonitorError("jpeg_quality needs bit_depth 8 (JPEG holds 8-bit samples)")
    for light in (spec.light_baseline, spec.light_current):
        if not 1.0 <= light.elevation_deg <= 90.0:
            raise MonitorError(f"light elevation must be 1..90 degrees, got {light.elevation_deg}")
    checks = (
        ("ambient", spec.ambient, 0.0, 0.9),
        ("exposure", spec.exposure, 0.05, 20.0),
        ("base_exposure", spec.base_exposure, 0.01, 10.0),
        ("scale", spec.scale, 0.5, 2.0),
        ("rotation_deg", spec.rotation_deg, -45.0, 45.0),
        ("lens_k1", spec.lens_k1, -0.1, 0.1),
        ("noise", spec.noise, 0.0, 0.2),
        ("psf_sigma", spec.psf_sigma, 0.0, 5.0),
        ("gloss", spec.gloss, 0.0, 5.0),
        ("gloss_shininess", spec.gloss_shininess, 1.0, 1000.0),
        ("weave_amplitude", spec.weave_amplitude, 0.0, 5.0),
        ("weave_period", spec.weave_period, 2.0, 100.0),
        ("impasto", spec.impasto, 0.0, 10.0),
        ("yellowing", spec.yellowing, 0.0, 0.8),
        ("wall", spec.wall, 0.0, 1.0),
    )
    for name, value, lo_, hi_ in checks:
        if not (math.isfinite(value) and lo_ <= value <= hi_):
            raise MonitorError(f"{name} must be within {lo_}..{hi_}, got {value}")
    if len(spec.wb) != 3 or not all(0.2 <= g <= 5.0 for g in spec.wb):
        raise MonitorError(f"wb must be three gains within 0.2..5, got {spec.wb}")
    if len(spec.vignetting) != 2 or not all(0.0 <= v <= 0.9 for v in spec.vignetting):
        raise MonitorError(f"vignetting must be two strengths within 0..0.9, got {spec.vignetting}")
    if spec.point_lamp is not None and not 0.5 <= spec.point_lamp <= 1000.0:
        raise MonitorError(
            f"point_lamp must be 0.5..1000 long sides or None, got {spec.point_lamp}"
        )
    if spec.painting is not None and not Path(spec.painting).is_file():
        raise MonitorError(f"painting not found: {spec.painting}")


def sample_spec(
    seed: int,
    *,
    painting: str | Path | None = None,
    raking: bool = True,
    realism: bool = False,
    no_change: bool = False,
    size: tuple[int, int] = (640, 480),
) -> PairSpec:
    """Draw a randomised spec for benchmarks and training.

    Parameters
    ----------
    seed
        Seeds both the draw of the knobs and the rendering.
    painting
        Photo used as albedo (None: procedural brushwork).
    raking
        Raking light (elevation 15-30 deg) instead of a steeper lamp (35-60 deg).
    realism
        Add lens distortion, vignetting, finite lamp, gloss, varnish yellowing,
        JPEG or 16-bit output (each drawn at random).
    no_change
        No deformation (appearance and pose changes remain).
    size
        Baseline ``(width, height)``.

    Returns
    -------
    PairSpec
    """
    rng = np.random.default_rng([seed, 7919])
    w, h = _check_size("size", size, _MAX_SIDE_STRIPS)
    az = float(rng.choice([180.0, 90.0, 0.0, 270.0], p=[0.5, 0.3, 0.1, 0.1]) + rng.uniform(-10, 10))
    el = float(rng.uniform(15, 30) if raking else rng.uniform(35, 60))
    light_b = Light(az % 360.0, el)
    light_c = Light(
        (az + rng.uniform(-3, 3)) % 360.0, float(np.clip(el + rng.uniform(-1.5, 1.5), 5, 89))
    )
    sign = 1.0 if rng.random() < 0.5 else -1.0
    rotation = sign * float(rng.uniform(0.5, 3.0))
    scale = float(rng.uniform(0.97, 1.03))
    shift = rng.uniform(-0.03, 0.03, 2) * max(w, h)
    persp = rng.uniform(-0.01, 0.01, 2)
    exposure = float(rng.uniform(0.8, 1.25))
    g_r, g_g, g_b = (float(g) for g in rng.uniform(0.9, 1.1, 3))
    wb = (g_r, g_g, g_b)
    discoloration = bool(rng.random() < 0.7)
    knobs: dict[str, object] = {}
    if realism:
        corner_px = rng.uniform(2.0, 8.0) * (1 if rng.random() < 0.5 else -1)
        knobs["lens_k1"] = float(corner_px / (0.5 * math.hypot(w, h)))
        knobs["vignetting"] = (float(rng.uniform(0.0, 0.15)), float(rng.uniform(0.05, 0.3)))
        knobs["point_lamp"] = float(rng.uniform(1.5, 4.0)) if rng.random() < 0.7 else None
        knobs["gloss"] = float(rng.uniform(0.1, 0.4)) if rng.random() < 0.6 else 0.0
        knobs["yellowing"] = float(rng.uniform(0.0, 0.12))
        knobs["noise"] = float(rng.uniform(0.005, 0.01))
        if rng.random() < 0.5:
            knobs["jpeg_quality"] = int(rng.integers(85, 96))
        elif rng.random() < 0.3:
            knobs["bit_depth"] = 16
    else:
        knobs["noise"] = 0.005
    return PairSpec(
        seed=int(seed),
        size=(w, h),
        painting=None if painting is None else str(painting),
        light_baseline=light_b,
        light_current=light_c,
        rotation_deg=rotation,
        scale=scale,
        translation=(float(shift[0]), float(shift[1])),
        perspective=(float(persp[0]), float(persp[1])),
        exposure=exposure,
        wb=wb,
        discoloration=discoloration,
        no_change=no_change,
        **knobs,  # type: ignore[arg-type]
    )


def demo_spec(seed: int = 1, size: tuple[int, int] = (1280, 960)) -> PairSpec:
    """THE sample pair of ``sample_data/``.

    Raking light from the left (azimuth 180, elevation 25) drifting ~2 degrees in
    the later scan; 2 bulges, 2 recessions and 1 ridge; rotation 1.5 deg, scale
    1.02, ~15 px shift, mild perspective; exposure x1.15, a white-balance change,
    one chromatic stain; noise; 8-bit PNG; no lens distortion.

    Parameters
    ----------
    seed
        Seed of the rendering.
    size
        Baseline ``(width, height)``; shifts scale with the long side.

    Returns
    -------
    PairSpec
    """
    k = max(size) / 1280.0
    return PairSpec(
        seed=seed,
        size=size,
        light_baseline=Light(180.0, 25.0),
        light_current=Light(178.4, 26.2),
        kinds=("bulge", "recession", "ridge", "bulge", "recession"),
        slope_range=(0.08, 0.14),
        size_range=(0.03, 0.05),
        discoloration=True,
        exposure=1.15,
        wb=(1.06, 1.0, 0.92),
        rotation_deg=1.5,
        scale=1.02,
        translation=(12.0 * k, -9.0 * k),
        perspective=(0.008, -0.005),
        noise=0.007,
        bit_depth=8,
    )
