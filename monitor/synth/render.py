"""The renderer: shading under the lamps, vignetting, sensor noise, sRGB; render_pair."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from monitor.errors import MonitorError
from monitor.geometry import apply_homography
from monitor.io import linear_to_srgb
from monitor.results import Light
from monitor.synth.albedo import _painting_albedo, _procedural_albedo, _weave
from monitor.synth.camera import _lens_params, current_to_baseline, distort_points, pose_homography
from monitor.synth.fields import _centres, _smooth_noise
from monitor.synth.relief import _PROFILE_MAX_SLOPE, _add_deformations, _blob_alpha
from monitor.synth.specs import (
    KINDS,
    MASK_FRACTION,
    RIDGE_MIN_ANGLE_DEG,
    SUPERSAMPLING,
    AppearanceTruth,
    PairSpec,
    SynthPair,
    TruthRegion,
    _Deformation,
    _validate,
)


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
    hs, ws = height.shape
    bw, bh = ws / ss, hs / ss
    return _shading_from_slopes(
        gx, gy, height, (_centres(int(bw), ss), _centres(int(bh), ss)), (bw, bh),
        light, lz_ref, spec, long_side,
    )


def _shading_from_slopes(
    gx: np.ndarray,
    gy: np.ndarray,
    height: np.ndarray,
    centres: tuple[np.ndarray, np.ndarray],
    baseline_wh: tuple[float, float],
    light: Light,
    lz_ref: float,
    spec: PairSpec,
    long_side: int,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_shading` from the height's slopes on any window of the supersampled grid.

    ``centres`` are the window's sample x and y coordinates (baseline pixels) and
    ``baseline_wh`` the whole baseline's size, so that a finite lamp stays where it
    is for every window (the strip renderer, :mod:`monitor.synth.strips`).
    """
    gx = gx.astype(np.float32)
    gy = gy.astype(np.float32)
    inv = 1.0 / np.sqrt(1.0 + gx * gx + gy * gy)
    lv = light.vector().astype(np.float32)
    if spec.point_lamp is None:
        lx, ly, lz = (float(c) for c in lv)
        intensity: np.ndarray | float = 1.0
    else:
        dist = spec.point_lamp * long_side
        bw, bh = baseline_wh
        lamp = np.array([bw / 2, bh / 2, 0.0], np.float32) + dist * lv
        vx = lamp[0] - centres[0][None, :]
        vy = lamp[1] - centres[1][:, None]
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


def _draw_discoloration(
    rng: np.random.Generator,
    spec: PairSpec,
    w: int,
    h: int,
    inv_h: np.ndarray,
    csize: tuple[int, int],
    taken: list[tuple[float, float, float]],
) -> tuple[tuple[float, float, float, float, float, float, float], np.ndarray, bool] | None:
    """Draw the discoloration blob (the draws are made even when the spec has none).

    Returns ``(blob, factors, is_stain)`` or None; appends the blob's bound to ``taken``.
    """
    long_side = max(w, h)
    blob_draw = (
        rng.uniform(0.035, 0.07) * long_side,
        rng.uniform(0.0, 0.15),
        rng.uniform(0, 2 * np.pi),
        rng.uniform(0.0, 0.1),
        rng.uniform(0, 2 * np.pi),
        rng.random() < 0.7,
        rng.uniform(0.9, 1.1, 3),
    )
    if not spec.discoloration:
        return None
    rad, a2, p2, a3, p3, is_stain, jit = blob_draw
    bound = rad * (1.0 + a2 + a3)
    spot = _place(rng, bound, taken, w, h, inv_h, csize, spec.lens_k1)
    if spot is None:
        raise MonitorError(f"cannot place the discoloration on a {w}x{h} canvas")
    taken.append((spot[0], spot[1], bound))
    blob = (spot[0], spot[1], rad, a2, p2, a3, p3)
    base = np.array([1.0, 0.85, 0.6] if is_stain else [0.85, 0.97, 1.18])
    factors = np.clip(1.0 + (base - 1.0) * jit, 0.3, 2.0)
    return blob, factors, bool(is_stain)


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
    q: np.ndarray = np.round(enc * maxval).astype(dtype)
    if spec.jpeg_quality is None:
        return q, None
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(q, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, spec.jpeg_quality]
    )
    if not ok:
        raise MonitorError("JPEG encoding failed")
    data = buf.tobytes()
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise MonitorError("JPEG decoding failed")
    return np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)), data


def _mask_truth(
    mask: np.ndarray,
) -> tuple[tuple[float, float], tuple[float, float, float, float], int]:
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return (math.nan, math.nan), (math.nan, math.nan, math.nan, math.nan), 0
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
    drawn = _draw_discoloration(rng, spec, w, h, inv_h, csize, taken)
    if drawn is not None:
        blob, factors, is_stain = drawn
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
