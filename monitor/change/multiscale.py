"""Multi-scale photometric change at full resolution, in tiles, on any torch device.

The single-grid route (:func:`monitor.change.methods.photometric_change`)
works on a grid of at most ``analysis_max_px`` and its smoothing, level of
detection and smallest region are fractions of the long side: on a 24 MP scan
a 2-8 mm blister is a few analysis pixels and falls through. Here:

1. **Slope at native resolution, in tiles.** The log ratio of the two linear
   scans (lightly pre-smoothed), minus a low-frequency background (exposure,
   white balance, light drift, vignetting) estimated once on a coarse grid with
   strong changes left out -- the same recipe as ``photometric_change``; its
   chromatic part is appearance change (masked and filled from the
   surroundings), its achromatic part the shading change, i.e. the slope of
   the height change along the light. Tiles carry a halo wide enough for the
   pre-smoothing, so the slope map has no seams.
2. **A pyramid of the slope** (2 x 2 averages) from the native pixel to a
   level of about ``min_level_side`` pixels.
3. **At every level** the slope is integrated along the light from both ends
   (leaky integrators of ``decay_level_px`` level pixels, batched tiles with
   a halo of ``halo_decays`` decays: the kernel has decayed to
   ``exp(-halo_decays)`` at the tile's edge, so tiles do not show), keeping
   what both integrators agree on. The two-sided agreement is scale
   selective: a deformation much wider than the decay length gives the two
   integrators opposite signs and vanishes at that level; it is found at a
   coarser one. Each level has its own local level of detection (the robust
   spread of the linear integral at that level,
   :func:`monitor.change.methods.local_noise`) and its own regions, seeded at
   ``z`` sigmas, extending to ``z / 2`` and to ``extent_frac`` of the peak.
4. **One report per region.** Candidates of all levels are sorted by
   significance and a candidate overlapping an already kept one (by more
   than ``nms_overlap`` of the smaller footprint) is dropped: each region is
   reported once, at the level where it is most significant (``scale_px``,
   ``scale_mm``).

Heights are in baseline pixel-pitch units at every level.

The batched integration (:func:`monitor.photometry.integrate_two_sided_batch`)
and the tiles (:func:`monitor.photometry.iter_tiles`) live with the physics of
light in :mod:`monitor.photometry`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from skimage import measure

from monitor.checks import check_image, check_pair
from monitor.config import Settings
from monitor.errors import MonitorError
from monitor.photometry import (
    BRIGHT,
    DARK,
    EPS,
    TileBox,
    blur,
    in_plane_direction,
    integrate_two_sided_batch,
    iter_tiles,
    local_noise,
    robust_sigma,
    smooth_background,
)
from monitor.regions import drop_tails
from monitor.resources import peak_rss_mb
from monitor.results import (
    Light,
    MultiScaleChange,
    ScaledRegion,
    ScaleLevel,
    StageTiming,
)

__all__ = [
    "Candidate",
    "LevelStat",
    "RegionParams",
    "SuppressionGrid",
    "combine_preview",
    "preview_grid",
    "to_grid",
    "level_detections",
    "level_regions",
    "multiscale_change",
    "scaled_results",
    "suppress",
    "suppression_grid",
    "tail_threshold",
]

MODEL_ID = "monitor/photometric-multiscale-v1"


def _read_padded(a: np.ndarray, t: TileBox, size: int) -> np.ndarray:
    """The tile's core plus halo from ``a`` (2-D), zero outside ``a``, in a ``size`` square."""
    out = np.zeros((size, size), np.float32)
    h, w = a.shape
    ys0, ys1 = max(t.y0 - t.halo, 0), min(t.y1 + t.halo, h)
    xs0, xs1 = max(t.x0 - t.halo, 0), min(t.x1 + t.halo, w)
    oy, ox = ys0 - (t.y0 - t.halo), xs0 - (t.x0 - t.halo)
    out[oy : oy + ys1 - ys0, ox : ox + xs1 - xs0] = a[ys0:ys1, xs0:xs1]
    return out


def _check_inputs(
    baseline: np.ndarray, current: np.ndarray, valid: np.ndarray, tile: int, px_per_mm: float | None
) -> None:
    check_pair("multiscale", baseline, current, valid)
    check_image(baseline, "H W 3", name="multiscale: baseline", dtype=np.float32, min_side=64)
    check_image(current, "H W 3", name="multiscale: current", dtype=np.float32)
    if tile < 64:
        raise MonitorError(f"multiscale: tile must be >= 64 px, got {tile}")
    if px_per_mm is not None and not (math.isfinite(px_per_mm) and px_per_mm > 0):
        raise MonitorError(f"multiscale: px_per_mm must be positive, got {px_per_mm}")


