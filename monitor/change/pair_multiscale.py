"""``--method pair --scale auto``: the pair network at every scale, in tiles with halos.

The single-grid pair route (:func:`monitor.change.pair.pair_change`) shrinks
the whole scan to the net's working grid (``work_px``, 512): on a 24 MP scan a
2-8 mm blister is a pixel or two there. Here the net reads every level of a
pyramid of the full-resolution registered pair:

1. **Levels.** Level 0 is the native pair; level ``L + 1`` averages level
   ``L`` over 2 x 2 pixels (linear light, so averaging is what a coarser
   sensor would record). The pyramid stops when the next level's long side
   would fall below ``min_level_side`` (256 by default: the coarsest level is
   then about the single-grid route's working grid).
2. **Tiles at scale 1.** Each level is cut into cores of ``core`` pixels read
   with a ``halo`` on every side (clipped at the image's edges, as the single
   grid sees its edges); :func:`~monitor.change.pair.pair_inputs` and the net
   run on each tile with no further resampling and the cores are stitched.
   Every length of the features is fixed in working pixels -- the pair
   features' background (``BACKGROUND_PX`` 32) and integration memory
   (``DECAY_PX`` 48), and the physics channel's lengths, which
   :func:`~monitor.change.methods.photometric_change` takes as fractions of a
   ``work_px`` long side (integration memory 51 px, background 15 px) -- and
   the luminance references are the level's, so a tile sees what the net saw
   in training and tiles agree where they meet. The default halo (160 px) is
   five background lengths and three integration memories; a level no larger
   than one tile is one tile. Tiles of one shape go through the net in
   batches (``batch``), on any torch device.
3. **Per level**, the height (working pixels of the level, i.e. times
   ``2^L`` baseline pixels) gets its own local level of detection --
   ``noise_mult`` (the weights' own, chosen on the validation split) times
   the local robust spread of the output (:func:`monitor.photometry.local_noise`)
   -- and its own regions (:func:`monitor.change.multiscale.level_detections`:
   seeds at ``z`` sigmas or at the level's expected-``false_alarms`` tail,
   whichever is higher).
4. **One report per region** across levels
   (:func:`monitor.change.multiscale.scaled_results`), as ``--scale auto``
   does for the photometric method.

Memory is bounded by a level and a batch of tile features; the native pair is
read tile by tile (no full-resolution feature stack).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from monitor.change.multiscale import (
    Candidate,
    LevelStat,
    RegionParams,
    combine_preview,
    level_detections,
    preview_grid,
    scaled_results,
    suppression_grid,
    to_grid,
)
from monitor.change.pair import TARGET_SCALE, PairInputs, pair_inputs
from monitor.checks import check_image, check_pair
from monitor.config import Settings
from monitor.depth.tiling import autocast_context, prepare_model
from monitor.errors import MonitorError
from monitor.nets import LoadedNet
from monitor.photometry import (
    BRIGHT,
    DARK,
    EPS,
    TileBox,
    in_plane_direction,
    iter_tiles,
    local_noise,
)
from monitor.resources import peak_rss_mb
from monitor.results import Light, MultiScaleChange, StageTiming

__all__ = [
    "PAIR_REGIONS", "LevelPair", "grow", "inside_overlap", "level_count", "next_level",
    "pair_level", "pair_multiscale_change",
]

MODEL_ID_PREFIX = "monitor/pair-multiscale-v1"
#: Channel of :func:`~monitor.change.pair.pair_features` holding the appearance mask.
APPEARANCE_CHANNEL = 6
#: Rows pooled at a time when a level is built (bounds the temporaries).
_STRIP_ROWS = 1024


@dataclass(frozen=True)
class LevelPair:
    """One pyramid level of a registered pair (linear light, baseline grid).

    ``current`` may hold anything outside ``valid``; it is replaced by the
    baseline there when read (:meth:`tile`).
    """

    baseline: np.ndarray  # (h, w, 3) float32
    current: np.ndarray  # (h, w, 3) float32
    valid: np.ndarray  # (h, w) bool

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the level."""
        h, w = self.valid.shape
        return h, w

    def tile(self, t: TileBox) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[slice, slice]]:
        """The tile's core and halo, clipped to the level, and where its core lies in it."""
        h, w = self.shape
        ys0, ys1 = max(t.y0 - t.halo, 0), min(t.y1 + t.halo, h)
        xs0, xs1 = max(t.x0 - t.halo, 0), min(t.x1 + t.halo, w)
        v = self.valid[ys0:ys1, xs0:xs1]
        b = np.ascontiguousarray(self.baseline[ys0:ys1, xs0:xs1], dtype=np.float32)
        c = np.where(v[..., None], np.nan_to_num(self.current[ys0:ys1, xs0:xs1]), b)
        core = (slice(t.y0 - ys0, t.y1 - ys0), slice(t.x0 - xs0, t.x1 - xs0))
        return b, c.astype(np.float32), np.ascontiguousarray(v), core


