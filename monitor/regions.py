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
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from skimage import measure

from monitor.checks import check_image
from monitor.results import ChangeMap, Polarity, Region


def _components(zmap: np.ndarray, z: float, extent_frac: float, min_area: int) -> np.ndarray:
    """Label the regions of one polarity (``zmap`` > 0 is that polarity's change, in sigmas)."""
    signed = zmap
    low = ndimage.binary_opening(signed >= 0.5 * z, structure=np.ones((3, 3)))
    labels, n = ndimage.label(low, structure=np.ones((3, 3)))
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

    Returns
    -------
    tuple of Region
        In baseline full-resolution pixel coordinates, most significant first,
        numbered from 1.
    """
    h = change.height
    dims = check_image(h, "H W", name="regions: change map")
    sigma = change.noise_sigma
    if not np.isfinite(sigma) or sigma <= 0:
        return ()
    finite = np.isfinite(h)
    # work in units of the (local, when known) level of detection
    if change.noise_map is not None:
        check_image(change.noise_map, "H W", name="regions: noise map", dims=dims)
        zmap = np.where(finite, h / np.maximum(change.noise_map, 1e-12), 0.0)
    else:
        zmap = np.where(finite, h / sigma, 0.0)
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


def significance_map(change: ChangeMap) -> np.ndarray:
    """Change over noise (z-score), NaN outside the overlap."""
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


_drop_tails = drop_tails  # the name before it was public
