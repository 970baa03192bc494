"""Region growing: monitor.regions' own vs ``skimage.filters.apply_hysteresis_threshold``.

``monitor.regions._components`` grows a region from seeds above ``z`` sigmas
over the connected pixels above ``z / 2`` (after a 3 x 3 opening, 8-connected),
then cuts each grown region at ``extent_frac`` of its own peak and keeps the
parts that still hold a seed. scikit-image's hysteresis does the first half
only (strict ``>``, 4-connected, no opening). This bench swaps the first half
for scikit-image's (the per-peak cut kept) and compares the regions found on
synthetic change maps whose truth is known: Gaussian bumps and dents of random
size, some close together, plus unit noise (z-score units).

Run: ``python bench/hysteresis.py [--maps 40] [--seed 0]``. Prints, for each
variant, regions found, true deformations found (a region's centroid within
one radius of a deformation), spurious regions, and the mean IoU of the two
variants' region masks.
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import ndimage
from skimage.filters import apply_hysteresis_threshold

import monitor.regions as regions
from monitor.results import ChangeMap

_ours = regions._components


def _skimage_components(
    zmap: np.ndarray, z: float, extent_frac: float, min_area: int
) -> np.ndarray:
    """scikit-image's hysteresis for the growing, then monitor's own cut at the extent."""
    labels, _n = ndimage.label(apply_hysteresis_threshold(zmap, 0.5 * z, z))
    return regions._cut_at_extent(zmap, labels, z, extent_frac, min_area)


def _map(
    rng: np.random.Generator, size: int = 256
) -> tuple[np.ndarray, list[tuple[float, float, float]]]:
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    h = rng.standard_normal((size, size))
    truth = []
    for _ in range(int(rng.integers(3, 9))):
        cx, cy = rng.uniform(20, size - 20, 2)
        r = float(rng.uniform(3, 15))
        amp = float(rng.uniform(4, 30)) * (1 if rng.random() < 0.6 else -1)
        h += amp * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
        truth.append((cx, cy, r))
    return ndimage.gaussian_filter(h, 1.0) * 2.0, truth  # mildly correlated noise, ~unit sigma


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--maps", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    totals = {"ours": [0, 0, 0], "skimage": [0, 0, 0]}
    n_true = 0
    ious = []
    identical = 0
    for _ in range(args.maps):
        h, truth = _map(rng)
        n_true += len(truth)
        cm = ChangeMap(h.astype(np.float32), 1.0, "photometric", float(np.std(h[:20, :20])))
        found = {}
        for name, comp in (("ours", _ours), ("skimage", _skimage_components)):
            regions._components = comp
            found[name] = regions.find_regions(cm, tail_ratio=0.0)
        regions._components = _ours
        for name, regs in found.items():
            hit = sum(any(np.hypot(r.centroid[0] - cx, r.centroid[1] - cy) <= rr for r in regs)
                      for cx, cy, rr in truth)
            spurious = sum(not any(np.hypot(r.centroid[0] - cx, r.centroid[1] - cy) <= 2 * rr
                                   for cx, cy, rr in truth) for r in regs)
            totals[name][0] += len(regs)
            totals[name][1] += hit
            totals[name][2] += spurious
        a = [(r.bbox, r.area_px, r.polarity) for r in found["ours"]]
        b = [(r.bbox, r.area_px, r.polarity) for r in found["skimage"]]
        identical += a == b
        ma, mb = np.zeros(h.shape, bool), np.zeros(h.shape, bool)
        for regs, m in ((found["ours"], ma), (found["skimage"], mb)):
            for r in regs:
                x0, y0, x1, y1 = (int(round(v)) for v in r.bbox)
                m[y0:y1, x0:x1] = True
        ious.append((ma & mb).sum() / max(1, (ma | mb).sum()))
    print(f"{args.maps} maps, {n_true} true deformations")
    for name, (n, hit, spur) in totals.items():
        print(f"{name:<8} regions {n:4d}  true found {hit:4d}  spurious {spur:4d}")
    print(f"identical region lists on {identical}/{args.maps} maps; "
          f"mean IoU of region boxes {np.mean(ious):.3f}")


if __name__ == "__main__":
    main()
