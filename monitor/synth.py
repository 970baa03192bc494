"""Synthetic canvas renderer: the one place synthetic scan pairs are made.

Sample data, tests, the benchmark and training data all call :func:`render_pair`.
The model follows ``FIELD-NOTES.md``:

* scene = albedo (linear RGB) + height field (baseline pixel-pitch units, positive
  towards the viewer), both on the BASELINE grid (corner-origin coordinates, the
  centre of pixel ``[row, col]`` is ``(col + 0.5, row + 0.5)``);
* base relief in both scans: canvas weave + impasto along some brush strokes;
* the later scan adds smooth deformations (bulge, recession, ridge) to the height,
  a chromatic discoloration blob and optional varnish yellowing to the albedo;
* shading is Lambertian, ``ambient + (1 - ambient) * max(n . l, 0) / l_z``, where
  ``l_z`` is the baseline lamp's elevation sine (a flat surface under the baseline
  lamp has shading 1), with optional finite-distance lamp and Blinn-Phong gloss;
* the camera of the later scan sees the scene through a homography and optional
  radial lens distortion; the scene is rendered with 2x supersampling and
  area-downsampled, so both scans share the same pixel footprint;
* exposure, white balance, vignetting, noise, sRGB encoding, quantisation, JPEG.

Ground truth: ``SynthPair.homography`` maps CURRENT pixel coordinates (after
undistortion, see :func:`undistort_points`) onto BASELINE pixel coordinates, both
corner-origin. Lens model, in CURRENT pixels with centre ``c`` (image centre) and
``R`` (half the image diagonal)::

    p_distorted = c + (p_ideal - c) * (1 + k1 * (|p_ideal - c| / R) ** 2)

Not modelled: cast shadows, inter-reflections, sub-surface scattering, sensor
demosaicing, motion blur, defocus.
"""

from __future__ import annotations

import colorsys
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import tifffile

from monitor.errors import MonitorError
from monitor.geometry import apply_homography
from monitor.io import linear_to_srgb, srgb_to_linear
from monitor.results import Light, Polarity

Kind = Literal["bulge", "recession", "ridge"]

KINDS: tuple[Kind, ...] = ("bulge", "recession", "ridge")
SUPERSAMPLING = 2
#: Profile ``(1 - rho^2)^3`` (compact support rho < 1): max |d/d rho| = 6/sqrt(5) * (4/5)^2.
_PROFILE_MAX_SLOPE = 6.0 / math.sqrt(5.0) * 0.64
#: Fraction of the peak that defines a truth mask.
MASK_FRACTION = 0.2
#: A ridge's axis makes at least this angle with the light direction (else it is
#: nearly invisible to a single lamp; see FIELD-NOTES "blind spot").
RIDGE_MIN_ANGLE_DEG = 35.0

_MAX_SIDE = 8192
_MIN_SIDE = 64


# --------------------------------------------------------------------------- data


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


# --------------------------------------------------------------------------- helpers


#: Which of ``../shared/paintings`` each use may see (file stems). Training
#: never sees the validation or test paintings; the benchmark's test pairs use
#: only the test paintings (plus procedural canvases with test seeds).
TRAIN_PAINTINGS = (
    "hokusai_great_wave_off_kanagawa",
    "monticelli_bouquet_of_flowers",
    "vangogh_night_cafe",
)
VALIDATION_PAINTINGS = ("turner_the_shipwreck",)
TEST_PAINTINGS = (
    "vangogh_starry_night",
    "vangogh_wheat_field_with_cypresses",
    "vangogh_self_portrait_straw_hat",
    "gauguin_three_tahitian_women",
)
#: Seed ranges of synthetic pairs, disjoint by use.
TRAIN_SEEDS = range(1_000_000, 2_000_000)
VALIDATION_SEEDS = range(2_000_000, 2_100_000)
TEST_SEEDS = range(0, 100_000)


def paintings_for(split: str, root: Path | None = None) -> list[Path]:
    """The paintings of one split (``train``, ``validation``, ``test``) that are present.

    Returns an empty list when ``../shared/paintings`` is absent.
    """
    names = {"train": TRAIN_PAINTINGS, "validation": VALIDATION_PAINTINGS, "test": TEST_PAINTINGS}
    if split not in names:
        raise MonitorError(f"unknown split {split!r}; use train, validation or test")
    return [p for p in list_paintings(root) if p.stem in names[split]]