def _coarse_background(
    baseline: np.ndarray, current: np.ndarray, valid: np.ndarray, coarse_side: int,
    background_frac: float, device: torch.device,
) -> tuple[torch.Tensor, float]:
    """Low-frequency log ratio (3, hc, wc) with strong changes left out; median luminance."""
    h, w = valid.shape
    f = max(1.0, max(h, w) / coarse_side)
    size = (max(8, round(w / f)), max(8, round(h / f)))
    b = cv2.resize(baseline, size, interpolation=cv2.INTER_AREA).clip(0, None)
    c = cv2.resize(current, size, interpolation=cv2.INTER_AREA).clip(0, None)
    v = cv2.resize(valid.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0.999
    ok = v & (b.min(axis=2) > DARK) & (b.max(axis=2) < BRIGHT)
    ok &= (c.min(axis=2) > DARK) & (c.max(axis=2) < BRIGHT)
    if not ok.any():
        raise MonitorError("multiscale: no trusted pixels (all dark, clipped or outside)")
    lum = b.mean(axis=2)
    median_lum = max(float(np.median(lum[ok])), 1e-3)
    bt = torch.from_numpy(np.ascontiguousarray(b.transpose(2, 0, 1))).to(device)
    ct = torch.from_numpy(np.ascontiguousarray(c.transpose(2, 0, 1))).to(device)
    wt = torch.from_numpy(ok).to(device=device, dtype=torch.float32)
    ratio = (torch.log(ct + EPS) - torch.log(bt + EPS)) * wt
    sigma = background_frac * max(size)
    first = ratio - smooth_background(ratio, wt, sigma)
    mean_first = smooth_background(first.mean(dim=0), wt, 2.0)
    spread = robust_sigma(mean_first.cpu().numpy()[ok])
    quiet = (mean_first.abs() < 3 * spread).cpu().numpy()
    quiet = ~ndimage.binary_dilation(~quiet, iterations=max(2, int(0.01 * max(size))))
    w_bg = wt * torch.from_numpy(quiet).to(device=device, dtype=torch.float32)
    return smooth_background(ratio, w_bg, sigma), median_lum


def _cv2_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """:func:`monitor.photometry.blur` of a (C, H, W) CPU tensor through cv2, plane by plane."""
    k = 2 * int(math.ceil(3 * sigma)) + 1
    out = np.empty(tuple(x.shape), np.float32)
    for i, plane in enumerate(x.numpy()):
        cv2.GaussianBlur(plane, (k, k), sigma, dst=out[i], sigmaY=sigma,
                         borderType=cv2.BORDER_REFLECT_101)
    return torch.from_numpy(out)


def _planar(rgb: np.ndarray, device: torch.device) -> torch.Tensor:
    """(H, W, 3) array -> contiguous (3, H, W) tensor on ``device``, negatives set to 0."""
    out = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).to(device)
    return out.clamp_min_(0)


_SQUARE3 = np.ones((3, 3), np.uint8)
_SQUARE7 = np.ones((7, 7), np.uint8)


