"""Trend of an artwork's changed area: least squares (np.polyfit) vs Theil-Sen.

The history trend (``monitor.store.repository.trends.trend``) calls a series
rising, falling or stable from a fitted line, judged against the series' size.
A monitoring history is short (3-12 comparisons) and one comparison may be an
outlier: a lamp moved, a bad registration, a stain read as a large area. This
bench draws synthetic histories whose truth is known and counts how often each
line fit calls it right:

- ``stable``: constant area with 5 % noise, and one comparison ``spike`` times
  larger (or, in half the draws, 20 % of it) at a random place;
- ``rising`` / ``falling``: area growing (shrinking) by 10 % of the start per
  comparison with 5 % noise, and one outlier likewise;
- the same three without an outlier (a fit must not lose those).

Run: ``python bench/trends.py [--draws 2000] [--seed 0]``. Prints one row per
case and fit: the share called right.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import numpy as np
from scipy import stats

TOLERANCE = 0.2  # monitor.store.repository.trends.TREND_TOLERANCE


def _judge(slope: float, t: np.ndarray, scale: float) -> str:
    if scale == 0.0:
        return "stable"
    relative = slope * float(np.ptp(t)) / scale
    if abs(relative) <= TOLERANCE:
        return "stable"
    return "rising" if relative > 0 else "falling"


def polyfit_mean(t: np.ndarray, y: np.ndarray) -> str:
    """The trend before this bench: least squares, judged against the mean."""
    return _judge(float(np.polyfit(t, y, 1)[0]), t, float(np.mean(np.abs(y))))


def theil_mean(t: np.ndarray, y: np.ndarray) -> str:
    return _judge(float(stats.theilslopes(y, t)[0]), t, float(np.mean(np.abs(y))))


def theil_median(t: np.ndarray, y: np.ndarray) -> str:
    return _judge(float(stats.theilslopes(y, t)[0]), t, float(np.median(np.abs(y))))


FITS = {"polyfit+mean": polyfit_mean, "theil+mean": theil_mean, "theil+median": theil_median}


def _series(rng: np.random.Generator, truth: str, outlier: bool, spike: float) -> np.ndarray:
    n = int(rng.integers(4, 13))
    step = {"stable": 0.0, "rising": 0.1, "falling": -0.08}[truth]
    y = 100.0 * (1.0 + step * np.arange(n)) * (1.0 + 0.05 * rng.standard_normal(n))
    if outlier:
        k = int(rng.integers(0, n))
        y[k] *= spike if rng.random() < 0.5 else 0.2
    return np.maximum(y, 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--draws", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--spike", type=float, default=5.0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    # the production function too, to check the bench's copy of the rule agrees with it
    from monitor.store.repository.trends import trend

    print(f"{'case':<24}" + "".join(f"{name:>14}" for name in FITS) + f"{'monitor':>10}")
    for outlier in (False, True):
        for truth in ("stable", "rising", "falling"):
            right = dict.fromkeys(FITS, 0)
            right_monitor = 0
            for _ in range(args.draws):
                y = _series(rng, truth, outlier, args.spike)
                t = np.arange(len(y), dtype=np.float64) * 180.0  # a scan every six months
                for name, fit in FITS.items():
                    right[name] += fit(t, y) == truth
                times = [datetime(2020, 1, 1, tzinfo=UTC) + timedelta(days=float(d)) for d in t]
                right_monitor += trend(times, list(y)) == truth
            case = f"{truth}{' + outlier' if outlier else ''}"
            print(f"{case:<24}" + "".join(f"{right[n] / args.draws:>14.3f}" for n in FITS)
                  + f"{right_monitor / args.draws:>10.3f}")


if __name__ == "__main__":
    main()
