"""History chart of an artwork: changed area and peak change over all its comparisons.

Drawn with matplotlib's object API (``Figure`` + ``FigureCanvasAgg``): no
pyplot, no global state, safe in threads and servers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from monitor.errors import MonitorError
from monitor.store.repository import ArtworkHistory, HistoryEntry

AREA_COLOUR = "#3a6ea5"
PEAK_COLOUR = "#c0392b"


def history_chart_png(
    hist: ArtworkHistory,
    path: str | Path,
    *,
    highlight: int | None = None,
    series: Mapping[int, str] | None = None,
    tracks: Mapping[int, Sequence[tuple[datetime, float]]] | None = None,
    size_in: tuple[float, float] = (7.0, 1.9),
    dpi: int = 150,
) -> Path:
    """Plot the changed area over time, one line per series, and tracked regions' growth.

    Comparisons are placed in time order at the capture date of their current
    scan (in order, when dates repeat). Comparisons since the first scan make
    one line (cumulative change), scan-to-scan comparisons bars (change in
    each interval); with ``tracks`` a second panel plots each tracked region's
    area over time, labelled with its number.

    Parameters
    ----------
    hist
        The artwork's history (:func:`monitor.store.repository.history`).
    path
        PNG file to write (written to a temporary name, then renamed).
    highlight
        Comparison id to mark (the one the report is about).
    series
        Comparison id -> ``since first scan`` / ``scan to scan`` / ``other``
        (default: every comparison ``other``, drawn as bars).
    tracks
        Track number -> (date, area) points of one region followed across
        comparisons.
    size_in
        Figure size in inches (width, height).
    dpi
        Resolution of the PNG.

    Returns
    -------
    Path
        The written file.
    """
    if not hist.entries:
        raise MonitorError(f"artwork {hist.artwork.slug!r} has no comparison to chart")
    if dpi <= 0 or min(size_in) <= 0:
        raise MonitorError("chart size and dpi must be positive")
    path = Path(path)
    entries = sorted(hist.entries, key=lambda e: (e.current_captured_at, e.baseline_captured_at,
                                                  e.comparison_id))
    use_mm = hist.trend_units == "mm2"
    unit = "mm²" if use_mm else "px²"

    def area(e: HistoryEntry) -> float:
        mm = e.changed_area_mm2
        return float(mm) if use_mm and mm is not None else float(e.changed_area_px)

    dates: list[datetime] = [e.current_captured_at for e in entries]
    by_date = len(set(dates)) == len(dates)
    xs: list[Any] = list(dates) if by_date else [float(i + 1) for i in range(len(entries))]
    kinds = [(series or {}).get(e.comparison_id, "other") for e in entries]

    fig = Figure(figsize=size_in, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2 if tracks else 1, squeeze=False)[0]
    ax = axes[0]
    if by_date and len(dates) > 1:
        span_days = max((max(dates) - min(dates)).days, 1)
        width: Any = timedelta(days=max(span_days / len(dates) * 0.3, 1.0))
    else:
        width = timedelta(days=20) if by_date else 0.35
    bars = [i for i, k in enumerate(kinds) if k != "since first scan"]
    if bars:
        ax.bar([xs[i] for i in bars], [area(entries[i]) for i in bars], width=width,
               color=["#e0a030" if entries[i].comparison_id == highlight else AREA_COLOUR
                      for i in bars], label="since the scan before")
    line = [i for i, k in enumerate(kinds) if k == "since first scan"]
    if line:
        ax.plot([xs[i] for i in line], [area(entries[i]) for i in line], color=PEAK_COLOUR,
                marker="o", lw=1.5, label="since the first scan")
        for i in line:
            if entries[i].comparison_id == highlight:
                ax.plot([xs[i]], [area(entries[i])], marker="o", ms=8, mfc="none",
                        color="#e0a030", mew=2)
    ax.set_ylabel(f"changed area ({unit})", fontsize=8)
    ax.set_ylim(bottom=0, top=max(max(area(e) for e in entries) * 1.2, 1e-6))
    ax.grid(axis="y", alpha=0.3)
    ax.tick_params(labelsize=7.5)
    if by_date:
        locator = AutoDateLocator(minticks=2, maxticks=6)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        if len(dates) == 1:
            ax.set_xlim(dates[0] - timedelta(days=30), dates[0] + timedelta(days=30))
    else:
        ax.set_xticks(xs, [f"#{e.comparison_id}" for e in entries])
        ax.set_xlim(0.4, len(entries) + 0.6)
    ax.set_title(f"{len(entries)} comparison(s), in time order", fontsize=8)
    ax.legend(loc="upper left", fontsize=7.5, frameon=False)
    if tracks:
        tx = axes[1]
        for number, points in sorted(tracks.items()):
            pts = sorted(points)
            tx.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, lw=1.2)
            tx.annotate(str(number), (pts[-1][0], pts[-1][1]), fontsize=7.5,
                        xytext=(3, 0), textcoords="offset points", va="center")
        locator = AutoDateLocator(minticks=2, maxticks=5)
        tx.xaxis.set_major_locator(locator)
        tx.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        tx.set_ylim(bottom=0)
        tx.set_ylabel(f"region area ({unit})", fontsize=8)
        tx.set_title("regions followed over time (by number)", fontsize=8)
        tx.tick_params(labelsize=7.5)
        tx.grid(axis="y", alpha=0.3)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, path)
    except OSError as exc:
        raise MonitorError(f"cannot write chart {path}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return path