def list_paintings(root: Path | None = None) -> list[Path]:
    """JPEG photographs of paintings usable as albedo.

    Parameters
    ----------
    root
        Folder to list; default ``../shared/paintings`` relative to the repository
        root (the folder above the ``monitor`` package).

    Returns
    -------
    list of Path
        Sorted ``*.jpg`` / ``*.jpeg`` files; empty when the folder is absent.
    """
    if root is None:
        root = Path(__file__).resolve().parents[1].parent / "shared" / "paintings"
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.suffix.lower() in {".jpg", ".jpeg"})


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


# --------------------------------------------------------------------------- albedo


def _palette(rng: np.random.Generator, n: int = 7) -> np.ndarray:
    """Linear-RGB palette with a dominant hue family, an accent and darks / lights."""
    h0 = rng.random()
    offsets = [0.0, 0.04, -0.05, 0.09, 0.5, 0.45, -0.12, 0.02]
    colours = []
    for i in range(n):
        hue = (h0 + offsets[i % len(offsets)] + rng.normal(0.0, 0.02)) % 1.0
        sat = rng.uniform(0.25, 0.8)
        val = rng.uniform(0.25, 0.95) if i % 3 else rng.uniform(0.55, 0.95)
        colours.append(colorsys.hsv_to_rgb(hue, sat, val))
    return srgb_to_linear(np.asarray(colours, dtype=np.float32))


