"""History chart of an artwork: changed area and peak change over all its comparisons.

Drawn with matplotlib's object API (``Figure`` + ``FigureCanvasAgg``): no
pyplot, no global state, safe in threads and servers.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from monitor.errors import MonitorError
from monitor.store.repository import ArtworkHistory

AREA_COLOUR = "#3a6ea5"
PEAK_COLOUR = "#c0392b"


def history_chart_png(
    hist: ArtworkHistory,
    path: str | Path,
    *,
    highlight: int | None = None,
    size_in: tuple[float, float] = (7.0, 1.9),
    dpi: int = 150,
) -> Path:
    """Plot changed area (bars, left axis) and largest absolute peak (line, right axis).

    Each comparison is placed at the capture date of its current scan; with a
    single comparison, or when dates repeat, comparisons are placed in order.

    Parameters
    ----------
    hist
        The artwork's history (:func:`monitor.store.repository.history`).
    path
        PNG file to write (written to a temporary name, then renamed).
    highlight
        Comparison id to mark (the one the report is about).
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
    entries = hist.entries
    use_mm = hist.trend_units == "mm2"
    areas = [
        (e.changed_area_mm2 if use_mm and e.changed_area_mm2 is not None else e.changed_area_px)
        for e in entries
    ]
    peaks = [e.max_abs_peak for e in entries]
    dates: list[datetime] = [e.current_captured_at for e in entries]
    by_date = len(dates) >= 2 and len(set(dates)) == len(dates)
    xs: list[float] | list[datetime]
    if by_date:
        xs = dates
        span_days = max((dates[-1] - dates[0]).days, 1)
        width: float = max(span_days / max(len(dates), 1) * 0.35, 1.0)
    else:
        xs = [float(i + 1) for i in range(len(entries))]
        width = 0.35

    fig = Figure(figsize=size_in, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colours = [
        "#e0a030" if highlight is not None and e.comparison_id == highlight else AREA_COLOUR
        for e in entries
    ]
    ax.bar(xs, areas, width=width, color=colours, alpha=0.85, label="changed area")
    ax.set_ylabel("changed area (mm²)" if use_mm else "changed area (px)", color=AREA_COLOUR)
    ax.tick_params(axis="y", colors=AREA_COLOUR)
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", alpha=0.3)
    twin = ax.twinx()
    twin.plot(xs, peaks, color=PEAK_COLOUR, marker="o", lw=1.5, label="largest |peak|")
    method = entries[-1].method
    twin.set_ylabel(
        "largest |peak| (px)" if method == "photometric" else "largest |peak| (rel.)",
        color=PEAK_COLOUR,
    )
    twin.tick_params(axis="y", colors=PEAK_COLOUR)
    twin.set_ylim(bottom=0, top=max(max(peaks) * 1.15, 1e-6))
    if by_date:
        locator = AutoDateLocator(minticks=2, maxticks=8)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        ax.set_xlabel("capture date of the later scan")
    else:
        ax.set_xticks(xs, [f"#{e.comparison_id}" for e in entries])
        ax.set_xlim(0.4, len(entries) + 0.6)
        ax.set_xlabel("comparison")
    ax.set_title(f"History of {len(entries)} comparison(s): trend {hist.trend}", fontsize=10)
    handles = ax.get_legend_handles_labels()
    twin_handles = twin.get_legend_handles_labels()
    ax.legend(handles[0] + twin_handles[0], handles[1] + twin_handles[1], loc="upper left",
              fontsize=8, frameon=False)

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
