"""The paint: procedural brushwork or a real painting as albedo, impasto and canvas weave."""

from __future__ import annotations

import colorsys
import math
from pathlib import Path

import cv2
import numpy as np

from monitor.errors import MonitorError
from monitor.io import srgb_to_linear
from monitor.synth.fields import _centres, _smooth_noise, _smoothstep


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
    height: np.ndarray = np.zeros((h, w), np.float32)
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
    np.clip(zones, 0.03, 0.9, out=zones)  # float32 already: in place, no copies
    theta0 = rng.uniform(0, np.pi)
    orientation = (theta0 + 0.9 * _smooth_noise(rng, (h, w), 4.0)).astype(np.float32)
    albedo, height = _brushwork(
        rng, w, h, colour_field=zones, palette=palette, orientation=orientation, impasto=impasto
    )
    assert albedo is not None
    del zones, orientation  # read only at the strokes' centres; frees 16 bytes a pixel
    grain = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 0.8)
    albedo *= (1.0 + 0.05 * grain)[..., None]  # in place: the same values, no full-size copies
    del grain
    np.clip(albedo, 0.03, 0.9, out=albedo)
    return albedo, height


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
