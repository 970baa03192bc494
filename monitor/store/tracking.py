"""What an artwork's history means: series, plain wording, and regions followed over time.

A comparison is *since the first scan* when its baseline is the artwork's
first scan, *scan to scan* when its baseline is the scan just before its
current one, and *other* otherwise. Each series is read on its own, in time
order (the current scan's capture time): mixing them is what once called a
stable re-scan after a change "falling".

Regions are followed across comparisons by overlap: a region of the same
polarity whose box overlaps (or holds the centre of) a region seen before
keeps that region's track number, so "region 3" stays region 3 as it grows.

Pure functions over plain values; the repository feeds them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Series = Literal["since first scan", "scan to scan", "other"]

#: Relative change of a changed area (or a region's area) still called "no further change".
GROWTH_TOLERANCE = 0.15
#: ... and the absolute floor of that tolerance, mm^2 (px^2 when the scale is unknown: x 16).
GROWTH_FLOOR_MM2 = 2.0

__all__ = [
    "GROWTH_TOLERANCE",
    "Step",
    "Sighting",
    "describe_steps",
    "interval_words",
    "series_of",
    "summary_words",
    "track_regions",
]


@dataclass(frozen=True)
class Step:
    """One comparison as the history reads it."""

    comparison_id: int
    baseline_scan_id: int
    current_scan_id: int
    baseline_at: datetime
    current_at: datetime
    n_regions: int
    area: float  # changed area, in ``units``
    units: str  # "mm²" or "px²"


@dataclass(frozen=True)
class Sighting:
    """One region of one comparison, to be tracked."""

    comparison_id: int
    number: int  # the region's number within its comparison
    polarity: str
    bbox: tuple[float, float, float, float]
    centroid: tuple[float, float]


def interval_words(start: datetime, end: datetime) -> str:
    """A span of time in plain words: days below two months, else months, else years.

    Examples
    --------
    >>> from datetime import datetime
    >>> interval_words(datetime(2024, 1, 10), datetime(2024, 7, 10))
    '6 months'
    >>> interval_words(datetime(2024, 1, 1), datetime(2024, 1, 13))
    '12 days'
    >>> interval_words(datetime(2022, 1, 1), datetime(2024, 7, 1))
    '2.5 years'
    """
    days = (end - start).total_seconds() / 86400.0
    if days < 60:
        n = round(days)
        return f"{n} day{'s' if n != 1 else ''}"
    months = days / 30.44
    if months < 24:
        n = round(months)
        return f"{n} month{'s' if n != 1 else ''}"
    return f"{days / 365.25:.1f} years".replace(".0 years", " years")


def series_of(step: Step, scan_order: Sequence[int]) -> Series:
    """Which series a comparison belongs to, from the artwork's scans in capture order.

    Examples
    --------
    >>> from datetime import datetime
    >>> t = datetime(2024, 1, 1)
    >>> series_of(Step(1, 10, 11, t, t, 0, 0.0, "mm²"), [10, 11, 12])
    'since first scan'
    >>> series_of(Step(2, 11, 12, t, t, 0, 0.0, "mm²"), [10, 11, 12])
    'scan to scan'
    """
    if scan_order and step.baseline_scan_id == scan_order[0]:
        return "since first scan"
    try:
        i = list(scan_order).index(step.current_scan_id)
    except ValueError:
        return "other"
    if i > 0 and scan_order[i - 1] == step.baseline_scan_id:
        return "scan to scan"
    return "other"


def _tolerance(previous: float, units: str) -> float:
    floor = GROWTH_FLOOR_MM2 if units == "mm²" else GROWTH_FLOOR_MM2 * 16
    return max(GROWTH_TOLERANCE * abs(previous), floor)


def _area(value: float, units: str) -> str:
    return f"{value:.3g} {units}"


def describe_steps(steps: Sequence[Step], scan_order: Sequence[int]) -> dict[int, str]:
    """Plain wording of each comparison, read within its own series in time order.

    Parameters
    ----------
    steps
        The artwork's comparisons (any order; they are sorted by capture time).
    scan_order
        The artwork's scan ids in capture order.

    Returns
    -------
    dict
        Comparison id -> e.g. ``stable since the last scan``, ``growing: +120
        mm² in 6 months``, ``changed since the last scan: 3 regions, 80 mm²``.

    Examples
    --------
    >>> from datetime import datetime
    >>> d = [datetime(2024, m, 1) for m in (1, 7, 12)]
    >>> steps = [Step(1, 1, 2, d[0], d[1], 3, 800.0, "mm²"),
    ...          Step(2, 2, 3, d[1], d[2], 0, 0.0, "mm²")]
    >>> describe_steps(steps, [1, 2, 3])[2]
    'stable since the last scan'
    """
    ordered = sorted(steps, key=lambda s: (s.current_at, s.baseline_at, s.comparison_id))
    last_in: dict[Series, Step] = {}
    out: dict[int, str] = {}
    for step in ordered:
        series = series_of(step, scan_order)
        prev = last_in.get(series)
        regions = f"{step.n_regions} region{'s' if step.n_regions != 1 else ''}"
        if series == "since first scan":
            if step.n_regions == 0:
                words = "no change since the first scan"
            elif prev is None:
                words = (f"changed since the first scan: {regions}, "
                         f"{_area(step.area, step.units)} in "
                         f"{interval_words(step.baseline_at, step.current_at)}")
            else:
                delta = step.area - prev.area
                span = interval_words(prev.current_at, step.current_at)
                if abs(delta) <= _tolerance(prev.area, step.units):
                    words = f"no further change in {span} ({_area(step.area, step.units)} in all)"
                elif delta > 0:
                    words = f"growing: +{_area(delta, step.units)} in {span}"
                else:
                    words = (f"smaller: \u2212{_area(-delta, step.units)} in {span} "
                             "(check the scans' light and registration)")
        elif series == "scan to scan":
            if step.n_regions == 0:
                words = "stable since the last scan"
            else:
                words = (f"changed since the last scan: {regions}, "
                         f"{_area(step.area, step.units)} in "
                         f"{interval_words(step.baseline_at, step.current_at)}")
        else:
            words = (f"{regions}, {_area(step.area, step.units)} between "
                     f"{step.baseline_at:%Y-%m-%d} and {step.current_at:%Y-%m-%d}"
                     if step.n_regions else
                     f"no change between {step.baseline_at:%Y-%m-%d} and "
                     f"{step.current_at:%Y-%m-%d}")
        out[step.comparison_id] = words
        last_in[series] = step
    return out


def summary_words(steps: Sequence[Step], scan_order: Sequence[int]) -> str:
    """One line for the whole history: how the work stands now.

    The latest scan-to-scan comparison says whether anything changed lately;
    the since-first series says whether the change is growing.

    Examples
    --------
    >>> from datetime import datetime
    >>> d = [datetime(2024, m, 1) for m in (1, 7, 12)]
    >>> summary_words([Step(1, 1, 2, d[0], d[1], 3, 800.0, "mm²"),
    ...                Step(2, 2, 3, d[1], d[2], 0, 0.0, "mm²")], [1, 2, 3])
    'stable since the last scan (after change before it)'
    """
    if not steps:
        return "no comparison yet"
    words = describe_steps(steps, scan_order)
    ordered = sorted(steps, key=lambda s: (s.current_at, s.baseline_at, s.comparison_id))
    latest = ordered[-1]
    text = words[latest.comparison_id]
    if len(ordered) == 1:
        return f"first comparison: {text}"
    earlier_change = any(s.n_regions for s in ordered[:-1])
    if text.startswith("stable") and earlier_change:
        return f"{text} (after change before it)"
    return text


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return inter / smaller if smaller > 0 else 0.0


def _inside(p: tuple[float, float], box: tuple[float, float, float, float]) -> bool:
    return box[0] <= p[0] <= box[2] and box[1] <= p[1] <= box[3]


def track_regions(
    sightings: Sequence[Sighting], order: Sequence[int], *, min_overlap: float = 0.2
) -> dict[tuple[int, int], int]:
    """Give each region a track number that it keeps in later comparisons.

    Parameters
    ----------
    sightings
        Every region of the artwork's comparisons (baseline pixel coordinates;
        the scans of one artwork share the baseline frame only approximately,
        so matching is by overlap, not by identity of coordinates).
    order
        Comparison ids in time order.
    min_overlap
        Overlap (intersection over the smaller box) above which two regions of
        the same polarity are the same region; a centre inside the other's box
        also counts.

    Returns
    -------
    dict
        ``(comparison_id, number) -> track``; tracks are numbered from 1 in
        order of first sighting.

    Examples
    --------
    >>> a = Sighting(1, 1, "bulge", (10, 10, 20, 20), (15, 15))
    >>> b = Sighting(2, 2, "bulge", (9, 9, 24, 24), (16, 16))   # the same, grown
    >>> c = Sighting(2, 1, "bulge", (50, 50, 60, 60), (55, 55))  # a new one
    >>> track_regions([a, b, c], [1, 2])
    {(1, 1): 1, (2, 1): 2, (2, 2): 1}
    """
    rank = {cid: i for i, cid in enumerate(order)}
    by_comparison: dict[int, list[Sighting]] = {}
    for s in sightings:
        by_comparison.setdefault(s.comparison_id, []).append(s)
    tracks: dict[int, Sighting] = {}  # track -> last sighting
    out: dict[tuple[int, int], int] = {}
    next_track = 1
    for cid in sorted(by_comparison, key=lambda c: rank.get(c, len(rank))):
        pairs = []
        for s in by_comparison[cid]:
            for t, last in tracks.items():
                if last.polarity != s.polarity or last.comparison_id == cid:
                    continue
                score = _overlap(s.bbox, last.bbox)
                if score >= min_overlap or _inside(s.centroid, last.bbox) or _inside(
                    last.centroid, s.bbox
                ):
                    pairs.append((max(score, 1e-6), s.number, t))
        used_tracks: set[int] = set()
        used_regions: set[int] = set()
        for _, number, t in sorted(pairs, reverse=True):
            if number in used_regions or t in used_tracks:
                continue
            out[(cid, number)] = t
            used_regions.add(number)
            used_tracks.add(t)
        for s in sorted(by_comparison[cid], key=lambda s: s.number):
            if s.number not in used_regions:
                out[(cid, s.number)] = next_track
                next_track += 1
        for s in by_comparison[cid]:
            tracks[out[(cid, s.number)]] = s
    return dict(sorted(out.items()))