def _open3(mask: np.ndarray) -> np.ndarray:
    """``ndimage.binary_opening(mask, 3 x 3)`` (outside counts as False), through cv2.

    Several times faster than scipy on a full-resolution level; the result is identical.
    """
    out = cv2.morphologyEx(mask.view(np.uint8), cv2.MORPH_OPEN, _SQUARE3,
                           borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return out.view(bool)


def _label8(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components (``ndimage.label`` with a 3 x 3 structure), through cv2."""
    n, labels = cv2.connectedComponents(mask.view(np.uint8), connectivity=8, ltype=cv2.CV_32S)
    return labels, int(n) - 1


def _cv2_smooth(x: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    """:func:`monitor.photometry.smooth_background` for a small ``sigma`` (< 8) on the CPU.

    The same normalised convolution (a ``2 ceil(3 sigma) + 1`` Gaussian, reflect-101
    borders) through cv2's separable filter instead of a depthwise conv.
    """
    k = 2 * int(math.ceil(3 * sigma)) + 1
    num = cv2.GaussianBlur(x * weight, (k, k), sigma, sigmaY=sigma,
                           borderType=cv2.BORDER_REFLECT_101)
    den = cv2.GaussianBlur(weight, (k, k), sigma, sigmaY=sigma,
                           borderType=cv2.BORDER_REFLECT_101)
    return num / np.maximum(den, 1e-6)


def _label_max(values: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Maximum of ``values`` in each label 1..n (index 0: 0), in one pass over labelled pixels.

    ``ndimage.maximum`` sorts every pixel of the image; at native resolution
    that was most of the labelling time.
    """
    out = np.full(n + 1, -np.inf)
    m = labels > 0
    np.maximum.at(out, labels[m], values[m])
    out[0] = 0.0
    return out


def _native_slope(
    baseline: np.ndarray, current: np.ndarray, valid: np.ndarray, gain: float,
    background: torch.Tensor, median_lum: float, tile: int, presmooth_px: float,
    device: torch.device,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Slope of the height change along the light, chroma and trust, at native resolution."""
    h, w = valid.shape
    slope = np.zeros((h, w), np.float32)
    chroma = np.zeros((h, w), np.float32)
    ok = np.zeros((h, w), bool)
    halo = int(math.ceil(3 * presmooth_px)) + 8
    bg = background[None]
    for t in iter_tiles((h, w), tile, halo):
        ys0, ys1 = max(t.y0 - halo, 0), min(t.y1 + halo, h)
        xs0, xs1 = max(t.x0 - halo, 0), min(t.x1 + halo, w)
        core = (slice(t.y0 - ys0, t.y1 - ys0), slice(t.x0 - xs0, t.x1 - xs0))
        # planar (3, H, W) and contiguous: every reduction over the colours is then a
        # vectorised elementwise pass (on interleaved pixels it was a third of the stage)
        b = _planar(baseline[ys0:ys1, xs0:xs1], device)
        c = _planar(current[ys0:ys1, xs0:xs1], device)
        # erode the overlap by 3 px: the warp's edge (interpolated from outside) is not
        # trusted. Dark or clipped pixels are untrusted themselves only: eroding around
        # each of them punched holes in dark brushwork, and each hole's zero slope
        # broke the line integrals into false alarms and split regions
        v_np = np.ascontiguousarray(valid[ys0:ys1, xs0:xs1])
        if device.type == "cpu":  # cv2's erosion: the same (outside ignored), far faster
            v = torch.from_numpy(cv2.erode(v_np.view(np.uint8), _SQUARE7).view(bool))
        else:
            vt = torch.from_numpy(v_np).to(device)[None, None].float()
            v = -F.max_pool2d(-vt, 7, stride=1, padding=3)[0, 0] > 0.5
        trust = v & (b.amin(0) > DARK) & (b.amax(0) < BRIGHT)
        trust &= (c.amin(0) > DARK) & (c.amax(0) < BRIGHT)
        brightness = b.mean(dim=0).div_(median_lum).clamp_(0, 1)
        if presmooth_px > 0 and device.type == "cpu":
            # cv2's separable Gaussian (same kernel size, reflect-101 borders as
            # kornia's) is several times faster than a depthwise conv on the CPU
            b, c = (_cv2_blur(x, presmooth_px) for x in (b, c))
        elif presmooth_px > 0:
            b, c = blur(b, presmooth_px), blur(c, presmooth_px)
        wt = trust.float()
        # b and c are this tile's own copies (planar, blurred): the arithmetic runs in
        # place, the same operations in the same order as log(c + EPS) - log(b + EPS)
        ratio = c.add_(EPS).log_().sub_(b.add_(EPS).log_())
        del b, c
        gy = 2 * (torch.arange(ys0, ys1, device=device, dtype=torch.float32) + 0.5) / h - 1
        gx = 2 * (torch.arange(xs0, xs1, device=device, dtype=torch.float32) + 0.5) / w - 1
        grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1)[None]
        low = F.grid_sample(bg, grid, mode="bilinear", padding_mode="border", align_corners=False)
        ratio.sub_(low[0]).mul_(wt)
        del low
        achromatic = ratio.mean(dim=0)
        # sqrt(mean((ratio - achromatic) ** 2)) * brightness, in place
        chroma_t = ratio.sub_(achromatic).square_().mean(dim=0).sqrt_().mul_(brightness)
        del ratio
        if device.type == "cpu":
            chroma_s = torch.from_numpy(_cv2_smooth(chroma_t.numpy(), wt.numpy(), 2.0))
        else:
            chroma_s = smooth_background(chroma_t, wt, 2.0)
        s = torch.expm1(achromatic).mul_(-gain).mul_(wt)  # -expm1(achromatic) * gain * wt
        slope[t.y0 : t.y1, t.x0 : t.x1] = s[core].cpu().numpy()
        chroma[t.y0 : t.y1, t.x0 : t.x1] = chroma_s[core].cpu().numpy()
        ok[t.y0 : t.y1, t.x0 : t.x1] = trust[core].cpu().numpy()
    return slope, chroma, ok


def _pool_mask(mask: np.ndarray, f: int, mode: str) -> np.ndarray:
    t = torch.from_numpy(mask)[None, None].float()
    if mode == "max":
        out = F.max_pool2d(t, f, ceil_mode=True)
    else:
        out = F.avg_pool2d(t, f, ceil_mode=True)
    return out[0, 0].numpy()


def _appearance_and_fill(
    slope: np.ndarray, chroma: np.ndarray, ok: np.ndarray, chroma_z: float, chroma_floor: float,
    device: torch.device,
) -> np.ndarray:
    """Appearance (chromatic) mask at native resolution; fills ``slope`` there in place."""
    h, w = ok.shape
    long_side = max(h, w)
    # every 7th pixel's chroma where trusted (chroma[ok] would be a full-size copy)
    sub = chroma.ravel()[::7][ok.ravel()[::7]]
    threshold = max(chroma_floor, float(np.median(sub)) + chroma_z * robust_sigma(sub))
    f = 4
    # dilate on a 4x coarser grid: the dilation is long (0.6 % of the long side)
    coarse = _pool_mask(chroma > threshold, f, "max") > 0
    coarse = ndimage.binary_dilation(coarse, iterations=max(1, int(0.006 * long_side / f)))
    appearance = np.repeat(np.repeat(coarse, f, axis=0), f, axis=1)[:h, :w] & ok
    keep = ok & ~appearance
    if appearance.any():
        # masked pixels take the slope of their surroundings (a zero would unbalance
        # the line integrals through a deformation and leave tails)
        kt = torch.from_numpy(keep)[None, None].float()
        st = torch.from_numpy(slope)[None, None] * kt
        num = F.avg_pool2d(st, f, ceil_mode=True)[0, 0].to(device)
        den = F.avg_pool2d(kt, f, ceil_mode=True)[0, 0].to(device)
        mean = torch.where(den > 0, num / den.clamp_min(1e-6), 0.0)
        fill = smooth_background(mean, den, 0.01 * long_side / f).cpu().numpy()
        full = cv2.resize(fill, (w, h), interpolation=cv2.INTER_LINEAR)
        slope[appearance] = full[appearance]
    return appearance


def to_grid(m: np.ndarray, steps: int, shape: tuple[int, int]) -> np.ndarray:
    """Level map ``m`` on the grid of the level ``-steps`` levels coarser (``shape``).

    A finer level (``steps < 0``) is averaged over the coarser pixel's footprint
    (as the pyramid averages, ceil-sized); a coarser one interpolated linearly
    at the finer pixels' centres.
    """
    if steps == 0:
        return m.astype(np.float32, copy=True)
    if steps < 0:
        k = 2**-steps
        t = torch.from_numpy(m)[None, None]
        out = F.avg_pool2d(t, k, ceil_mode=True)[0, 0].numpy()
    else:
        k = 2**steps
        out = cv2.resize(m, (m.shape[1] * k, m.shape[0] * k), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(out[: shape[0], : shape[1]], dtype=np.float32)


def preview_grid(shape: tuple[int, int], max_side: int = 1600) -> tuple[int, tuple[int, int]]:
    """The preview's level and shape: the first level whose long side is <= ``max_side``.

    Levels halve the previous one's sides, rounding up.

    Examples
    --------
    >>> preview_grid((2000, 3000))
    (1, (1000, 1500))
    """
    level, (h, w) = 0, shape
    while max(h, w) > max_side:
        h, w, level = math.ceil(h / 2), math.ceil(w / 2), level + 1
    return level, (h, w)


def combine_preview(
    preview: np.ndarray, on_preview: list[tuple[np.ndarray, np.ndarray]],
    span: int = 0, z_min: float = 3.0,
) -> np.ndarray:
    """At every pixel, the height of the level where ``|z|`` is largest (NaN kept).

    ``on_preview`` holds every level's (height, z) brought to the preview's grid
    (:func:`to_grid`), finest first; with one level the preview comes back
    unchanged. With ``span > 0``, where that ``|z|`` reaches ``z_min`` the height
    is the largest of the same sign over that level and the ``span`` coarser
    ones (a level under-reads what is wider than its integration), as region
    peaks are read (``peak_levels`` of :func:`multiscale_change`).
    """
    if len(on_preview) < 2:
        return preview
    heights = np.stack([m[0] for m in on_preview])
    zs = np.abs(np.stack([m[1] for m in on_preview]))
    best = np.argmax(zs, axis=0)
    combined = np.take_along_axis(heights, best[None], axis=0)[0]
    if span > 0:
        sign = np.sign(combined)
        strong = np.take_along_axis(zs, best[None], axis=0)[0] >= z_min
        for step in range(1, span + 1):
            idx = np.minimum(best + step, heights.shape[0] - 1)
            other = np.take_along_axis(heights, idx[None], axis=0)[0]
            combined = np.where(strong & (sign * other > sign * combined), other, combined)
    return np.where(np.isfinite(preview), combined, np.nan).astype(np.float32)


def _fast_side(n: int, core: int) -> int:
    """Smallest side >= ``n`` with only the factors 2, 3 and 5 and ``side - core`` even."""
    m = n
    while True:
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1 and (m - core) % 2 == 0:
            return m
        m += 1


def _integrate_level(
    slope: np.ndarray, direction: tuple[float, float], decay: float, blur_px: float, tile: int,
    halo_decays: float, batch: int, device: torch.device,
) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided integration of one level in batched tiles with halos."""
    h, w = slope.shape
    core = min(tile, max(h, w))
    # the halo grows to the next FFT-friendly tile side (factors 2, 3, 5): a side
    # such as 1216 = 2^6 x 19 costs about twice as much per pixel
    size = _fast_side(core + 2 * int(math.ceil(halo_decays * decay)), core)
    halo = (size - core) // 2
    height = np.zeros((h, w), np.float32)
    linear = np.zeros((h, w), np.float32)
    tiles = list(iter_tiles((h, w), core, halo))
    for i in range(0, len(tiles), batch):
        group = tiles[i : i + batch]
        stack = np.stack([_read_padded(slope, t, size) for t in group])
        s = torch.from_numpy(stack).to(device)
        ht, lt = integrate_two_sided_batch(s, direction, decay_px=decay, blur_px=blur_px)
        hh, ll = ht.cpu().numpy(), lt.cpu().numpy()
        del s, ht, lt, stack
        for k, t in enumerate(group):
            rows = slice(halo, halo + t.y1 - t.y0)
            cols = slice(halo, halo + t.x1 - t.x0)
            height[t.y0 : t.y1, t.x0 : t.x1] = hh[k][rows, cols]
            linear[t.y0 : t.y1, t.x0 : t.x1] = ll[k][rows, cols]
    return height, linear


def tail_threshold(
    zmap: np.ndarray, z_floor: float, false_alarms: float, fit: tuple[float, float]
) -> float:
    """Seed threshold at which about ``false_alarms`` noise regions are expected on this level.

    Deformations are sparse, so the peaks of the components of ``|z| >= 3``
    are mostly noise; their counts above ``t`` (over ``fit`` sigmas) fall about
    exponentially -- more slowly than a Gaussian where the clutter is
    structured (texture under a drifting lamp) -- and the fitted tail is
    extrapolated to ``false_alarms`` expected components. Never below ``z_floor``.
    """
    mag = np.abs(zmap)
    labels, n = _label8(_open3(mag >= fit[0]))
    if n < 20:
        return z_floor
    peaks = _label_max(mag, labels, n)[1:]
    ts = np.arange(fit[0], fit[1] + 1e-6, 0.25)
    counts = np.array([(peaks >= t).sum() for t in ts], np.float64)
    use = counts >= 3
    if use.sum() < 4:
        return z_floor
    slope, intercept = np.polyfit(ts[use], np.log(counts[use]), 1)
    if slope >= -1e-3:
        return z_floor
    t_star = (math.log(false_alarms) - intercept) / slope
    return float(min(max(z_floor, t_star), 50.0))


@dataclass
class Candidate:
    """A region of one level and its footprint on the common suppression grid."""

    region: ScaledRegion
    cells: np.ndarray  # footprint on the suppression grid (flat indices)


def _remeasure_peaks(
    candidates: list[Candidate], height: np.ndarray, trusted: np.ndarray, level: int,
    pitch: int, span: int,
) -> None:
    """Raise the peaks of finer candidates to this level's extreme inside their boxes.

    Candidates of the ``span`` finer levels are updated in place; ``height`` is
    this level's (baseline pixel pitch units), read where ``trusted`` only.
    """
    lh, lw = height.shape
    for cand in candidates:
        r = cand.region
        if not 0 < level - r.level <= span:
            continue
        x0, y0, x1, y1 = r.bbox
        r0, c0 = min(int(y0 // pitch), lh - 1), min(int(x0 // pitch), lw - 1)
        r1, c1 = max(r0 + 1, math.ceil(y1 / pitch)), max(c0 + 1, math.ceil(x1 / pitch))
        box, ok = height[r0:r1, c0:c1], trusted[r0:r1, c0:c1]
        if not ok.any():
            continue
        sign = 1.0 if r.polarity == "bulge" else -1.0
        extreme = float((sign * box[ok]).max())
        if extreme > sign * r.peak:
            cand.region = dataclasses.replace(r, peak=sign * extreme)


@dataclass(frozen=True)
class SuppressionGrid:
    """The grid all levels' footprints are drawn on: ``pitch`` native pixels a cell."""

    pitch: int
    shape: tuple[int, int]


def suppression_grid(shape: tuple[int, int], pitch: int = 4) -> SuppressionGrid:
    """The suppression grid of a native image of ``shape`` (one spare cell each way).

    Examples
    --------
    >>> suppression_grid((100, 60))
    SuppressionGrid(pitch=4, shape=(26, 16))
    """
    h, w = shape
    return SuppressionGrid(pitch, (math.ceil(h / pitch) + 1, math.ceil(w / pitch) + 1))


@dataclass(frozen=True)
class RegionParams:
    """How regions are seeded and grown on a level and merged across levels.

    See :func:`multiscale_change` for the meaning and the provenance of each value.
    """

    z: float = 7.0
    false_alarms: float = 3.0
    tail_fit: tuple[float, float] = (3.0, 6.0)
    extent_frac: float = 0.2
    min_diameter_level_px: float = 4.0
    nms_overlap: float = 0.3
    merge_radius_level_px: float = 8.0
    # photometric: 1.0 (multiscale_change's max_slope); the pair route was measured without
    max_slope: float = math.inf


def level_detections(
    height: np.ndarray, zmap: np.ndarray, appearance: np.ndarray, *, level: int,
    params: RegionParams, grid: SuppressionGrid, direction: tuple[float, float],
    px_per_mm: float | None, min_height: float,
) -> tuple[list[Candidate], float]:
    """One level's candidate regions and its seed threshold (in sigmas of the level).

    ``height`` in baseline pixels and ``zmap`` (height / level of detection, 0
    where untrusted) on the level's grid, ``appearance`` a bool mask there. The
    seed threshold is :func:`tail_threshold` over the pixels outside
    ``appearance``; ``zmap`` is negated in place (see :func:`level_regions`).
    """
    z_level = tail_threshold(np.where(appearance, 0.0, zmap), params.z, params.false_alarms,
                             params.tail_fit)
    min_area = max(4, int(math.pi / 4 * params.min_diameter_level_px**2))
    found = level_regions(
        height, zmap, appearance, level=level, pitch=2**level, z=z_level,
        extent_frac=params.extent_frac, min_area=min_area, px_per_mm=px_per_mm,
        direction=direction, nms_pitch=grid.pitch, nms_shape=grid.shape, min_height=min_height,
        max_slope=params.max_slope,
    )
    return found, z_level


#: Per-level statistics: level, pitch, shape, noise median, candidates, seed threshold.
LevelStat = tuple[int, int, tuple[int, int], float, int, float]


def scaled_results(
    candidates: list[Candidate], level_stats: list[LevelStat], params: RegionParams,
    grid: SuppressionGrid,
) -> tuple[tuple[ScaleLevel, ...], tuple[ScaledRegion, ...]]:
    """Suppress the candidates of all levels (:func:`suppress`); levels and numbered regions."""
    kept = suppress(candidates, params.nms_overlap, width=grid.shape[1], nms_pitch=grid.pitch,
                    merge_radius=params.merge_radius_level_px)
    per_level = {lv: 0 for lv, *_ in level_stats}
    for c in kept:
        per_level[c.region.level] += 1
    levels = tuple(
        ScaleLevel(level=lv, pitch_px=float(p), shape=shp, noise_sigma=ns, n_candidates=nc,
                   n_kept=per_level[lv], z_seed=zs)
        for lv, p, shp, ns, nc, zs in level_stats
    )
    regions = tuple(
        ScaledRegion(**{**c.region.__dict__, "id": i})
        for i, c in enumerate(sorted(kept, key=lambda c: -c.region.significance), start=1)
    )
    return levels, regions


def level_regions(
    height: np.ndarray, zmap: np.ndarray, appearance: np.ndarray, *, level: int, pitch: int,
    z: float, extent_frac: float, min_area: int, px_per_mm: float | None,
    direction: tuple[float, float], nms_pitch: int, nms_shape: tuple[int, int],
    min_height: float = 0.0, max_appearance_overlap: float = 0.5, tail_ratio: float = 5.0,
    max_slope: float = math.inf,
) -> list[Candidate]:
    """Regions of one level (vectorised seeds / extents), in baseline pixels.

    ``zmap`` is negated in place for the recessions (a full-resolution copy less).
    """
    found: list[tuple[ScaledRegion, np.ndarray] | None] = []
    for polarity, sign in (("bulge", 1.0), ("recession", -1.0)):
        s = zmap if sign > 0 else np.negative(zmap, out=zmap)
        labels, n = _label8(_open3(s >= 0.5 * z))
        if n == 0:
            continue
        peaks = _label_max(s, labels, n)
        # only the components seeded at z can hold a region: work in their boxes
        # (one pass over the level for the boxes, none per region)
        seeded = np.flatnonzero(peaks[1:] >= z) + 1
        if seeded.size == 0:
            continue
        boxes = ndimage.find_objects(labels)
        for k in seeded:
            box = boxes[k - 1]
            if box is None:  # pragma: no cover - a labelled component has a box
                continue
            oy, ox = box[0].start, box[1].start
            final = (labels[box] == k) & (s[box] >= max(0.5 * z, extent_frac * peaks[k]))
            sub, m = _label8(np.ascontiguousarray(final))
            for props in measure.regionprops(sub) if m else ():
                if props.area < min_area:
                    continue
                found.append(_make_candidate(
                    props, oy, ox, s, height, appearance, sign=sign, polarity=polarity,
                    level=level, pitch=pitch, z=z, px_per_mm=px_per_mm,
                    nms_pitch=nms_pitch, nms_shape=nms_shape, min_height=min_height,
                    max_appearance_overlap=max_appearance_overlap, max_slope=max_slope,
                ))
    kept = drop_tails([c[0] for c in found if c is not None], direction, tail_ratio)
    ids = {id(r) for r in kept}
    return [Candidate(c[0], c[1]) for c in found if c is not None and id(c[0]) in ids]


def _make_candidate(
    props: Any, oy: int, ox: int, s: np.ndarray,
    height: np.ndarray, appearance: np.ndarray, *, sign: float, polarity: str, level: int,
    pitch: int, z: float, px_per_mm: float | None, nms_pitch: int, nms_shape: tuple[int, int],
    min_height: float, max_appearance_overlap: float, max_slope: float = math.inf,
) -> tuple[ScaledRegion, np.ndarray] | None:
    """One component (``props`` of a box at ``oy, ox``) as a region and its footprint, or None."""
    rr, cc = props.coords[:, 0] + oy, props.coords[:, 1] + ox
    zpeak = float(s[rr, cc].max())
    if zpeak < z or appearance[rr, cc].mean() > max_appearance_overlap:
        return None
    values = height[rr, cc]
    peak = float(values.max() if sign > 0 else values.min())
    if abs(peak) < min_height:
        return None
    area_px = float(props.area) * pitch * pitch
    if abs(peak) > max_slope * math.sqrt(area_px / math.pi):  # steeper than relief
        return None
    row, col = props.centroid
    row, col = row + oy, col + ox
    r0, c0, r1, c1 = props.bbox
    r0, r1, c0, c1 = r0 + oy, r1 + oy, c0 + ox, c1 + ox
    region = ScaledRegion(
        id=0,
        polarity=polarity,  # type: ignore[arg-type]
        centroid=((col + 0.5) * pitch, (row + 0.5) * pitch),
        bbox=(c0 * pitch, r0 * pitch, c1 * pitch, r1 * pitch),
        area_px=area_px,
        peak=peak,
        mean=float(values.mean()),
        significance=zpeak,
        area_mm2=None if not px_per_mm else area_px / px_per_mm**2,
        scale_px=float(pitch),
        scale_mm=None if not px_per_mm else pitch / px_per_mm,
        level=level,
    )
    # footprint on the common suppression grid
    if pitch >= nms_pitch:  # a level pixel covers k x k grid cells
        k = pitch // nms_pitch
        off = np.arange(k)
        ys = (rr[:, None, None] * k + off[None, :, None]) + 0 * off[None, None, :]
        xs = (cc[:, None, None] * k + off[None, None, :]) + 0 * off[None, :, None]
        ys, xs = ys.ravel(), xs.ravel()
    else:
        ys, xs = rr * pitch // nms_pitch, cc * pitch // nms_pitch
    # grown by two cells: fragments of one deformation (a tenting ridge broken
    # by the light direction) touch and are suppressed as one region
    off = np.arange(-2, 3)
    ys = (ys[:, None, None] + off[None, :, None] + 0 * off[None, None, :]).ravel()
    xs = (xs[:, None, None] + off[None, None, :] + 0 * off[None, :, None]).ravel()
    ys = ys.clip(0, nms_shape[0] - 1)
    xs = xs.clip(0, nms_shape[1] - 1)
    return region, np.unique(ys * nms_shape[1] + xs)


def _cell_box(cells: np.ndarray, width: int) -> tuple[int, int, int, int]:
    """Row / column bounds ``(y0, x0, y1, x1)`` (inclusive) of flat cell indices."""
    ys, xs = cells // width, cells % width
    return int(ys.min()), int(xs.min()), int(ys.max()), int(xs.max())


def _near(a: Candidate, b: Candidate, radius: int, width: int) -> bool:
    """Whether two footprints share a cell or lie within ``radius`` cells of each other."""
    ay0, ax0, ay1, ax1 = _cell_box(a.cells, width)
    by0, bx0, by1, bx1 = _cell_box(b.cells, width)
    if ay0 > by1 + radius or by0 > ay1 + radius or ax0 > bx1 + radius or bx0 > ax1 + radius:
        return False
    if radius == 0:
        return np.intersect1d(a.cells, b.cells, assume_unique=True).size > 0
    # a's cells that could be near b: inside b's box grown by the radius; b's cells
    # rastered in that window grown once more, dilated by a disc of the radius
    wy0, wx0 = max(ay0, by0 - radius), max(ax0, bx0 - radius)
    wy1, wx1 = min(ay1, by1 + radius), min(ax1, bx1 + radius)
    oy, ox = wy0 - radius, wx0 - radius
    raster = np.zeros((wy1 - wy0 + 2 * radius + 1, wx1 - wx0 + 2 * radius + 1), np.uint8)
    ys, xs = b.cells // width - oy, b.cells % width - ox
    inside = (ys >= 0) & (ys < raster.shape[0]) & (xs >= 0) & (xs < raster.shape[1])
    raster[ys[inside], xs[inside]] = 1
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    grown = cv2.dilate(raster, disc, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    ys, xs = a.cells // width - oy, a.cells % width - ox
    inside = ((ys >= radius) & (ys < raster.shape[0] - radius)
              & (xs >= radius) & (xs < raster.shape[1] - radius))
    return bool(grown[ys[inside], xs[inside]].any())


def suppress(
    candidates: list[Candidate], overlap: float, *, width: int, nms_pitch: int,
    merge_radius: float = 0.0,
) -> list[Candidate]:
    """Keep the most significant of candidates that are one region.

    Two candidates are one region when their footprints (on the suppression grid
    of ``width`` cells a row, ``nms_pitch`` native pixels a cell) overlap by more
    than ``overlap`` of the smaller, or -- candidates of different levels -- when
    they touch or lie within ``merge_radius`` pixels of the coarser of the two
    levels: one deformation seen at two scales is often cut differently at each
    (a ring at the fine level, its centre at the coarse one) and was reported twice.
    """
    kept: list[Candidate] = []
    for cand in sorted(candidates, key=lambda c: -c.region.significance):
        clash = False
        for other in kept:
            inter = np.intersect1d(cand.cells, other.cells, assume_unique=True).size
            if inter > overlap * min(cand.cells.size, other.cells.size):
                clash = True
                break
            if cand.region.level != other.region.level:
                pitch = max(cand.region.scale_px, other.region.scale_px)
                radius = math.ceil(merge_radius * pitch / nms_pitch)
                if _near(cand, other, radius, width):
                    clash = True
                    break
        if not clash:
            kept.append(cand)
    return kept


def multiscale_change(
    baseline: np.ndarray,
    current: np.ndarray,
    valid: np.ndarray,
    light: Light,
    *,
    px_per_mm: float | None = None,
    device: torch.device | str | None = None,
    tile: int = 1024,
    batch: int = 4,
    z: float = 7.0,
    false_alarms: float = 3.0,
    tail_fit: tuple[float, float] = (3.0, 6.0),
    extent_frac: float = 0.2,
    min_diameter_level_px: float = 4.0,
    decay_level_px: float = 16.0,
    halo_decays: float = 6.0,
    min_level_side: int = 96,
    max_levels: int | None = None,
    nms_overlap: float = 0.3,
    merge_radius_level_px: float = 8.0,
    combine_levels: bool = True,
    peak_levels: int = 3,
    map_peak_levels: int = 3,
    map_peak_z: float = 3.0,
    max_slope: float = 1.0,
    background_frac: float = 0.03,
    coarse_side: int = 1024,
    presmooth_px: float = 1.0,
    chroma_z: float = 6.0,
    chroma_floor: float = 0.03,
    min_height_mm: float | None = None,
    min_height_px: float | None = None,
    release: Callable[[], None] | None = None,
) -> MultiScaleChange:
    """Regions of height change at every scale, from native pixels to canvas-wide bulges.

    Parameters
    ----------
    baseline, current
        H x W x 3 float32 linear light at full resolution, ``current`` already
        warped onto the baseline grid.
    valid
        H x W bool, where the warped current has data.
    light
        Direction of the lamp.
    px_per_mm
        Baseline pixels per millimetre, when known (``scale_mm``, ``area_mm2``).
    device
        Torch device (``"cpu"``, ``"cuda"``, ...); default CPU.
    tile, batch
        Tile core size in pixels of each level, and tiles per batch.
    z, extent_frac
        Seed threshold in sigmas of each level's level of detection; regions
        extend down to ``z / 2`` and to ``extent_frac`` of their peak.
    false_alarms
        Each level seeds at the larger of ``z`` and the level where about this
        many noise regions are expected, extrapolated from the exponential
        tail of the level's own noise peaks between ``tail_fit`` sigmas
        (structured clutter has a heavier tail than Gaussian noise, and a
        larger level has more peaks). ``z = 7`` was chosen on ``TRAIN_SEEDS``
        pairs (2 MP); ``false_alarms = 3`` (was 10) on the 6 MP fine-scale
        train pairs (small-damage F1 0.74 -> 0.83, 1 gave 0.87) and the
        benchmark's validation pairs (F1 0.963 -> 0.972, 1 the same), never
        on test pairs.
    tail_fit
        Range of sigmas over which that tail is fitted.
    min_diameter_level_px
        Smallest region kept, as a disc diameter in pixels of its level.
    decay_level_px, halo_decays
        Integration memory in level pixels; tile halo in decays.
    min_level_side, max_levels
        The pyramid stops when the long side would fall below
        ``min_level_side`` or after ``max_levels`` levels.
    nms_overlap
        Candidates whose footprints overlap by more than this fraction of the
        smaller one are the same region; the more significant is kept.
    merge_radius_level_px
        Candidates of different levels whose footprints touch or lie within
        this many pixels of the coarser level (scaled with that level) are one
        region too, the more significant kept. 8 was chosen on the 6 MP
        fine-scale train pairs (small-damage false alarms 5 / 5 / 4 / 3 for
        0 / 2 / 4 / 8, no truth lost); the benchmark's validation pairs gave
        the same figures for all four.
    combine_levels
        The height map (``preview``) takes, at every pixel, the height of the
        level where the change is most significant there (every level brought
        to the preview's grid), instead of the preview level's height alone: a
        level's two-sided integration keeps deformations of about its own
        scale only.
    peak_levels
        A region's peak height is the largest of its own level's and of the
        next ``peak_levels`` coarser levels' within its box (0: its own
        level's only). A level's two-sided integration under-reads a
        deformation wider than its decay length, and a region is often most
        significant at a fine level where the noise is lowest, so its own
        level's height is too low: on the benchmark's validation pairs the
        found regions' median peak / true peak was 0.59 with 0, 0.70 with 3
        (the grid's 0.70; 5 the same as 3).
    map_peak_levels, map_peak_z
        The height map likewise: where a pixel's best ``|z|`` reaches
        ``map_peak_z``, its height is the largest of the same sign over that
        level and the next ``map_peak_levels`` coarser ones (0: off). On the
        validation pairs 3 raised the correlation with the true height change
        from 0.791 to 0.812 and changed nothing else (6 the same).
    max_slope
        A candidate whose own-level peak over its equivalent radius exceeds
        this is not read as relief: one lamp's shading is linear in the slope
        only for gentle slopes, and on real photographs steeper "regions" are
        cast shadows and glints that move with the lamp (leaves12, lamp moved
        30 degrees, nothing changed: five regions of 19-30 px^2 with implied
        slopes of 2-4). On the validation pairs the candidates on true
        deformations had slopes up to 0.25; 1 (45 degrees) leaves them all.
    background_frac, coarse_side
        Low-frequency removal: Gaussian sigma as a fraction of the long side,
        estimated on a grid of ``coarse_side`` pixels.
    presmooth_px, chroma_z, chroma_floor
        As in :func:`monitor.change.methods.photometric_change` (native pixels).
    min_height_mm, min_height_px
        Absolute floor on a region's peak height change: ``min_height_px``
        baseline pixel pitches, and ``min_height_mm`` when ``px_per_mm`` is
        known if that is more (on a coarse scan 0.02 mm is less than a pixel
        pitch's residue: at 4 px/mm 0.08 px, and the sample pair then showed a
        0.11 px false recession); None takes the validated settings ``fine_min_height_mm`` /
        ``fine_min_height_px`` (:class:`monitor.config.Settings`, defaults
        0.02 mm and 0.12 px). At native resolution the level of detection is so low that
        faint, few-pixel texture residuals pass ``z`` (10 sigmas of a level
        noise of ~1 micrometre); a 20 um floor removes them. Both were
        chosen on ``TRAIN_SEEDS`` pairs at 2 and 6 MP (false alarms <= 0.02 mm
        / 0.10 px, the faintest true blister 0.027 mm / 0.14 px), never on
        test pairs.

    release
        Called once the native slope is computed, when ``baseline`` and
        ``current`` are no longer read: a caller that holds the scans only
        through what ``release`` clears lets their memory go before the levels
        are built (at 100 MP the two float scans are 2.3 GB).

    Returns
    -------
    MultiScaleChange
        Regions (each once, with ``scale_px`` / ``scale_mm``), per-level
        statistics, a coarse preview and per-stage timings.

    Raises
    ------
    MonitorError
        Bad shapes, no overlap, frontal light, bad settings.

    Examples
    --------
    >>> from monitor.results import Light
    >>> rng = np.random.default_rng(0)
    >>> b = rng.uniform(0.3, 0.6, (256, 256, 3)).astype(np.float32)
    >>> out = multiscale_change(b, b.copy(), np.ones((256, 256), bool), Light(180, 25))
    >>> len(out.regions)
    0
    """
    _check_inputs(baseline, current, valid, tile, px_per_mm)
    defaults = Settings()
    min_height_mm = defaults.fine_min_height_mm if min_height_mm is None else min_height_mm
    min_height_px = defaults.fine_min_height_px if min_height_px is None else min_height_px
    if not (min_height_mm >= 0 and min_height_px >= 0):  # NaN fails too
        raise MonitorError("multiscale: min_height_mm and min_height_px must be >= 0")
    min_height = max(min_height_mm * px_per_mm, min_height_px) if px_per_mm else min_height_px
    if not (z > 0 and 0 < extent_frac < 1 and decay_level_px > 0 and halo_decays > 0
            and batch >= 1 and 0 < nms_overlap <= 1 and min_level_side >= 16
            and merge_radius_level_px >= 0 and false_alarms > 0 and peak_levels >= 0
            and map_peak_levels >= 0 and max_slope > 0):
        raise MonitorError(
            "multiscale: z, extent_frac, decay, halo, batch, nms_overlap, merge radius or "
            "false_alarms out of range"
        )
    ux, uy, gain = in_plane_direction(light)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    timings: list[StageTiming] = []

    def mark(name: str, start: float) -> float:
        now = time.perf_counter()
        timings.append(StageTiming(name, now - start, peak_rss_mb()))
        return now

    h, w = valid.shape
    t0 = time.perf_counter()
    with torch.inference_mode():
        background, median_lum = _coarse_background(
            baseline, current, valid, coarse_side, background_frac, dev
        )
        slope, chroma, ok = _native_slope(
            baseline, current, valid, gain, background, median_lum, tile, presmooth_px, dev
        )
        if not ok.any():
            raise MonitorError("multiscale: no trusted pixels (all dark, clipped or outside)")
        appearance = _appearance_and_fill(slope, chroma, ok, chroma_z, chroma_floor, dev)
        del chroma, baseline, current, valid  # the levels read the slope only
        if release is not None:
            release()
        t0 = mark("ms_slope", t0)

        grid = suppression_grid((h, w))
        params = RegionParams(z, false_alarms, tail_fit, extent_frac, min_diameter_level_px,
                              nms_overlap, merge_radius_level_px, max_slope)
        candidates: list[Candidate] = []
        level_stats: list[LevelStat] = []
        level_slope = slope
        # bool at level 0 (a float copy of each would be two more full-resolution maps),
        # fractions of trusted / appearance pixels from level 1 on
        level_ok: np.ndarray = ok
        level_app: np.ndarray = appearance
        preview, preview_scale = None, 1.0
        pv_level, shape_pv = preview_grid((h, w))
        # every level's height and z on the preview's grid (combine_levels)
        on_preview: list[tuple[np.ndarray, np.ndarray]] = []
        level = 0
        while True:
            pitch = 2**level
            lh, lw = level_slope.shape
            height, linear = _integrate_level(
                level_slope, (ux, uy), decay_level_px, 0.5, tile, halo_decays, batch, dev
            )
            # in level pixels -> baseline pixel pitch
            height *= pitch
            linear *= pitch
            trusted = level_ok > 0.5
            clean = level_app < 0.5
            if peak_levels:
                _remeasure_peaks(candidates, height, trusted, level, pitch, peak_levels)
            # spreads measured on about 4 M pixels of the level at most
            sample = max(1, int(math.sqrt(lh * lw / 4e6)))
            noise_map = local_noise(linear, trusted & clean, sample=sample)
            del linear
            noise_median = float(np.median(noise_map[::sample, ::sample]))
            # z = height / noise where trusted, else 0, in the noise map's own memory
            zmap = np.maximum(noise_map, 1e-12, out=noise_map)
            np.divide(height, zmap, out=zmap)
            zmap[~trusted] = 0.0
            del noise_map
            if combine_levels:  # before level_regions negates zmap
                on_preview.append(tuple(  # type: ignore[arg-type]
                    to_grid(m, level - pv_level, shape_pv) for m in (height, zmap)
                ))
            found, z_level = level_detections(
                height, zmap, ~clean, level=level, params=params, grid=grid,
                direction=(ux, uy), px_per_mm=px_per_mm, min_height=min_height,
            )
            candidates.extend(found)
            level_stats.append(
                (level, pitch, (lh, lw), noise_median, len(found), z_level)
            )
            if preview is None and max(lh, lw) <= 1600:
                preview = np.where(trusted | (level_ok > 0), height, np.nan).astype(np.float32)
                preview_scale = 1.0 / pitch
                pv_level = level
            del height, zmap
            t0 = mark(f"ms_level{level}", t0)
            level += 1
            nxt = (math.ceil(lh / 2), math.ceil(lw / 2))
            if max(nxt) < min_level_side or (max_levels is not None and level >= max_levels):
                break
            # one map at a time (a stacked copy of level 0 would be three more maps)
            level_slope, level_ok, level_app = (
                F.avg_pool2d(torch.from_numpy(m.astype(np.float32, copy=False))[None, None], 2,
                             ceil_mode=True)[0, 0].numpy()
                for m in (level_slope, level_ok, level_app)
            )
            if level == 1:
                del slope
        levels, regions = scaled_results(candidates, level_stats, params, grid)
        if combine_levels and preview is not None:
            preview = combine_preview(preview, on_preview, map_peak_levels, map_peak_z)
        t0 = mark("ms_select", t0)

    if preview is None:  # pragma: no cover - min_level_side > 1600 only
        preview, preview_scale = np.zeros((1, 1), np.float32), 1.0 / max(h, w)
    return MultiScaleChange(
        regions=regions,
        levels=levels,
        preview=preview,
        preview_scale=preview_scale,
        method="photometric-multiscale",
        model_id=MODEL_ID,
        device=str(dev),
        tile=tile,
        min_detectable_px=float(min_diameter_level_px),
        min_detectable_mm=None if not px_per_mm else min_diameter_level_px / px_per_mm,
        integration_direction=(ux, uy),
        timings=tuple(timings),
        min_height_px=min_height,
    )

