"""From a change map to regions: significance, components, measurements.

A pixel is significant when its change exceeds ``z`` times the level of
detection (FIELD-NOTES.md, after M3C2), the noise of the change map as its
estimator reports it (sensor noise and registration error both enter it).
A region is seeded by significant pixels and extends over the connected
pixels above both ``z / 2`` sigmas and ``extent_frac`` of its own peak -- the
same definition of a deformation's extent as the synthetic ground truth, and
one that keeps a strong region from leaking into faint neighbouring streaks.
Regions are cleaned morphologically and measured with scikit-image
``regionprops``. ``significance`` is the region's peak over the local level of
detection (a z-score).

The growing is our own, not ``skimage.filters.apply_hysteresis_threshold``:
that function is only the first half of it (seeds above ``z`` grown over
pixels above ``z / 2``) and grows differently (strict ``>``, 4-connected, no
3 x 3 opening against one-pixel bridges); the cut at ``extent_frac`` of each
region's own peak, and the split into the parts that still hold a seed, are
not in it. Measured with it swapped in for the first half (``python
bench/hysteresis.py --maps 40``: 40 synthetic maps, 224 bumps and dents): the
same 209 regions, 201 true deformations found and 1 spurious either way, but
different region outlines on 14 of the 40 maps (mean box IoU 0.993); on the
benchmark (``bench/benchmark.py --configs photometric --max-pairs 6
--no-auto-light``, the growing swapped as ``bench/hysteresis.py`` does) every
score is the same and two region centroids move by 0.1 px. No better, not
identical, and ours is the definition the synthetic ground truth uses, so
ours stays; scikit-image's would replace two lines of it.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from skimage import measure

from monitor.checks import check_image
from monitor.errors import MonitorError
from monitor.results import (
    AppearanceClass,
    AppearanceRegion,
    ChangeMap,
    Outline,
    Polarity,
    Region,
)

#: A region lighter by at least this (L*) and less saturated is called a possible loss.
LOSS_MIN_DELTA_L = 5.0
#: Smallest mean CIEDE2000 difference of an appearance region worth reporting.
MIN_DELTA_E = 2.0


def _components(zmap: np.ndarray, z: float, extent_frac: float, min_area: int) -> np.ndarray:
    """Label the regions of one polarity (``zmap`` > 0 is that polarity's change, in sigmas)."""
    low = ndimage.binary_opening(zmap >= 0.5 * z, structure=np.ones((3, 3)))
    labels, _n = ndimage.label(low, structure=np.ones((3, 3)))
    return _cut_at_extent(zmap, labels, z, extent_frac, min_area)


def _cut_at_extent(
    signed: np.ndarray, labels: np.ndarray, z: float, extent_frac: float, min_area: int
) -> np.ndarray:
    """Each grown region holding a seed (>= ``z``), cut at ``extent_frac`` of its own peak.

    The parts that keep a seed and ``min_area`` pixels are the regions, numbered from 1.
    """
    n = int(labels.max())
    if n == 0:
        return labels
    index = np.arange(1, n + 1)
    peaks = ndimage.maximum(signed, labels, index)
    out = np.zeros_like(labels)
    next_id = 1
    for lab, peak in zip(index, peaks, strict=True):
        if peak < z:
            continue  # no seed: noise
        sl = ndimage.find_objects((labels == lab).astype(np.int8))[0]
        sub = (labels[sl] == lab) & (signed[sl] >= max(0.5 * z, extent_frac * peak))
        parts, k = ndimage.label(sub, structure=np.ones((3, 3)))
        for j in range(1, k + 1):
            part = parts == j
            if part.sum() < min_area or signed[sl][part].max() < z:
                continue
            out[sl][part] = next_id
            next_id += 1
    return out


def find_regions(
    change: ChangeMap,
    *,
    z: float = 6.0,
    extent_frac: float = 0.2,
    min_diameter_frac: float = 0.008,
    max_appearance_overlap: float = 0.5,
    px_per_mm: float | None = None,
    tail_ratio: float = 5.0,
    min_height: float = 0.0,
) -> tuple[Region, ...]:
    """Cut the change map into bulge and recession regions.

    Parameters
    ----------
    change
        The change map (analysis grid; ``change.scale`` analysis px per baseline px).
    z
        Seed threshold in noise sigmas; regions extend down to ``z / 2``.
    extent_frac
        ... and down to this fraction of their own peak.
    min_diameter_frac
        Smallest region kept: a disc of this diameter, as a fraction of the long side.
    max_appearance_overlap
        Regions lying mostly on appearance change (chromatic) are dropped.
    px_per_mm
        Baseline pixels per millimetre, when known, for ``area_mm2``.
    tail_ratio
        When the map was integrated along the light, a weak region lying
        along the light direction from a region at least this many times
        stronger is that region's integration tail, not a change, and is
        dropped.
    min_height
        Absolute floor of the level of detection, in the change map's units:
        the local noise is raised to at least ``min_height / z``, so no change
        smaller than ``min_height`` seeds a region however quiet the noise
        (identical scans leave only resampling residue; a near-zero noise
        estimate would make findings of it). 0 = relative level only.

    Returns
    -------
    tuple of Region
        In baseline full-resolution pixel coordinates, most significant first,
        numbered from 1.

    Examples
    --------
    One bump of 1.0 on a quiet map of noise 0.05 is one bulge:

    >>> yy, xx = np.mgrid[0:64, 0:64]
    >>> bump = np.exp(-((xx - 40) ** 2 + (yy - 20) ** 2) / 30.0).astype(np.float32)
    >>> regions = find_regions(ChangeMap(bump, 1.0, "photometric", 0.05))
    >>> [(r.id, r.polarity, round(r.centroid[0]), round(r.centroid[1])) for r in regions]
    [(1, 'bulge', 40, 20)]
    """
    h = change.height
    dims = check_image(h, "H W", name="regions: change map")
    if not (np.isfinite(min_height) and min_height >= 0):
        raise MonitorError(f"regions: min_height must be >= 0, got {min_height}")
    sigma = change.noise_sigma
    if not np.isfinite(sigma) or sigma <= 0:
        return ()
    floor = min_height / z if z > 0 else 0.0
    finite = np.isfinite(h)
    # work in units of the (local, when known) level of detection, never below the floor
    if change.noise_map is not None:
        check_image(change.noise_map, "H W", name="regions: noise map", dims=dims)
        zmap = np.where(finite, h / np.maximum(change.noise_map, max(floor, 1e-12)), 0.0)
    else:
        zmap = np.where(finite, h / max(sigma, floor), 0.0)
    s = change.scale
    diameter = min_diameter_frac * max(h.shape)
    min_area = max(4, int(math.pi / 4 * diameter**2))
    found: list[tuple[Polarity, measure._regionprops.RegionProperties, float]] = []
    for polarity, sign in (("bulge", 1.0), ("recession", -1.0)):
        labels = _components(sign * zmap, z, extent_frac, min_area)
        for props in measure.regionprops(labels, intensity_image=h):
            if change.appearance is not None:
                rr, cc = props.coords[:, 0], props.coords[:, 1]
                if change.appearance[rr, cc].mean() > max_appearance_overlap:
                    continue
            zpeak = float(np.abs(zmap[props.coords[:, 0], props.coords[:, 1]]).max())
            found.append((polarity, props, zpeak))  # type: ignore[arg-type]

    regions: list[Region] = []
    for polarity, props, zpeak in found:
        values = props.image_intensity[props.image]
        peak = float(values.max() if polarity == "bulge" else values.min())
        row, col = props.centroid
        r0, c0, r1, c1 = props.bbox
        area_px = float(props.area) / (s * s)
        regions.append(
            Region(
                id=0,
                polarity=polarity,
                centroid=((col + 0.5) / s, (row + 0.5) / s),
                bbox=(c0 / s, r0 / s, c1 / s, r1 / s),
                area_px=area_px,
                peak=peak,
                mean=float(values.mean()),
                significance=zpeak,
                area_mm2=None if not px_per_mm else area_px / (px_per_mm**2),
            )
        )
    if change.integration_direction is not None:
        regions = drop_tails(regions, change.integration_direction, tail_ratio)
    regions.sort(key=lambda r: -r.significance)
    return tuple(
        Region(**{**r.__dict__, "id": i}) for i, r in enumerate(regions, start=1)
    )


def appearance_class(delta_l: float, delta_c: float) -> AppearanceClass:
    """Conservation class of a colour change from its lightness and chroma change.

    Lighter and less saturated reads as paint lost down to a pale ground or
    canvas (``possible loss``); anything else -- darker, yellower, a stain, a
    hue shift -- is ``discoloration``. Both call for examination; neither is
    relief.

    Parameters
    ----------
    delta_l
        Lightness change ``L*(current) - L*(baseline)``.
    delta_c
        Chroma change ``C*ab(current) - C*ab(baseline)``.

    Returns
    -------
    str
        ``"possible loss"`` or ``"discoloration"``.

    Examples
    --------
    >>> appearance_class(12.0, -8.0), appearance_class(-6.0, 9.0)
    ('possible loss', 'discoloration')
    """
    return "possible loss" if delta_l >= LOSS_MIN_DELTA_L and delta_c < 0 else "discoloration"


def find_appearance_regions(
    change: ChangeMap,
    *,
    min_diameter_frac: float = 0.008,
    min_delta_e: float = MIN_DELTA_E,
    px_per_mm: float | None = None,
) -> tuple[AppearanceRegion, ...]:
    """Cut the appearance mask (colour / lightness change, not relief) into findings.

    Parameters
    ----------
    change
        The change map; needs ``appearance`` and ``delta_e`` / ``delta_l`` /
        ``delta_c`` (the photometric method fills them). Without them there
        is nothing to report and the result is empty.
    min_diameter_frac
        Smallest region kept: a disc of this diameter, as a fraction of the long side.
    min_delta_e
        Regions whose mean CIEDE2000 difference is below this are dropped.
    px_per_mm
        Baseline pixels per millimetre, when known (``area_mm2``).

    Returns
    -------
    tuple of AppearanceRegion
        Baseline full-resolution pixel coordinates, largest colour difference
        first, numbered from 1 (a list apart from the relief regions).

    Examples
    --------
    >>> h = np.zeros((60, 60), np.float32)
    >>> mask = np.zeros((60, 60), bool); mask[20:40, 20:40] = True
    >>> de = np.where(mask, 8.0, 0.5).astype(np.float32)
    >>> cm = ChangeMap(h, 1.0, "photometric", 0.1, appearance=mask, delta_e=de,
    ...                delta_l=-de, delta_c=de)
    >>> [(a.kind, round(a.delta_e_mean)) for a in find_appearance_regions(cm)]
    [('discoloration', 8)]
    """
    mask = change.appearance
    if mask is None or change.delta_e is None or change.delta_l is None or change.delta_c is None:
        return ()
    if mask.shape != change.height.shape or change.delta_e.shape != mask.shape:
        raise MonitorError("regions: appearance mask and colour difference differ in shape")
    s = change.scale
    diameter = min_diameter_frac * max(mask.shape)
    min_area = max(4, int(math.pi / 4 * diameter**2))
    labels, _ = ndimage.label(mask, structure=np.ones((3, 3)))
    found: list[AppearanceRegion] = []
    de_map = np.nan_to_num(change.delta_e)
    for props in measure.regionprops(labels):
        if props.area < min_area:
            continue
        rr, cc = props.coords[:, 0], props.coords[:, 1]
        de = de_map[rr, cc]
        mean_de = float(de.mean())
        if mean_de < min_delta_e:
            continue
        dl = float(np.nanmean(change.delta_l[rr, cc]))
        dc = float(np.nanmean(change.delta_c[rr, cc]))
        row, col = props.centroid
        r0, c0, r1, c1 = props.bbox
        area_px = float(props.area) / (s * s)
        found.append(
            AppearanceRegion(
                id=0,
                kind=appearance_class(dl, dc),
                centroid=((col + 0.5) / s, (row + 0.5) / s),
                bbox=(c0 / s, r0 / s, c1 / s, r1 / s),
                area_px=area_px,
                delta_e_mean=mean_de,
                delta_e_max=float(np.percentile(de, 99)),
                delta_l=dl,
                delta_chroma=dc,
                area_mm2=None if not px_per_mm else area_px / (px_per_mm**2),
            )
        )
    found.sort(key=lambda a: -a.delta_e_mean * a.area_px)
    return tuple(
        AppearanceRegion(**{**a.__dict__, "id": i}) for i, a in enumerate(found, start=1)
    )


def significance_map(change: ChangeMap) -> np.ndarray:
    """Change over noise (z-score), NaN outside the overlap.

    Parameters
    ----------
    change
        A change map and its level of detection ``noise_sigma``.

    Returns
    -------
    np.ndarray
        ``height / noise_sigma`` (float32); all NaN when the noise is unknown (<= 0).

    Examples
    --------
    >>> significance_map(ChangeMap(np.full((2, 2), 0.3, np.float32), 1.0, "photometric", 0.1))
    array([[3., 3.],
           [3., 3.]], dtype=float32)
    """
    if change.noise_sigma <= 0:
        return np.full_like(change.height, np.nan)
    return (change.height / change.noise_sigma).astype(np.float32)




def drop_tails(
    regions: list[Region], direction: tuple[float, float], ratio: float
) -> list[Region]:
    """Remove integration tails: weak regions in line with a much stronger one.

    Integrating shading along the light turns any imbalance of a strong
    deformation's bright and dark flanks (second-order shading, clipping,
    masked pixels) into a faint streak along the light direction, a few
    percent of its peak. A region that is ``ratio`` times weaker and lies
    within four sizes along, and one size across, that direction from a
    stronger region is such a streak.

    Parameters
    ----------
    regions
        Candidate regions (any order).
    direction
        Unit in-plane light direction ``(ux, uy)`` the map was integrated along.
    ratio
        How many times stronger a region must be to own a tail.

    Returns
    -------
    list of Region
        The regions kept, strongest first.

    Examples
    --------
    >>> strong = Region(1, "bulge", (50.0, 50.0), (45.0, 45.0, 55.0, 55.0), 100.0, 10.0, 5.0, 50.0)
    >>> streak = Region(2, "bulge", (80.0, 50.0), (75.0, 45.0, 85.0, 55.0), 100.0, 1.0, 0.5, 5.0)
    >>> [r.id for r in drop_tails([streak, strong], (1.0, 0.0), 5.0)]
    [1]
    >>> [r.id for r in drop_tails([streak, strong], (0.0, 1.0), 5.0)]  # not along the light
    [1, 2]
    """
    ux, uy = direction
    kept: list[Region] = []
    by_strength = sorted(regions, key=lambda r: -abs(r.peak))
    for r in by_strength:
        tail = False
        for s in kept:
            if abs(s.peak) < ratio * abs(r.peak):
                continue
            size = math.sqrt(s.area_px)
            dx, dy = r.centroid[0] - s.centroid[0], r.centroid[1] - s.centroid[1]
            along = abs(dx * ux + dy * uy)
            across = abs(-dx * uy + dy * ux)
            if along <= 4 * size and across <= size:
                tail = True
                break
        if not tail:
            kept.append(r)
    return kept


def find_outline(rgb: np.ndarray, *, tolerance: float = 0.08, min_fill: float = 0.9) -> Outline:
    """The painting's edges in an image: where a plain wall or backing around it stops.

    From each side, rows (columns) are taken as background while at least
    ``min_fill`` of their pixels lie within ``tolerance`` (fraction of full
    scale, every channel) of that side's outermost row and the row is plain
    (little texture). The first row that is not is the work's edge. When no
    side has such a border the work fills the frame and the image edge stands
    for the work's edge (``source == "image"``).

    Parameters
    ----------
    rgb
        H x W x 3 uint8 / uint16 (or H x W) image, any size; it is measured on
        a copy reduced to about 400 px.
    tolerance, min_fill
        Colour tolerance and fraction of a row that must match the border.

    Returns
    -------
    Outline
        ``bbox`` in the pixels of ``rgb``.

    Examples
    --------
    >>> img = np.zeros((100, 200, 3), np.uint8)
    >>> img[10:90, 20:180] = np.random.default_rng(0).integers(60, 250, (80, 160, 3))
    >>> o = find_outline(img)
    >>> o.source, [round(v) for v in o.bbox]
    ('found', [20, 10, 180, 90])
    """
    arr = np.asarray(rgb)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or min(arr.shape[:2]) < 8:
        raise MonitorError(f"outline: need an H x W x 3 image, got shape {arr.shape}")
    full = float(np.iinfo(arr.dtype).max) if arr.dtype.kind in "ui" else 1.0
    rows, cols = arr.shape[:2]
    step = max(1, int(math.ceil(max(rows, cols) / 400)))
    small = arr[::step, ::step].astype(np.float32) / full
    limit = [small.shape[0] // 3, small.shape[1] // 3]

    def depth(img: np.ndarray, max_depth: int) -> int:
        ref = np.median(img[:2].reshape(-1, img.shape[2]), axis=0)
        for k in range(max_depth):
            line = img[k]
            close = np.all(np.abs(line - ref) <= tolerance, axis=-1)
            if close.mean() < min_fill or float(line.std(axis=0).max()) > tolerance / 2:
                return k
        return 0  # never ends: no border, only a plain image

    top = depth(small, limit[0])
    bottom = depth(small[::-1], limit[0])
    left = depth(small.transpose(1, 0, 2), limit[1])
    right = depth(small.transpose(1, 0, 2)[::-1], limit[1])
    if top + bottom + left + right == 0:
        return Outline((0.0, 0.0, float(cols), float(rows)), "image")
    bbox = (
        float(min(left * step, cols)),
        float(min(top * step, rows)),
        float(max(cols - right * step, 0)),
        float(max(rows - bottom * step, 0)),
    )
    return Outline(bbox, "found")


_drop_tails = drop_tails  # the name before it was public