def _orientation_from_image(lin: np.ndarray) -> np.ndarray:
    """Local stroke direction (radians) of a photo: along iso-luminance lines."""
    lum = lin @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    gx = cv2.Sobel(lum, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(lum, cv2.CV_32F, 0, 1, ksize=3)
    sigma = max(2.0, max(lum.shape) / 150.0)
    jxx = cv2.GaussianBlur(gx * gx, (0, 0), sigma)
    jyy = cv2.GaussianBlur(gy * gy, (0, 0), sigma)
    jxy = cv2.GaussianBlur(gx * gy, (0, 0), sigma)
    return (0.5 * np.arctan2(2.0 * jxy, jxx - jyy) + 0.5 * np.pi).astype(np.float32)


def _brushwork(
    rng: np.random.Generator,
    w: int,
    h: int,
    *,
    colour_field: np.ndarray | None,
    palette: np.ndarray | None,
    orientation: np.ndarray,
    impasto: float,
) -> tuple[np.ndarray | None, np.ndarray]:
    """Paint layered oriented strokes; returns (albedo or None, impasto height).

    Colour is painted only when ``colour_field`` is given (procedural albedo);
    otherwise only the impasto strokes are laid (relief for a photo albedo).
    """
    long_side = max(w, h)
    albedo = None if colour_field is None else colour_field.copy()
    height = np.zeros((h, w), np.float32)
    # (length range as a fraction of the long side, shortest length in px, width/length,
    #  coverage, p(impasto)); the px floor keeps small canvases fast and strokes visible
    layers = (
        ((0.05, 0.12), 24.0, (0.25, 0.45), 1.3, 0.10),
        ((0.025, 0.06), 12.0, (0.22, 0.4), 1.4, 0.25),
        ((0.012, 0.03), 7.0, (0.2, 0.35), 0.6, 0.40),
    )
    paint = colour_field is not None
    for (l_lo, l_hi), l_min, (r_lo, r_hi), coverage, p_imp in layers:
        len_lo = max(l_lo * long_side, l_min)
        len_hi = max(l_hi * long_side, len_lo)
        mean_area = (0.5 * (len_lo + len_hi)) ** 2 * 0.5 * (r_lo + r_hi) * 0.75
        n = int(coverage * w * h / mean_area)
        cxs = rng.uniform(0, w, n)
        cys = rng.uniform(0, h, n)
        lengths = rng.uniform(len_lo, len_hi, n)
        ratios = rng.uniform(r_lo, r_hi, n)
        jitter = rng.normal(0.0, 0.25, n)
        curvs = rng.normal(0.0, 0.15, n)
        opac = rng.uniform(0.55, 0.95, n)
        dry = rng.uniform(0.0, 0.8, n)
        is_imp = rng.random(n) < p_imp
        amps = impasto * rng.uniform(0.35, 1.0, n)
        tint = rng.normal(0.0, 0.08, (n, 3))
        pick = rng.random(n) < 0.06
        pal_idx = rng.integers(0, 1 if palette is None else len(palette), n)
        seeds = rng.integers(0, 2**31 - 1, n)
        for i in range(n):
            if not paint and (not is_imp[i] or impasto <= 0):
                continue
            half_len = 0.5 * lengths[i]
            half_wid = max(1.5, half_len * ratios[i])
            cx, cy = cxs[i], cys[i]
            r = half_len + half_wid + 2.0
            x0, x1 = max(int(cx - r), 0), min(int(cx + r) + 1, w)
            y0, y1 = max(int(cy - r), 0), min(int(cy + r) + 1, h)
            if x1 <= x0 or y1 <= y0:
                continue
            theta = orientation[min(int(cy), h - 1), min(int(cx), w - 1)] + jitter[i]
            c, s = math.cos(theta), math.sin(theta)
            dx = (np.arange(x0, x1, dtype=np.float32) + 0.5 - cx)[None, :]
            dy = (np.arange(y0, y1, dtype=np.float32) + 0.5 - cy)[:, None]
            u = dx * c + dy * s
            v = -dx * s + dy * c
            v = v - curvs[i] * u * u / half_len
            alpha = _smoothstep(1.0, 0.7, np.abs(u) / half_len) * _smoothstep(
                1.0, 0.72, np.abs(v) / half_wid
            )
            if not alpha.any():
                continue
            local = np.random.default_rng(int(seeds[i]))
            nb = max(4, int(2.0 * half_wid / 1.3))
            knots = local.standard_normal(nb + 1).astype(np.float32)
            pos = np.minimum(np.maximum((v + half_wid) * (0.5 * nb / half_wid), 0.0), nb - 1e-3)
            k = pos.astype(np.int32)
            frac = pos - k
            bristle = knots[k] * (1.0 - frac) + knots[k + 1] * frac
            along = np.clip(0.5 + 0.5 * u / half_len, 0.0, 1.0)
            if paint:
                assert albedo is not None and colour_field is not None
                a = alpha * opac[i] * (1.0 - dry[i] * along**2 * (0.5 - 0.5 * np.tanh(2 * bristle)))
                if pick[i] and palette is not None:
                    base = palette[pal_idx[i]]
                else:
                    base = colour_field[min(int(cy), h - 1), min(int(cx), w - 1)]
                col = np.clip(base * (1.0 + tint[i]), 0.02, 0.95).astype(np.float32)
                shade = 1.0 + 0.07 * bristle
                patch = albedo[y0:y1, x0:x1]
                patch *= 1.0 - a[..., None]
                patch += (a * shade)[..., None] * col[None, None, :]
            if is_imp[i] and impasto > 0:
                av = np.abs(v)
                ridge_w = max(1.2, 0.2 * half_wid)
                body = 0.45 * (1.0 + 0.35 * bristle) * _smoothstep(1.0, 0.6, av / half_wid)
                edges = np.exp(-(((av - 0.8 * half_wid) / ridge_w) ** 2))
                taper = _smoothstep(1.0, 0.6, np.abs(u) / half_len) * (0.6 + 0.4 * along)
                height[y0:y1, x0:x1] += amps[i] * taper * (body + 0.55 * edges)
    height = cv2.GaussianBlur(height, (0, 0), 0.6)
    return albedo, height


def _procedural_albedo(
    rng: np.random.Generator, w: int, h: int, impasto: float
) -> tuple[np.ndarray, np.ndarray]:
    palette = _palette(rng)
    # large colour zones: a coarse grid of palette colours, softly blended
    gh, gw = rng.integers(3, 6), rng.integers(3, 6)
    idx = rng.integers(0, len(palette), (gh, gw))
    sw, sh = max(8, w // 8), max(8, h // 8)  # blur at 1/8 scale: same look, 60x cheaper
    zones = cv2.resize(palette[idx], (sw, sh), interpolation=cv2.INTER_CUBIC)
    zones = cv2.GaussianBlur(zones, (0, 0), max(sw, sh) / 25.0)
    zones = cv2.resize(zones, (w, h), interpolation=cv2.INTER_LINEAR)
    zones = np.clip(zones, 0.03, 0.9).astype(np.float32)
    theta0 = rng.uniform(0, np.pi)
    orientation = (theta0 + 0.9 * _smooth_noise(rng, (h, w), 4.0)).astype(np.float32)
    albedo, height = _brushwork(
        rng, w, h, colour_field=zones, palette=palette, orientation=orientation, impasto=impasto
    )
    assert albedo is not None
    grain = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 0.8)
    albedo = albedo * (1.0 + 0.05 * grain)[..., None]
    return np.clip(albedo, 0.03, 0.9).astype(np.float32), height


def _painting_albedo(
    rng: np.random.Generator, path: Path, w: int, h: int, impasto: float
) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            rgb = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    except OSError as exc:
        raise MonitorError(f"cannot read painting {path}: {exc}") from exc
    ph, pw = rgb.shape[:2]
    target = w / h
    if pw / ph > target:  # too wide: crop the sides
        cw = max(1, round(ph * target))
        x0 = (pw - cw) // 2
        rgb = rgb[:, x0 : x0 + cw]
    else:
        ch = max(1, round(pw / target))
        y0 = (ph - ch) // 2
        rgb = rgb[y0 : y0 + ch]
    interp = cv2.INTER_AREA if rgb.shape[1] >= w else cv2.INTER_CUBIC
    lin = srgb_to_linear(cv2.resize(rgb, (w, h), interpolation=interp).astype(np.float32) / 255.0)
    albedo = np.clip(0.03 + 0.87 * lin, 0.03, 0.9).astype(np.float32)
    orientation = _orientation_from_image(albedo)
    _, height = _brushwork(
        rng, w, h, colour_field=None, palette=None, orientation=orientation, impasto=impasto
    )
    return albedo, height


# --------------------------------------------------------------------------- relief


def _weave(
    rng: np.random.Generator, w: int, h: int, ss: int, amplitude: float, period: float
) -> np.ndarray:
    """Plain-weave canvas relief on the supersampled grid (baseline px units)."""
    hs, ws = h * ss, w * ss
    angle = math.radians(rng.uniform(-3.0, 3.0))
    ratio = rng.uniform(0.9, 1.1)  # warp / weft thread count differ a little
    jit_u = 0.35 * _smooth_noise(rng, (hs, ws), 6.0)
    jit_v = 0.35 * _smooth_noise(rng, (hs, ws), 6.0)
    if amplitude <= 0:
        return np.zeros((hs, ws), np.float32)
    x = _centres(w, ss)[None, :]
    y = _centres(h, ss)[:, None]
    c, s = math.cos(angle), math.sin(angle)
    u = (2 * np.pi / period) * (x * c + y * s) + jit_u
    v = (2 * np.pi / (period * ratio)) * (-x * s + y * c) + jit_v
    wv = 0.6 * np.sin(u) * np.sin(v) + 0.2 * (np.cos(2 * u) + np.cos(2 * v))
    return (amplitude * wv).astype(np.float32)


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


# --------------------------------------------------------------------------- geometry


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


# --------------------------------------------------------------------------- shading


def _shading(
    height: np.ndarray,
    ss: int,
    light: Light,
    lz_ref: float,
    spec: PairSpec,
    long_side: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Lambertian shading (flat = 1 under the baseline lamp) and specular term."""
    gy, gx = np.gradient(height, 1.0 / ss)
    gx = gx.astype(np.float32)
    gy = gy.astype(np.float32)
    inv = 1.0 / np.sqrt(1.0 + gx * gx + gy * gy)
    lv = light.vector().astype(np.float32)
    hs, ws = height.shape
    if spec.point_lamp is None:
        lx, ly, lz = (float(c) for c in lv)
        intensity: np.ndarray | float = 1.0
    else:
        dist = spec.point_lamp * long_side
        bw, bh = ws / ss, hs / ss
        lamp = np.array([bw / 2, bh / 2, 0.0], np.float32) + dist * lv
        vx = lamp[0] - _centres(int(bw), ss)[None, :]
        vy = lamp[1] - _centres(int(bh), ss)[:, None]
        vz = lamp[2] - height
        r = np.sqrt(vx * vx + vy * vy + vz * vz)
        lx, ly, lz = vx / r, vy / r, vz / r
        intensity = (dist / r) ** 2
    ndotl = (-gx * lx - gy * ly + lz) * inv
    lit = np.maximum(ndotl, 0.0)
    shade = spec.ambient + (1.0 - spec.ambient) * lit * intensity / lz_ref
    if spec.gloss > 0:
        hx, hy, hz = lx, ly, lz + 1.0
        hn = np.sqrt(hx * hx + hy * hy + hz * hz)
        ndoth = np.maximum((-gx * hx - gy * hy + hz) * inv / hn, 0.0)
        specular = spec.gloss * ndoth**spec.gloss_shininess * intensity * (ndotl > 0)
    else:
        specular = np.zeros_like(shade)
    return shade.astype(np.float32), np.asarray(specular, np.float32)


def _vignette(w: int, h: int, strength: float) -> np.ndarray:
    if strength <= 0:
        return np.ones((h, w), np.float32)
    cx, cy, rad = _lens_params((w, h))
    dx = _centres(w)[None, :] - cx
    dy = _centres(h)[:, None] - cy
    return (1.0 - strength * (dx * dx + dy * dy) / (rad * rad)).astype(np.float32)


# --------------------------------------------------------------------------- placement


def _place(
    rng: np.random.Generator,
    radius: float,
    taken: list[tuple[float, float, float]],
    w: int,
    h: int,
    inv_h: np.ndarray,
    csize: tuple[int, int],
    k1: float,
) -> tuple[float, float] | None:
    long_side = max(w, h)
    margin = 0.02 * long_side + 2.0
    gap = 0.015 * long_side + 2.0
    cw, ch = csize
    for _ in range(300):
        lo_x, hi_x = radius + margin, w - radius - margin
        lo_y, hi_y = radius + margin, h - radius - margin
        if hi_x <= lo_x or hi_y <= lo_y:
            return None
        cx, cy = rng.uniform(lo_x, hi_x), rng.uniform(lo_y, hi_y)
        if any(math.hypot(cx - ox, cy - oy) < radius + orad + gap for ox, oy, orad in taken):
            continue
        box = np.array(
            [[cx + sx * radius, cy + sy * radius] for sx in (-1, 1) for sy in (-1, 1)], np.float64
        )
        q = distort_points(apply_homography(inv_h, box), k1, csize)
        if (q[:, 0] < margin).any() or (q[:, 0] > cw - margin).any():
            continue
        if (q[:, 1] < margin).any() or (q[:, 1] > ch - margin).any():
            continue
        return float(cx), float(cy)
    return None


def _draw_deformations(
    rng: np.random.Generator,
    spec: PairSpec,
    w: int,
    h: int,
    inv_h: np.ndarray,
    csize: tuple[int, int],
    taken: list[tuple[float, float, float]],
) -> list[_Deformation]:
    long_side = max(w, h)
    if spec.kinds is not None:
        kinds = list(spec.kinds)
    else:
        n = int(rng.integers(spec.n_deformations[0], spec.n_deformations[1] + 1))
        kinds = [KINDS[int(k)] for k in rng.choice(3, size=n, p=[0.4, 0.4, 0.2])]
    az = math.radians(spec.light_baseline.azimuth_deg)
    light_angle = math.atan2(-math.sin(az), math.cos(az))  # image coordinates, y down
    defs: list[_Deformation] = []
    for kind in kinds:
        slope = float(rng.uniform(*spec.slope_range))
        radius = float(rng.uniform(*spec.size_range)) * long_side
        ridge_frac = float(rng.uniform(0.28, 0.42))
        delta = math.radians(rng.uniform(RIDGE_MIN_ANGLE_DEG, 90.0)) * (
            1 if rng.random() < 0.5 else -1
        )
        spot = None
        for _ in range(8):
            spot = _place(rng, radius, taken, w, h, inv_h, csize, spec.lens_k1)
            if spot is not None:
                break
            radius *= 0.85
        if spot is None:
            raise MonitorError(
                f"cannot place {len(kinds)} deformations without overlap on a {w}x{h} canvas; "
                "lower n_deformations or size_range"
            )
        radius = max(radius, 3.0)
        width = max(2.0, ridge_frac * radius) if kind == "ridge" else radius
        peak = slope * width / _PROFILE_MAX_SLOPE
        if kind == "recession":
            peak = -peak
        defs.append(
            _Deformation(
                kind=kind,
                cx=spot[0],
                cy=spot[1],
                radius=radius,
                width=width,
                angle=light_angle + delta,
                peak=peak,
                slope=slope,
            )
        )
        taken.append((spot[0], spot[1], radius))
    return defs


# --------------------------------------------------------------------------- rendering


def _check_size(name: str, size: object) -> tuple[int, int]:
    if (
        not isinstance(size, tuple)
        or len(size) != 2
        or not all(isinstance(v, int | np.integer) for v in size)
    ):
        raise MonitorError(f"{name} must be a (width, height) tuple of ints, got {size!r}")
    w, h = int(size[0]), int(size[1])
    if not (_MIN_SIDE <= w <= _MAX_SIDE and _MIN_SIDE <= h <= _MAX_SIDE):
        raise MonitorError(f"{name} {w}x{h} outside {_MIN_SIDE}..{_MAX_SIDE} px per side")
    return w, h


def _check_range(name: str, rng_: tuple[float, float], lo: float, hi: float) -> None:
    if len(rng_) != 2 or not (lo <= rng_[0] <= rng_[1] <= hi):
        raise MonitorError(f"{name} must be (min, max) with {lo} <= min <= max <= {hi}, got {rng_}")


def _validate(spec: PairSpec) -> None:
    _check_size("size", spec.size)
    if spec.current_size is not None:
        _check_size("current_size", spec.current_size)
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


def _finish(
    linear: np.ndarray, rng: np.random.Generator, spec: PairSpec
) -> tuple[np.ndarray, bytes | None]:
    """Sensor noise, sRGB encoding, quantisation and optional JPEG round trip."""
    if spec.noise > 0:
        sigma = spec.noise * np.sqrt(linear * linear + 0.01**2)
        linear = linear + sigma * rng.standard_normal(linear.shape, dtype=np.float32)
    enc = linear_to_srgb(linear)
    maxval = 255 if spec.bit_depth == 8 else 65535
    dtype = np.uint8 if spec.bit_depth == 8 else np.uint16
    q = np.round(enc * maxval).astype(dtype)
    if spec.jpeg_quality is None:
        return q, None
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(q, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, spec.jpeg_quality]
    )
    if not ok:
        raise MonitorError("JPEG encoding failed")
    data = buf.tobytes()
    dec = cv2.cvtColor(
        cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB
    )
    return dec, data


def _mask_truth(
    mask: np.ndarray,
) -> tuple[tuple[float, float], tuple[float, float, float, float], int]:
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return (math.nan, math.nan), (math.nan,) * 4, 0  # type: ignore[return-value]
    centroid = (float(cols.mean() + 0.5), float(rows.mean() + 0.5))
    bbox = (float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1))
    return centroid, bbox, int(rows.size)


def render_pair(spec: PairSpec) -> SynthPair:
    """Render a baseline / current scan pair and its ground truth.

    Parameters
    ----------
    spec
        Every knob; the result is a deterministic function of it (random draws
        come from ``np.random.default_rng(spec.seed)``).

    Returns
    -------
    SynthPair
        The two sRGB images, the true CURRENT->BASELINE homography and lens
        coefficient, the height change on the baseline grid and the truth regions.

    Raises
    ------
    MonitorError
        For an invalid spec or when the deformations cannot be placed without overlap.
    """
    _validate(spec)
    rng = np.random.default_rng(spec.seed)
    ss = SUPERSAMPLING
    w, h = spec.size
    csize = spec.current_size or spec.size
    cw, ch = csize
    long_side = max(w, h)

    # --- scene: albedo and base relief
    if spec.painting is None:
        albedo, impasto = _procedural_albedo(rng, w, h, spec.impasto)
    else:
        albedo, impasto = _painting_albedo(rng, Path(spec.painting), w, h, spec.impasto)
    height = cv2.resize(impasto, (w * ss, h * ss), interpolation=cv2.INTER_CUBIC)
    height += _weave(rng, w, h, ss, spec.weave_amplitude, spec.weave_period)
    albedo2 = cv2.resize(albedo, (w * ss, h * ss), interpolation=cv2.INTER_CUBIC)
    albedo2 = np.clip(albedo2, 0.02, 0.95)

    # --- geometry of the later scan
    hom = pose_homography(
        (w, h),
        csize,
        rotation_deg=spec.rotation_deg,
        scale=spec.scale,
        translation=spec.translation,
        perspective=spec.perspective,
    )
    inv_h = np.linalg.inv(hom)

    # --- changes: discoloration first (largest), then deformations
    taken: list[tuple[float, float, float]] = []
    discol: AppearanceTruth | None = None
    factor2 = None
    blob_draw = (
        rng.uniform(0.035, 0.07) * long_side,
        rng.uniform(0.0, 0.15),
        rng.uniform(0, 2 * np.pi),
        rng.uniform(0.0, 0.1),
        rng.uniform(0, 2 * np.pi),
        rng.random() < 0.7,
        rng.uniform(0.9, 1.1, 3),
    )
    if spec.discoloration:
        rad, a2, p2, a3, p3, is_stain, jit = blob_draw
        bound = rad * (1.0 + a2 + a3)
        spot = _place(rng, bound, taken, w, h, inv_h, csize, spec.lens_k1)
        if spot is None:
            raise MonitorError(f"cannot place the discoloration on a {w}x{h} canvas")
        taken.append((spot[0], spot[1], bound))
        blob = (spot[0], spot[1], rad, a2, p2, a3, p3)
        base = np.array([1.0, 0.85, 0.6] if is_stain else [0.85, 0.97, 1.18])
        factors = np.clip(1.0 + (base - 1.0) * jit, 0.3, 2.0)
        alpha2 = _blob_alpha(blob, _centres(w, ss), _centres(h, ss))
        factor2 = 1.0 + alpha2[..., None] * (factors.astype(np.float32) - 1.0)
        mask = _blob_alpha(blob, _centres(w), _centres(h)) >= 0.5
        centroid, bbox, area = _mask_truth(mask)
        discol = AppearanceTruth(
            kind="stain" if is_stain else "bloom",
            factors=(float(factors[0]), float(factors[1]), float(factors[2])),
            centroid=centroid,
            bbox=bbox,
            area_px=area,
            mask=mask,
        )

    regions: list[TruthRegion] = []
    dh2 = None
    dh1 = np.zeros((h, w), np.float32)
    if not spec.no_change:
        defs = _draw_deformations(rng, spec, w, h, inv_h, csize, taken)
        if defs:
            dh2, singles = _add_deformations(defs, w, h, ss)
            for i, (d, single) in enumerate(zip(defs, singles, strict=True), start=1):
                dh1 += single
                mask = np.abs(single) >= MASK_FRACTION * abs(d.peak)
                centroid, bbox, area = _mask_truth(mask)
                regions.append(
                    TruthRegion(
                        id=i,
                        kind=d.kind,
                        polarity="recession" if d.peak < 0 else "bulge",
                        centroid=centroid,
                        bbox=bbox,
                        peak=float(d.peak),
                        max_slope=d.slope,
                        size_px=d.radius,
                        area_px=area,
                        mask=mask,
                    )
                )

    yellow_field = 0.5 + 0.5 * np.tanh(_smooth_noise(rng, (h * ss, w * ss), 3.0))
    noise_rng = np.random.default_rng(rng.integers(0, 2**63 - 1))

    # --- radiance of the scene under each scan's light
    lz_ref = float(spec.light_baseline.vector()[2])
    shade_b, spec_b = _shading(height, ss, spec.light_baseline, lz_ref, spec, long_side)
    rad_b = albedo2 * shade_b[..., None] + spec_b[..., None]
    del shade_b, spec_b
    height_c = height if dh2 is None else height + dh2
    shade_c, spec_c = _shading(height_c, ss, spec.light_current, lz_ref, spec, long_side)
    albedo_c = albedo2 if factor2 is None else albedo2 * factor2
    if spec.yellowing > 0:
        y = spec.yellowing * yellow_field
        albedo_c = albedo_c * np.stack([np.ones_like(y), 1.0 - 0.4 * y, 1.0 - y], axis=-1)
    rad_c = albedo_c * shade_c[..., None] + spec_c[..., None]
    del shade_c, spec_c, albedo_c

    # --- cameras (optical blur on the supersampled grid, then pixel area)
    psf = spec.psf_sigma * ss
    if psf > 0:
        rad_b = cv2.GaussianBlur(rad_b, (0, 0), psf)
    lin_b = cv2.resize(rad_b, (w, h), interpolation=cv2.INTER_AREA)
    lin_b *= (spec.base_exposure * _vignette(w, h, spec.vignetting[0]))[..., None]
    del rad_b

    grid = np.stack(np.meshgrid(_centres(cw, ss), _centres(ch, ss)), axis=-1)
    p = current_to_baseline(grid, hom, spec.lens_k1, csize)
    del grid
    mx = (p[..., 0] * ss - 0.5).astype(np.float32)
    my = (p[..., 1] * ss - 0.5).astype(np.float32)
    del p
    wall = float(spec.wall)
    lin_c2 = cv2.remap(
        rad_c,
        mx,
        my,
        cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(wall, wall, wall, 0.0),
    )
    del rad_c, mx, my
    if psf > 0:
        lin_c2 = cv2.GaussianBlur(lin_c2, (0, 0), psf)
    lin_c = cv2.resize(np.maximum(lin_c2, 0.0), (cw, ch), interpolation=cv2.INTER_AREA)
    del lin_c2
    gains = spec.base_exposure * spec.exposure * np.asarray(spec.wb, np.float32)
    lin_c *= _vignette(cw, ch, spec.vignetting[1])[..., None] * gains[None, None, :]

    baseline, jpg_b = _finish(lin_b, noise_rng, spec)
    current, jpg_c = _finish(lin_c, noise_rng, spec)
    jpeg = None if jpg_b is None or jpg_c is None else (jpg_b, jpg_c)
    return SynthPair(
        baseline=baseline,
        current=current,
        homography=hom,
        lens_k1=float(spec.lens_k1),
        height_change=dh1,
        regions=tuple(regions),
        discoloration=discol,
        spec=spec,
        jpeg=jpeg,
    )


# --------------------------------------------------------------------------- specs


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
    w, h = _check_size("size", size)
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
    wb = tuple(float(g) for g in rng.uniform(0.9, 1.1, 3))
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


# --------------------------------------------------------------------------- files


def _write_rgb(path: Path, rgb: np.ndarray, fmt: str, quality: int) -> None:
    if fmt == "tif":
        tifffile.imwrite(path, rgb, photometric="rgb")
        return
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if fmt == "jpg" else []
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params):
        raise MonitorError(f"cannot write {path}")


def write_pair(pair: SynthPair, out_dir: Path, *, fmt: str = "png") -> dict[str, Path]:
    """Write a pair and its truth to a folder.

    Parameters
    ----------
    pair
        From :func:`render_pair`.
    out_dir
        Created if missing.
    fmt
        ``"png"``, ``"tif"`` or ``"jpg"``. For ``"jpg"`` the pair's own JPEG bytes
        are written when it has them (then the files decode to ``pair.baseline``
        / ``pair.current`` exactly), else the arrays are encoded at quality 92.

    Returns
    -------
    dict of str to Path
        ``baseline``, ``current``, ``truth`` (truth.json), ``height_change``
        (truth_height_change.tif, float32) and ``labels`` (truth_labels.png,
        uint8: region id, 255 = discoloration, 0 = nothing).
    """
    fmt = fmt.lower().lstrip(".")
    fmt = {"jpeg": "jpg", "tiff": "tif"}.get(fmt, fmt)
    if fmt not in {"png", "tif", "jpg"}:
        raise MonitorError(f"fmt must be png, tif or jpg, got {fmt!r}")
    if fmt == "jpg" and pair.baseline.dtype != np.uint8:
        raise MonitorError("JPEG holds 8-bit samples; write a 16-bit pair as png or tif")
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MonitorError(f"cannot create {out_dir}: {exc}") from exc
    paths = {
        "baseline": out_dir / f"baseline.{fmt}",
        "current": out_dir / f"current.{fmt}",
        "truth": out_dir / "truth.json",
        "height_change": out_dir / "truth_height_change.tif",
        "labels": out_dir / "truth_labels.png",
    }
    if fmt == "jpg" and pair.jpeg is not None:
        paths["baseline"].write_bytes(pair.jpeg[0])
        paths["current"].write_bytes(pair.jpeg[1])
    else:
        quality = pair.spec.jpeg_quality or 92
        _write_rgb(paths["baseline"], pair.baseline, fmt, quality)
        _write_rgb(paths["current"], pair.current, fmt, quality)
    paths["truth"].write_text(json.dumps(pair.truth_dict(), indent=2) + "\n", encoding="utf-8")
    tifffile.imwrite(
        paths["height_change"], pair.height_change.astype(np.float32), compression="zlib"
    )
    labels = np.zeros(pair.height_change.shape, np.uint8)
    for r in pair.regions:
        labels[r.mask] = min(r.id, 254)
    if pair.discoloration is not None:
        labels[pair.discoloration.mask] = 255
    if not cv2.imwrite(str(paths["labels"]), labels):
        raise MonitorError(f"cannot write {paths['labels']}")
    return paths


__all__ = [
    "KINDS",
    "MASK_FRACTION",
    "AppearanceTruth",
    "PairSpec",
    "SynthPair",
    "TruthRegion",
    "baseline_to_current",
    "current_to_baseline",
    "demo_spec",
    "distort_points",
    "list_paintings",
    "pose_homography",
    "render_pair",
    "sample_spec",
    "undistort_points",
    "warp_current_to_baseline",
    "write_pair",
]