def _pool2(a: np.ndarray) -> np.ndarray:
    """2 x 2 average of an (H, W) or (H, W, C) float array (ceil-sized), in row strips."""
    planar = a[..., None] if a.ndim == 2 else a
    h, w, ch = planar.shape
    out = np.empty((math.ceil(h / 2), math.ceil(w / 2), ch), np.float32)
    for y in range(0, h, _STRIP_ROWS):
        strip = np.ascontiguousarray(planar[y : y + _STRIP_ROWS].transpose(2, 0, 1), np.float32)
        pooled = F.avg_pool2d(torch.from_numpy(strip)[None], 2, ceil_mode=True)[0]
        out[y // 2 : y // 2 + pooled.shape[1]] = pooled.permute(1, 2, 0).numpy()
    return out[..., 0] if a.ndim == 2 else out


def next_level(pair: LevelPair) -> LevelPair:
    """The level above: 2 x 2 averages; valid where all four pixels were.

    Examples
    --------
    >>> p = LevelPair(np.ones((5, 4, 3), np.float32), np.ones((5, 4, 3), np.float32),
    ...               np.ones((5, 4), bool))
    >>> next_level(p).shape
    (3, 2)
    """
    baseline = _pool2(pair.baseline)
    current = np.empty_like(baseline)
    for y in range(0, pair.shape[0], _STRIP_ROWS):  # outside valid: the baseline
        rows = slice(y, y + _STRIP_ROWS)
        filled = np.where(pair.valid[rows, :, None], np.nan_to_num(pair.current[rows]),
                          pair.baseline[rows])
        pooled = _pool2(filled)
        current[y // 2 : y // 2 + pooled.shape[0]] = pooled
    valid = _pool2(pair.valid.astype(np.float32)) > 0.999
    return LevelPair(baseline, current, valid)


def _references(pair: LevelPair, max_samples: int = 1_000_000) -> tuple[float, float]:
    """The level's median luminance (mean of RGB) and median log luminance, trusted pixels.

    What :func:`~monitor.change.methods.photometric_change` and
    :func:`~monitor.change.pair.pair_features` take from a whole image, here
    from the whole level for every tile (on a regular subsample).
    """
    h, w = pair.shape
    step = max(1, int(math.sqrt(h * w / max_samples)))
    b = pair.baseline[::step, ::step].astype(np.float32)
    c = pair.current[::step, ::step]
    ok = pair.valid[::step, ::step] & (b.min(axis=2) > DARK) & (b.max(axis=2) < BRIGHT)
    ok &= (np.nan_to_num(c).min(axis=2) > DARK) & (np.nan_to_num(c).max(axis=2) < BRIGHT)
    if not ok.any():
        raise MonitorError("pair multiscale: no trusted pixels (all dark, clipped or outside)")
    mean_lum = float(np.median(b.mean(axis=2)[ok]))
    lum = 0.2126 * b[..., 0] + 0.7152 * b[..., 1] + 0.0722 * b[..., 2]
    return mean_lum, float(np.median(np.log(np.clip(lum[ok], 0, None) + EPS)))


def _predict_tiles(
    model: torch.nn.Module, feats: list[torch.Tensor], multiple: int, device: torch.device
) -> np.ndarray:
    """The net on equally sized tiles' features (canonical orientation): (B, h, w) float32."""
    x = torch.stack(feats).to(device)
    th, tw = x.shape[-2:]
    ph, pw = (-th) % multiple, (-tw) % multiple
    if ph or pw:  # as the single grid: reflect-padded on the bottom and right
        x = F.pad(x, (0, pw, 0, ph), mode="reflect" if ph < th and pw < tw else "replicate")
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    with autocast_context(device):
        y = model(x)
    y = y[:, 0] if y.dim() == 4 else y
    return y.float()[:, :th, :tw].cpu().numpy()


@dataclass
class _Pending:
    """Tiles whose features are computed and wait for the net."""

    boxes: list[tuple[TileBox, tuple[slice, slice]]]
    inputs: list[PairInputs]


def _tile_inputs(
    pair: LevelPair, light: Light, core: int, halo: int, work_px: int, device: torch.device
) -> Iterator[tuple[TileBox, tuple[slice, slice], PairInputs]]:
    """Every tile's net inputs, row by row, with the level's references."""
    median_lum, lum_level = _references(pair)
    for t in iter_tiles(pair.shape, core, halo):
        b, c, v, where = pair.tile(t)
        inputs = pair_inputs(b, c, v, light, device, length_px=work_px, median_lum=median_lum,
                             lum_level=lum_level)
        yield t, where, inputs


def pair_level(
    net: LoadedNet, pair: LevelPair, light: Light, *, core: int = 448, halo: int = 160,
    batch: int = 4, device: torch.device | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pair net's height change on one level, in tiles with halos, stitched.

    Parameters
    ----------
    net
        A loaded pair network.
    pair
        The level (:class:`LevelPair`).
    light
        The lamp, in the images' orientation.
    core, halo
        Tile core and halo in level pixels (a level no larger than ``core``
        is one tile).
    batch
        Tiles of one shape per call of the net.
    device
        Where the features and the net run (default CPU).

    Returns
    -------
    height, trusted, appearance
        (h, w) float32 height change in pixels of the level (+ = towards the
        viewer, 0 outside the overlap), and bool masks: trusted pixels and the
        photometric appearance (chromatic change) mask.
    """
    device = device or torch.device("cpu")
    if net.kind != "pair":
        raise MonitorError(f"pair multiscale: the model is a {net.kind!r} network")
    model = prepare_model(net.model, device)
    work_px = int(net.meta_float("work_px", 512))
    target_scale = net.meta_float("target_scale", TARGET_SCALE)
    h, w = pair.shape
    height = np.zeros((h, w), np.float32)
    trusted = np.zeros((h, w), bool)
    appearance = np.zeros((h, w), bool)
    pending = _Pending([], [])

    def flush() -> None:
        if not pending.inputs:
            return
        q = _predict_tiles(model, [i.features for i in pending.inputs], net.spec.multiple, device)
        for k, ((t, where), inputs) in enumerate(zip(pending.boxes, pending.inputs, strict=True)):
            qk = np.rot90(q[k], -inputs.turns) if inputs.turns else q[k]
            cells = (slice(t.y0, t.y1), slice(t.x0, t.x1))
            height[cells] = qk[where] * (inputs.gain / target_scale)
            trusted[cells] = inputs.trusted[where]
            appearance[cells] = inputs.channel(APPEARANCE_CHANNEL)[where] > 0.5
        pending.boxes.clear()
        pending.inputs.clear()

    with torch.inference_mode():
        for t, where, inputs in _tile_inputs(pair, light, core, halo, work_px, device):
            same = not pending.inputs or pending.inputs[0].features.shape == inputs.features.shape
            if not same or len(pending.inputs) >= batch:
                flush()
            pending.boxes.append((t, where))
            pending.inputs.append(inputs)
        flush()
    return height, trusted, appearance


def _level_shape(shape: tuple[int, int], level: int) -> tuple[int, int]:
    """Shape of pyramid level ``level`` of a native image of ``shape`` (sides halve, ceil)."""
    h, w = shape
    for _ in range(level):
        h, w = math.ceil(h / 2), math.ceil(w / 2)
    return h, w


def level_count(shape: tuple[int, int], min_level_side: int, max_levels: int | None) -> int:
    """Levels of the pyramid: halve while the long side stays >= ``min_level_side``.

    Level 0 always exists; at most ``max_levels``.

    Examples
    --------
    >>> level_count((2000, 3000), 256, None), level_count((720, 960), 256, None)
    (4, 2)
    """
    n = 1
    while max(_level_shape(shape, n)) >= min_level_side and (max_levels is None or n < max_levels):
        n += 1
    return n


def _check(
    baseline: np.ndarray, current: np.ndarray, valid: np.ndarray, core: int, halo: int,
    px_per_mm: float | None,
) -> None:
    check_pair("pair multiscale", baseline, current, valid)
    check_image(baseline, "H W 3", name="pair multiscale: baseline", min_side=64)
    check_image(current, "H W 3", name="pair multiscale: current")
    if core < 64 or halo < 64:
        raise MonitorError(f"pair multiscale: core and halo must be >= 64 px, got {core}, {halo}")
    if px_per_mm is not None and not (math.isfinite(px_per_mm) and px_per_mm > 0):
        raise MonitorError(f"pair multiscale: px_per_mm must be positive, got {px_per_mm}")


def inside_overlap(valid: np.ndarray, edge_px: int) -> np.ndarray:
    """``valid`` less ``edge_px`` pixels along the overlap's edge and the image's border.

    The net's output rises over the last few pixels before the edge of the
    current scan's overlap (a step in every input channel), most at coarse
    levels: regions are not seeded there.

    Examples
    --------
    >>> int(inside_overlap(np.ones((10, 10), bool), 2).sum())
    36
    """
    if edge_px <= 0:
        return valid
    k = np.ones((2 * edge_px + 1, 2 * edge_px + 1), np.uint8)
    out = cv2.erode(valid.astype(np.uint8), k, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return out.astype(bool)


def grow(mask: np.ndarray, px: int) -> np.ndarray:
    """``mask`` dilated by a ``2 px + 1`` square (unchanged for ``px <= 0``).

    Examples
    --------
    >>> m = np.zeros((5, 5), bool); m[2, 2] = True
    >>> int(grow(m, 1).sum())
    9
    """
    if px <= 0 or not mask.any():
        return mask
    k = np.ones((2 * px + 1, 2 * px + 1), np.uint8)
    return cv2.dilate(mask.astype(np.uint8), k).astype(bool)


def _level_z(
    height: np.ndarray, trusted: np.ndarray, appearance: np.ndarray, noise_mult: float
) -> tuple[np.ndarray, float]:
    """``height / (noise_mult * local spread)`` (0 where untrusted) and the median noise."""
    lh, lw = height.shape
    sample = max(1, int(math.sqrt(lh * lw / 4e6)))
    mask = trusted & ~appearance
    if not mask.any():
        mask = trusted
    noise = local_noise(height, mask, sample=sample) * np.float32(noise_mult)
    np.maximum(noise, 1e-12, out=noise)
    zmap = np.divide(height, noise).astype(np.float32)
    zmap[~trusted] = 0.0
    return zmap, float(np.median(noise[::sample, ::sample]))


def pair_multiscale_change(
    baseline: np.ndarray,
    current: np.ndarray,
    valid: np.ndarray,
    light: Light,
    *,
    model: LoadedNet,
    px_per_mm: float | None = None,
    device: torch.device | str | None = None,
    core: int = 448,
    halo: int = 160,
    batch: int = 4,
    regions: RegionParams | None = None,
    min_level_side: int = 256,
    max_levels: int | None = None,
    edge_px: int = 8,
    appearance_frac: float = 0.006,
    min_height_mm: float | None = None,
    min_height_px: float | None = None,
    release: Callable[[], None] | None = None,
) -> MultiScaleChange:
    """Regions of height change read by the pair network at every scale of the pair.

    Parameters
    ----------
    baseline, current
        H x W x 3 float32 linear light at full resolution, ``current`` already
        warped onto the baseline grid (anything outside ``valid``).
    valid
        H x W bool, where the warped current has data.
    light
        Direction of the lamp.
    model
        A loaded pair network (:func:`monitor.change.pair.load_pair_model`).
    px_per_mm
        Baseline pixels per millimetre, when known (``scale_mm``, ``area_mm2``).
    device
        Torch device; default CPU.
    core, halo, batch
        Tiles of every level (:func:`pair_level`).
    regions
        Seeds, extents and cross-level suppression
        (:class:`monitor.change.multiscale.RegionParams`); default
        :data:`PAIR_REGIONS`.
    min_level_side, max_levels
        The pyramid stops when the next level's long side would fall below
        ``min_level_side`` or after ``max_levels`` levels.
    edge_px
        No region is seeded within this many level pixels of the overlap's
        edge or the image's border (:func:`inside_overlap`).
    appearance_frac
        Each level's appearance mask is grown by this fraction of the native
        long side (as :func:`~monitor.change.multiscale.multiscale_change`
        grows its native one): a tile's own mask is grown by a fraction of
        the working grid only, a few native pixels at level 0, and the edges
        of a stain, read as relief by the net, passed as regions.
    min_height_mm, min_height_px
        Floor on a region's peak height change, as in
        :func:`monitor.change.multiscale.multiscale_change` (default: the
        settings' ``fine_min_height_mm`` / ``fine_min_height_px``).
    release
        Called once level 1 is built, when ``baseline`` and ``current`` are no
        longer read (see :func:`~monitor.change.multiscale.multiscale_change`).

    Returns
    -------
    MultiScaleChange
        ``method`` ``"pair-multiscale"``; heights in baseline pixel pitch.

    Raises
    ------
    MonitorError
        Bad shapes or settings, no overlap, not a pair network.
    """
    _check(baseline, current, valid, core, halo, px_per_mm)
    params = regions or PAIR_REGIONS
    defaults = Settings()
    mm = defaults.fine_min_height_mm if min_height_mm is None else min_height_mm
    px = defaults.fine_min_height_px if min_height_px is None else min_height_px
    if not (mm >= 0 and px >= 0 and batch >= 1 and min_level_side >= 32 and edge_px >= 0
            and appearance_frac >= 0):
        raise MonitorError("pair multiscale: min heights, batch, min_level_side, edge_px or "
                           "appearance_frac out of range")
    min_height = max(mm * px_per_mm, px) if px_per_mm else px  # as multiscale_change
    dev = torch.device(device) if device is not None else torch.device("cpu")
    ux, uy, _ = in_plane_direction(light)
    noise_mult = model.meta_float("noise_mult", 1.0)
    h, w = valid.shape
    grid = suppression_grid((h, w))
    n_levels = level_count((h, w), min_level_side, max_levels)
    pv_level, shape_pv = preview_grid((h, w))
    if pv_level >= n_levels:  # the pyramid stops above the preview's level: its last level
        pv_level, shape_pv = n_levels - 1, _level_shape((h, w), n_levels - 1)
    timings: list[StageTiming] = []
    candidates: list[Candidate] = []
    level_stats: list[LevelStat] = []
    on_preview: list[tuple[np.ndarray, np.ndarray]] = []
    preview: np.ndarray | None = None
    pair = LevelPair(baseline, current, valid)
    del baseline, current, valid
    t0 = time.perf_counter()
    for level in range(n_levels):
        if level > 0:
            pair = next_level(pair)
            if level == 1 and release is not None:
                release()
        pitch = 2**level
        height, trusted, appearance = pair_level(model, pair, light, core=core, halo=halo,
                                                 batch=batch, device=dev)
        height *= np.float32(pitch)  # level pixels -> baseline pixel pitch
        trusted &= inside_overlap(pair.valid, edge_px)
        appearance = grow(appearance, round(appearance_frac * max(h, w) / pitch))
        zmap, noise_median = _level_z(height, trusted, appearance, noise_mult)
        on_preview.append((to_grid(height, level - pv_level, shape_pv),
                           to_grid(zmap, level - pv_level, shape_pv)))
        if level == pv_level:
            preview = np.where(pair.valid, height, np.nan).astype(np.float32)
        found, z_level = level_detections(
            height, zmap, appearance, level=level, params=params, grid=grid,
            direction=(ux, uy), px_per_mm=px_per_mm, min_height=min_height,
        )
        candidates.extend(found)
        level_stats.append((level, pitch, pair.shape, noise_median, len(found), z_level))
        del height, zmap, trusted, appearance
        now = time.perf_counter()
        timings.append(StageTiming(f"pms_level{level}", now - t0, peak_rss_mb()))
        t0 = now
    del pair
    levels, found_regions = scaled_results(candidates, level_stats, params, grid)
    assert preview is not None  # pv_level < n_levels
    preview = combine_preview(preview, on_preview)
    timings.append(StageTiming("pms_select", time.perf_counter() - t0, peak_rss_mb()))
    return MultiScaleChange(
        regions=found_regions,
        levels=levels,
        preview=preview,
        preview_scale=1.0 / 2**pv_level,
        method="pair-multiscale",
        model_id=f"{MODEL_ID_PREFIX}+{model.model_id}",
        weights_sha256=model.sha256,
        device=str(dev),
        tile=core,
        min_detectable_px=float(params.min_diameter_level_px),
        min_detectable_mm=None if not px_per_mm else params.min_diameter_level_px / px_per_mm,
        integration_direction=(ux, uy),
        timings=tuple(timings),
        min_height_px=min_height,
    )


#: Region settings of the pair net's pyramid: those of the photometric pyramid
#: but for the seed floor (6, the grid's ``significance_z``, in sigmas of
#: ``noise_mult`` x the output's local spread) and the cross-level merge radius
#: (16 level px: at 8 the net's ring fragments around a deformation found one
#: level up stayed separate regions). Chosen with ``bench/finescale_sweep.py
#: --method pair`` on the 6 MP fine-scale train pairs (edge_px 0 -> 8, appearance
#: growth 0 -> 0.006, merge 8 -> 16: false alarms 11 -> 0, misses 3 -> 3; z 6
#: and 10 gave the same), never on test pairs.
PAIR_REGIONS = RegionParams(z=6.0, merge_radius_level_px=16.0)
