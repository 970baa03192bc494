"""PDF condition report of one stored comparison (Jinja2 + WeasyPrint).

The HTML comes from ``templates/report.html.j2`` (autoescape on: artwork
metadata is text, never markup) and ``templates/report.css`` (A4 portrait,
page numbers from CSS ``@page`` counters). Figures are written to a staging
folder beside the output (the data home may be read-only); WeasyPrint fetches resources only through
:class:`StoreURLFetcher`, which serves plain files from the templates folder,
the store's ``objects/`` and that staging folder, and refuses everything else
(other files, ``data:``, ``http(s):`` ...). Every path taken from the
database goes through :meth:`monitor.store.db.Store.stored_file` first and
is refused unless it lies in the store. Metadata text is bounded and made
breakable (:func:`display_text`) so that layout time stays bounded.

The templates folder is the repository's top-level ``templates/``; an
installed (non-editable) package finds it through ``MONITOR_TEMPLATES``.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import jinja2
import numpy as np
import PIL.ImageFile

from monitor import __version__
from monitor.errors import MonitorError
from monitor.report.charts import history_chart_png
from monitor.report.figures import JPEG_QUALITY, colour_limit
from monitor.results import AppearanceRegion, Outline, Region, ScaledRegion, height_units
from monitor.store.db import Store
from monitor.store.repository import (
    ArtworkHistory,
    ComparisonDetail,
    comparison_detail,
    history,
    peak_mm,
)

# WeasyPrint sets PIL.ImageFile.LOAD_TRUNCATED_IMAGES = True when it is imported
# (weasyprint/images.py), a process-wide switch that makes Pillow pad truncated
# images silently and that monitor.io.read_image refuses to work under. Import it
# once here and put the switch back; WeasyPrint only ever reads our complete PNGs.
_LOAD_TRUNCATED = PIL.ImageFile.LOAD_TRUNCATED_IMAGES
import weasyprint.images  # noqa: E402,F401,I001
from weasyprint import HTML  # noqa: E402
from weasyprint.urls import URLFetcher, URLFetcherResponse  # noqa: E402

PIL.ImageFile.LOAD_TRUNCATED_IMAGES = _LOAD_TRUNCATED

_REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_NAME = "report.html.j2"
#: Registration RMSE (baseline px) up to which registration is called good / acceptable.
RMSE_GOOD_PX = 1.0
RMSE_ACCEPTABLE_PX = 2.5


def templates_dir() -> Path:
    """Folder of the report templates: ``$MONITOR_TEMPLATES`` or the repository's ``templates/``.

    Returns
    -------
    Path
        The folder (it holds ``report.html.j2`` and ``report.css``).
    """
    candidates = []
    if os.environ.get("MONITOR_TEMPLATES"):
        candidates.append(Path(os.environ["MONITOR_TEMPLATES"]).expanduser())
    candidates.append(_REPO_ROOT / "templates")
    for candidate in candidates:
        if (candidate / TEMPLATE_NAME).is_file():
            return candidate.resolve()
    raise MonitorError(
        "cannot find the report templates; set MONITOR_TEMPLATES to the 'templates' folder "
        "of the monitor source tree"
    )


class StoreURLFetcher(URLFetcher):
    """WeasyPrint URL fetcher that serves only ``file:`` URLs of files under ``roots``.

    Every URL asked for is recorded in ``requested``; refused ones in
    ``refused``. Symbolic links are resolved before the check, so a link
    inside a root cannot point outside it.

    Parameters
    ----------
    roots
        Folders whose files may be read.
    """

    def __init__(self, roots: Sequence[Path]) -> None:
        super().__init__(timeout=1, allowed_protocols=("file",), fail_on_errors=False)
        self.roots = tuple(Path(r).resolve() for r in roots)
        self.requested: list[str] = []
        self.refused: list[str] = []

    def allowed_path(self, url: str) -> Path | None:
        """The local file ``url`` names if it may be served, else None.

        Parameters
        ----------
        url
            Absolute URL as WeasyPrint asks for it.

        Returns
        -------
        Path or None
            Resolved file path under one of the roots.
        """
        parts = urlsplit(url)
        if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
            return None
        try:
            path = Path(url2pathname(unquote(parts.path))).resolve(strict=True)
        except (OSError, RuntimeError, ValueError):
            return None
        if not path.is_file():
            return None
        if not any(path.is_relative_to(root) for root in self.roots):
            return None
        return path

    def fetch(self, url: str, headers: Mapping[str, str] | None = None) -> URLFetcherResponse:
        """Serve ``url`` if allowed; raise (WeasyPrint then skips the resource) otherwise."""
        self.requested.append(url)
        path = self.allowed_path(url)
        if path is None:
            self.refused.append(url)
            raise PermissionError(f"report resources come only from the store: refused {url}")
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(path.as_uri(), path.read_bytes(), {"Content-Type": mime})


@dataclass(frozen=True)
class RenderedReport:
    """A written report."""

    path: Path
    pages: int
    html: str
    requested: tuple[str, ...]
    refused: tuple[str, ...]


def registration_quality(rmse_px: float, n_inliers: int, n_matches: int) -> str:
    """Plain-words verdict on a registration.

    Parameters
    ----------
    rmse_px
        Residual error after the full warp, baseline pixels.
    n_inliers, n_matches
        Feature matches kept / found.

    Returns
    -------
    str
        ``good``, ``acceptable`` or ``poor`` with the reason.
    """
    if rmse_px <= RMSE_GOOD_PX:
        verdict = "good"
    elif rmse_px <= RMSE_ACCEPTABLE_PX:
        verdict = "acceptable"
    else:
        verdict = "poor: changes near edges and fine texture may be registration error"
    ratio = n_inliers / n_matches if n_matches else 0.0
    return f"{verdict} ({rmse_px:.2f} px residual, {n_inliers} of {n_matches} matches kept, " \
        f"{ratio:.0%})"


#: Conservation words for each kind of finding.
FINDING_WORDS = {
    "bulge": ("Raised area", "surface raised towards the viewer: possible blister, tenting, "
              "cupping or a local deformation of the support"),
    "recession": ("Depressed area", "surface sunk away from the viewer: possible dent, "
                  "slackening of the canvas or flaking/loss of material"),
    "discoloration": ("Discoloration", "change of colour not matched by relief: stain, "
                      "tide line, varnish yellowing or blanching"),
    "possible loss": ("Possible loss", "area now lighter and less saturated: paint or ground "
                      "may be lost, the support showing through"),
}


def _work_box(outline: Mapping[str, Any] | None, width: int, height: int
              ) -> tuple[tuple[float, float, float, float], str]:
    if outline and outline.get("bbox") and len(outline["bbox"]) == 4:
        return tuple(float(v) for v in outline["bbox"]), str(outline.get("source", "found"))  # type: ignore[return-value]
    return (0.0, 0.0, float(width), float(height)), "image"


def region_location(
    region: Region | Any,
    width: int,
    height: int,
    px_per_mm: float | None,
    outline: tuple[float, float, float, float] | None = None,
) -> str:
    """Where a finding lies on the work, in a conservator's words plus distances.

    Zones are thirds of the work (upper / middle / lower, left / centre /
    right, as the viewer faces it); the centre's distances are measured from
    the work's left and top edges (its outline in the baseline, or the image
    edge when no outline is known), in mm when the scale is known, else in
    percent of the work's width and height.

    Parameters
    ----------
    region
        The region (baseline pixel coordinates; anything with ``centroid``).
    width, height
        Size of the baseline image in pixels.
    px_per_mm
        Baseline pixels per millimetre, or None.
    outline
        The work's ``(x0, y0, x1, y1)`` in baseline pixels; default the image.

    Returns
    -------
    str
        e.g. ``upper left; 120 mm from left, 45 mm from top`` (no-break spaces).

    Examples
    --------
    >>> r = Region(1, "bulge", (130.0, 60.0), (120.0, 50.0, 140.0, 70.0), 400.0, 1.0, 0.5, 9.0)
    >>> region_location(r, 400, 300, 2.0, (10.0, 10.0, 390.0, 290.0)).replace("\u00a0", " ")
    'upper left; 60 mm from left, 25 mm from top'
    """
    x0, y0, x1, y1 = outline or (0.0, 0.0, float(width), float(height))
    w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    x, y = region.centroid[0] - x0, region.centroid[1] - y0
    col = min(max(int(3 * x / w), 0), 2)
    row = min(max(int(3 * y / h), 0), 2)
    zone = f"{('upper', 'middle', 'lower')[row]} {('left', 'centre', 'right')[col]}"
    if zone == "middle centre":
        zone = "centre"
    nb = "\u00a0"
    if px_per_mm:
        where = f"{x / px_per_mm:.0f}{nb}mm from left, {y / px_per_mm:.0f}{nb}mm from top"
    else:
        where = f"{100 * x / w:.0f}%{nb}from left, {100 * y / h:.0f}%{nb}from top"
    return f"{zone}; {where}"


#: Characters of a free-text field (notes) shown in the report; the rest stays in the database.
NOTES_SHOWN_CHARS = 3000
#: Other metadata (title, artist, camera...) is cut at this length in the report.
FIELD_SHOWN_CHARS = 500
#: Longest run of characters without a break opportunity the layout is given.
_RUN_CHARS = 24
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LONG_RUN = re.compile(rf"[^\s\u200b]{{{_RUN_CHARS}}}")


def display_text(value: str | None, limit: int = FIELD_SHOWN_CHARS) -> str | None:
    """Metadata text as the report shows it: bounded, breakable, without control characters.

    The layout engine's cost grows faster than linearly with an unbroken run
    of characters (a 3,000-character word in a table cell took a minute), so
    text is cut at ``limit`` characters (saying how many more are stored) and
    a zero-width space is put after every 24 characters without a space.
    What is shown is still plain text: the template escapes it.

    Parameters
    ----------
    value
        Stored text, or None.
    limit
        Characters shown at most.

    Returns
    -------
    str or None
        The text to show (None stays None).

    Examples
    --------
    >>> display_text("a" * 30).count("\u200b")
    1
    >>> display_text("x" * 10, limit=4)
    'xxxx… (6 more characters in the database)'
    """
    if value is None:
        return None
    text = _CONTROL.sub("", value)
    cut = ""
    if len(text) > limit:
        cut = f"… ({len(text) - limit:,} more characters in the database)"
        text = text[:limit]
    return _LONG_RUN.sub(lambda m: m.group(0) + "\u200b", text) + cut


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}g}"


def _mm_or_px(value_px: float, px_per_mm: float | None, digits: int = 2) -> str:
    nb = "\u00a0"
    if px_per_mm:
        return f"{value_px / px_per_mm:.{digits}g}{nb}mm"
    return f"{value_px:.0f}{nb}px"


def _area(area_px: float, area_mm2: float | None) -> str:
    nb = "\u00a0"
    return f"{area_mm2:.3g}{nb}mm²" if area_mm2 is not None else f"{area_px:.0f}{nb}px²"


def _size(bbox: Sequence[float], px_per_mm: float | None) -> str:
    w, h = bbox[2] - bbox[0], bbox[3] - bbox[1]
    nb = "\u00a0"
    if px_per_mm:
        return f"{w / px_per_mm:.0f}{nb}×{nb}{h / px_per_mm:.0f}{nb}mm"
    return f"{w:.0f}{nb}×{nb}{h:.0f}{nb}px"


def _scale(region: Region) -> str:
    """The pyramid level's pixel pitch a region was found at (``scale = auto``), or "".

    In mm when the scan's scale is known (``scale_mm``), else in baseline pixels;
    a region of the single analysis grid carries no scale.
    """
    nb = "\u00a0"
    if not isinstance(region, ScaledRegion):
        return ""
    if region.scale_mm is not None:
        return f"{region.scale_mm:.2g}{nb}mm"
    return f"{region.scale_px:.0f}{nb}px"


def _region_rows(
    detail: ComparisonDetail, outline: tuple[float, float, float, float],
    closeups: Mapping[str, Path | None],
) -> list[dict[str, Any]]:
    rows = []
    nb = "\u00a0"
    for r in detail.regions:
        pmm = peak_mm(r.peak, detail.method, detail.px_per_mm)
        if pmm is not None:
            peak = f"{pmm:+.2g}{nb}mm"
        else:
            peak = f"{r.peak:+.3g}{nb}{height_units(detail.method, detail.model_id)}"
        name, meaning = FINDING_WORDS[r.polarity]
        rows.append(
            {
                "number": str(r.id),
                "type": name,
                "meaning": meaning,
                "polarity": r.polarity,
                "location": region_location(
                    r, detail.baseline.width, detail.baseline.height, detail.px_per_mm, outline
                ),
                "size": _size(r.bbox, detail.px_per_mm),
                "area": _area(r.area_px, r.area_mm2),
                "peak": peak,
                "significance": f"{r.significance:.0f}{nb}×{nb}noise",
                "scale": _scale(r),
                "closeup": _uri(closeups.get(f"region-{r.id}")),
            }
        )
    return rows


def _appearance_rows(
    detail: ComparisonDetail, appearance: Sequence[Mapping[str, Any]],
    outline: tuple[float, float, float, float], closeups: Mapping[str, Path | None],
) -> list[dict[str, Any]]:
    rows = []
    for a in appearance:
        region = _Located((float(a["centroid"][0]), float(a["centroid"][1])))
        name, meaning = FINDING_WORDS.get(str(a["kind"]), FINDING_WORDS["discoloration"])
        rows.append(
            {
                "number": f"A{a['id']}",
                "type": name,
                "meaning": meaning,
                "kind": a["kind"],
                "location": region_location(region, detail.baseline.width,
                                            detail.baseline.height, detail.px_per_mm, outline),
                "size": _size(a["bbox"], detail.px_per_mm),
                "area": _area(float(a["area_px"]), a.get("area_mm2")),
                "delta_e": f"ΔE₀₀ {float(a['delta_e_mean']):.1f} "
                f"(max {float(a['delta_e_max']):.0f})",
                "delta_l": f"{float(a['delta_l']):+.1f}",
                "closeup": _uri(closeups.get(f"appearance-{a['id']}")),
            }
        )
    return rows


def _pairs(items: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [items[i : i + 2] for i in range(0, len(items), 2)]


@dataclass(frozen=True)
class _Located:
    centroid: tuple[float, float]


def _uri(path: Path | None) -> str | None:
    return path.resolve().as_uri() if path is not None and path.is_file() else None


def _plural(n: int, one: str, many: str | None = None) -> str:
    words = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    count = words[n] if n < len(words) else str(n)
    return f"{count} {one if n == 1 else (many or one + 's')}"


def findings_sentences(
    detail: ComparisonDetail, appearance: Sequence[Mapping[str, Any]], since: str
) -> list[str]:
    """The findings in plain conservation words, most important first.

    Parameters
    ----------
    detail
        The comparison.
    appearance
        Appearance findings as stored in ``regions.json`` (``kind``, ...).
    since
        How the history reads, e.g. ``first comparison`` or ``stable since the last scan``.

    Returns
    -------
    list of str
        Sentences for the Findings section.
    """
    bulges = sum(r.polarity == "bulge" for r in detail.regions)
    recessions = sum(r.polarity == "recession" for r in detail.regions)
    days = (detail.current.captured_at - detail.baseline.captured_at).days
    period = (f"between {detail.baseline.captured_at:%d %B %Y} and "
              f"{detail.current.captured_at:%d %B %Y} ({days} days)")
    status = detail.params.get("status", "ok")
    if status == "insufficient":  # "could not tell" is never "no change"
        usable = float(detail.params.get("usable_fraction") or 0.0)
        return [f"The comparison could not tell whether the surface changed {period}: only "
                f"{usable:.0%} of the overlap could be read (clipped, masked or too dark). "
                "No conclusion on relief or colour can be drawn from it; photograph the work "
                "again."]
    if status == "identical":
        return [f"The two scans {period} are the same image (identical pixels): nothing "
                "was measured, so this comparison says nothing about the surface."]
    out = []
    if detail.regions:
        parts = []
        if bulges:
            parts.append(_plural(bulges, "raised area") + (" (bulge)" if bulges == 1
                                                              else " (bulges)"))
        if recessions:
            parts.append(_plural(recessions, "depressed area") + (" (recession)" if recessions == 1
                                                                   else " (recessions)"))
        area = (f"{detail.changed_area_mm2:.3g} mm²" if detail.changed_area_mm2 is not None
                else f"{detail.changed_area_px:.0f} px² (scale not recorded)")
        out.append(f"Change in surface relief {period}: {' and '.join(parts)}, "
                   f"{area} in all. Each is listed below with its place on the work.")
    else:
        out.append(f"No change in surface relief above the level of detection {period}.")
    if appearance:
        kinds = [str(a["kind"]) for a in appearance]
        n_loss = kinds.count("possible loss")
        n_disc = len(kinds) - n_loss
        parts = []
        if n_disc:
            parts.append(_plural(n_disc, "discoloured area"))
        if n_loss:
            parts.append(_plural(n_loss, "area of possible loss", "areas of possible loss"))
        out.append(f"Change of colour without relief: {' and '.join(parts)} "
                   "(numbered A1…; not counted as bulges or recessions).")
    elif detail.method == "photometric":
        out.append("No change of colour above the threshold.")
    out.append(f"History: {since}.")
    return out


def build_context(
    detail: ComparisonDetail,
    hist: ArtworkHistory,
    figures: Mapping[str, Path | None],
    generated_at: datetime,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything the template shows, as plain values (the template stays logic-free).

    Parameters
    ----------
    detail
        The comparison.
    hist
        History of its artwork.
    figures
        ``baseline_thumb``, ``current_thumb``, ``heatmap``, ``overlay``,
        ``locator``, ``history``, ``region-N``, ``appearance-N`` -> image path
        (or None when not available).
    generated_at
        Time stamp printed on every page.
    extra
        ``appearance`` (list of dicts from ``regions.json``), ``outline``
        (dict from ``regions.json``), ``limit`` / ``lod`` / ``units`` of the
        heatmap.

    Returns
    -------
    dict
        The template context.
    """
    extra = dict(extra or {})
    art = detail.artwork
    if art.width_mm and art.height_mm:
        dimensions = f"{art.height_mm:g} × {art.width_mm:g} mm (h × w)"
    elif art.width_mm or art.height_mm:
        dimensions = f"{art.height_mm or '?'} × {art.width_mm or '?'} mm (h × w)"
    else:
        dimensions = None
    appearance = list(extra.get("appearance") or [])
    outline, outline_source = _work_box(extra.get("outline"), detail.baseline.width,
                                        detail.baseline.height)
    interval = detail.current.captured_at - detail.baseline.captured_at
    entry = next((e for e in hist.entries if e.comparison_id == detail.id), None)
    since = getattr(entry, "wording", None) or (
        "first comparison of this work" if len(hist.entries) <= 1
        else f"changed area {hist.trend} over {len(hist.entries)} comparisons"
    )
    if len(hist.entries) > 1 and hist.summary:
        since = f"{since}; the work overall: {hist.summary}"
    by_track: dict[int, list[Any]] = {}
    for point in getattr(hist, "tracks", ()):
        by_track.setdefault(point.track, []).append(point)
    tracked = []
    for number, points in sorted(by_track.items()):
        here = [p for p in points if p.comparison_id == detail.id]
        if len(points) < 2 or not here:
            continue
        first, last = points[0], points[-1]

        def size(p: Any) -> str:
            return _area(p.area_px, p.area_mm2)

        tracked.append({
            "track": number,
            "number": here[0].number,
            "first": f"{first.captured_at:%Y-%m-%d}",
            "first_area": size(first),
            "last": f"{last.captured_at:%Y-%m-%d}",
            "last_area": size(last),
            "peak": _fmt(last.peak_mm, 2) + " mm" if last.peak_mm is not None
            else _fmt(last.peak),
            "seen": len(points),
        })
    history_rows = [
        {
            "id": e.comparison_id,
            "baseline": e.baseline_captured_at.date().isoformat(),
            "current": e.current_captured_at.date().isoformat(),
            "n_bulge": e.n_bulge,
            "n_recession": e.n_recession,
            "area": _fmt(e.changed_area_mm2) + " mm²"
            if e.changed_area_mm2 is not None
            else f"{e.changed_area_px:.0f} px²",
            "peak": _fmt(peak_mm(e.max_abs_peak, e.method, detail.px_per_mm), 2) + " mm"
            if peak_mm(e.max_abs_peak, e.method, detail.px_per_mm) is not None
            else _fmt(e.max_abs_peak),
            "wording": getattr(e, "wording", None) or "",
            "this": e.comparison_id == detail.id,
        }
        for e in hist.entries
    ]

    def scan_block(scan: Any, role: str, thumb: str) -> dict[str, Any]:
        light = (
            f"azimuth {scan.light_azimuth:g}°, elevation {scan.light_elevation:g}°"
            f" ({getattr(scan, 'light_source', None) or 'ingest'})"
            if scan.light_azimuth is not None and scan.light_elevation is not None
            else "not recorded"
        )
        return {
            "role": role,
            "id": scan.id,
            "captured": scan.captured_at.strftime("%Y-%m-%d %H:%M UTC"),
            "size": f"{scan.width} × {scan.height} px",
            "scale": f"{scan.px_per_mm:g} px/mm" if scan.px_per_mm else "not recorded",
            "light": f"multi-light, {scan.n_lights} lamps (one per photograph)"
            if scan.n_lights else light,
            "camera": display_text(scan.camera),
            "operator": display_text(scan.operator),
            "notes": display_text(scan.notes, NOTES_SHOWN_CHARS),
            "sha256": scan.sha256[:16],
            "original_name": display_text(scan.original_name),
            "thumb": _uri(figures.get(thumb)),
        }

    in_px = height_units(detail.method, detail.model_id) == "px"
    units = "baseline pixel pitch" if in_px else "relative units"
    note = getattr(detail, "annotation", None)

    def loan(name: str) -> str | None:
        value = getattr(art, name, None)
        return display_text(str(value)) if value not in (None, "") else None

    def noted(name: str) -> str | None:
        value = getattr(note, name, None) if note is not None else None
        return display_text(str(value), NOTES_SHOWN_CHARS) if value not in (None, "") else None

    artwork = {
        "slug": art.slug,
        "title": display_text(art.title),
        "artist": display_text(art.artist),
        "date": display_text(art.date),
        "medium": display_text(art.medium),
        "location": display_text(art.location),
        "notes": display_text(art.notes, NOTES_SHOWN_CHARS),
    }

    examined = noted("examined_at") or detail.current.captured_at.strftime("%Y-%m-%d")
    scale_text = (f"{detail.px_per_mm:g} px/mm (heights and sizes in mm)" if detail.px_per_mm
                  else "not recorded: heights and sizes in pixels")
    lod = extra.get("lod")
    limit = extra.get("limit")
    region_rows = _region_rows(detail, outline, figures)
    appearance_rows = _appearance_rows(detail, appearance, outline, figures)
    heat_units = extra.get("units", "px")
    return {
        "title": artwork["title"],
        "artwork": artwork,
        "dimensions": dimensions,
        "comparison_id": detail.id,
        "generated_at": generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "loan": {
            "accession_number": loan("accession_number"),
            "owner": loan("owner"),
            "venue": loan("venue"),
            "exhibition": loan("exhibition"),
            "frame": loan("frame"),
            "glazing": loan("glazing"),
        },
        "exam": {
            "examiner": noted("examiner"),
            "date": examined,
            "conditions": noted("conditions"),
            "scale": scale_text,
            "condition": noted("condition"),
            "recommendations": noted("recommendations"),
        },
        "findings": findings_sentences(detail, appearance, since),
        "scans": [
            scan_block(detail.baseline, "Baseline", "baseline_thumb"),
            scan_block(detail.current, "Current", "current_thumb"),
        ],
        "interval_days": interval.days,
        "n_regions": len(detail.regions),
        "registration": registration_quality(detail.rmse_px, detail.n_inliers, detail.n_matches),
        "rmse_homography": f"{detail.rmse_homography_px:.2f} px",
        "heatmap": _uri(figures.get("heatmap")),
        "overlay": _uri(figures.get("overlay")),
        "locator": _uri(figures.get("locator")),
        "history_chart": _uri(figures.get("history")),
        "normals": _uri(figures.get("normals")),
        "n_lights": detail.baseline.n_lights,
        "scale_known": detail.px_per_mm is not None,
        "outline_words": "the work's edges as found in the baseline scan"
        if outline_source == "found"
        else ("the work's edges as set by the user" if outline_source == "user"
              else "the edges of the baseline image (the work fills the frame; no edge found)"),
        "heat": {
            "units": heat_units,
            "limit": "—" if limit is None else f"{limit:g} {heat_units}",
            "lod": "—" if lod is None else f"{lod:.2g} {heat_units}",
        },
        "regions": region_rows,
        "regions_scaled": any(r["scale"] for r in region_rows),
        "appearance": appearance_rows,
        "closeup_rows": _pairs(
            [{"src": r["closeup"], "number": r["number"],
              "caption": f"{r['number']}. {r['type']} ({r['peak']}): {r['meaning']}."}
             for r in region_rows if r["closeup"]]
            + [{"src": a["closeup"], "number": a["number"],
                "caption": f"{a['number']}. {a['type']} ({a['delta_e']}, lightness "
                f"{a['delta_l']} L*): {a['meaning']}."}
               for a in appearance_rows if a["closeup"]]
        ),
        "history": history_rows,
        "since": since,
        "tracked": tracked,
        "trend": hist.trend,
        "units": units,
        "light": _light_text(detail),
        "light_warning": detail.light_message if detail.light_disagrees else None,
        "method": {
            "software": f"monitor {detail.software_version}",
            "renderer": f"monitor {__version__}",
            "method": detail.method,
            "model_id": detail.model_id or "—",
            "weights": detail.weights_sha256 or "none (no learned weights)",
            "light": _light_text(detail),
            "noise": f"{detail.noise_sigma:.3g} ({units})",
            "alignment": "—"
            if detail.align_scale is None
            else f"scale {detail.align_scale:.4g}, shift {_fmt(detail.align_shift)}, "
            f"{detail.align_n_used} px used, inliers {_fmt(detail.align_inlier_fraction)}",
            "analysis_scale": f"{detail.analysis_scale:.3g}",
            "params": ", ".join(f"{k}={v}" for k, v in sorted(detail.params.items())
                                if v is not None),
            "created": detail.created_at.strftime("%Y-%m-%d %H:%M UTC"),
        },
    }


#: How each source of the lamp reads in a report.
LIGHT_SOURCE_TEXT = {
    "given": "given by the user",
    "sidecar": "from the scan's sidecar file",
    "ingest": "recorded at ingest",
    "estimated": "estimated from the scans",
    "default": "the built-in default (recorded before the lamp was checked)",
}


def _light_text(detail: Any) -> str:
    """The lamp used, with its source and uncertainty, in words."""
    light = detail.light
    source = getattr(detail, "light_source", None)
    unc = getattr(detail, "light_uncertainty", None)
    pm = f" ± {unc:.0f}°" if unc is not None else ""
    said = LIGHT_SOURCE_TEXT.get(source or "", "source not recorded")
    checked = ""
    if source != "estimated":
        disagrees = getattr(detail, "light_disagrees", None)
        checked = ("; the scans disagree" if disagrees
                   else "; not checked against the scans" if disagrees is None
                   else "; consistent with the scans")
    return (f"azimuth {light.azimuth_deg:.0f}°{pm} ({said}{checked}), "
            f"elevation {light.elevation_deg:g}°")


def render_html(context: Mapping[str, Any], template_folder: Path | None = None) -> str:
    """Fill the report template (autoescape on, undefined names are errors).

    Parameters
    ----------
    context
        From :func:`build_context`.
    template_folder
        Folder of ``report.html.j2``; :func:`templates_dir` by default.

    Returns
    -------
    str
        The HTML.
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_folder or templates_dir()),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    try:
        return env.get_template(TEMPLATE_NAME).render(**context)
    except jinja2.TemplateError as exc:
        raise MonitorError(f"report template failed: {exc}") from exc


def html_to_pdf(html: str, out: Path, fetcher: StoreURLFetcher, base: Path) -> int:
    """Lay out ``html`` with WeasyPrint and write the PDF atomically.

    Parameters
    ----------
    html
        The document.
    out
        PDF file to write (temporary name in the same folder, then renamed).
    fetcher
        The only way resources are read.
    base
        Base folder for relative URLs (the templates folder).

    Returns
    -------
    int
        Number of pages.
    """
    out = Path(out)
    tmp = out.with_name(f".{out.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part")
    try:
        with _quiet_weasyprint():
            document = HTML(string=html, base_url=base.as_uri() + "/", url_fetcher=fetcher).render()
            document.write_pdf(tmp, pdf_tags=True, optimize_images=True, jpeg_quality=JPEG_QUALITY,
                               custom_metadata=True)
        os.replace(tmp, out)
    except OSError as exc:
        raise MonitorError(f"cannot write report {out}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return len(document.pages)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def sweep_leftovers(out: Path) -> list[Path]:
    """Remove what a killed earlier writer of ``out`` left beside it.

    A report is staged beside its PDF (``.NAME.PID-XXXX.figures`` folders, a
    ``.NAME.PID-XXXX.part`` file) and renamed into place; a writer killed
    outright (``kill -9``, power loss) cannot clean up. Leftovers whose writer
    process no longer runs are removed; those of a live writer are kept.

    Parameters
    ----------
    out
        The report's PDF path.

    Returns
    -------
    list of Path
        What was removed.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / ".r.pdf.999999999-ab12.part").write_bytes(b"%PDF-")
    >>> [p.name for p in sweep_leftovers(folder / "r.pdf")]
    ['.r.pdf.999999999-ab12.part']
    """
    pattern = re.compile(rf"^\.{re.escape(out.name)}\.(\d+)-[^/]*\.(figures|part)$")
    removed: list[Path] = []
    for path in out.parent.iterdir():
        m = pattern.match(path.name)
        if m is None or _pid_alive(int(m.group(1))):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


@contextmanager
def _quiet_weasyprint() -> Iterator[None]:
    """WeasyPrint logs refused resources as warnings; the fetcher records them instead."""
    logger = logging.getLogger("weasyprint")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _artifact(store: Store, detail: ComparisonDetail, name: str) -> Path | None:
    """A comparison's stored file, checked to lie in the store and to hold its bytes; or None."""
    path = detail.artifacts.get(name)
    if path is None:
        return None
    what = f"artifact {name} of comparison {detail.id}"
    path = store.stored_file(path, what)
    if not path.is_file():
        return None
    return store.verified_file(path, None, what)


def _stored_summary(store: Store, detail: ComparisonDetail) -> dict[str, Any]:
    """The comparison's ``regions.json`` (appearance findings, outline, LoD), or {}."""
    path = _artifact(store, detail, "regions.json")
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def heat_scale(
    detail: ComparisonDetail, hist: ArtworkHistory, stored: Mapping[str, Any]
) -> tuple[str, float, float | None, float]:
    """Units, colour limit, level of detection and map-to-display factor of the heatmaps.

    The limit is the same for every comparison of the artwork (a nice number
    above the largest peak of all of them, and above twice this comparison's
    level of detection), so heatmaps of one work can be compared by eye.
    """
    in_px = detail.method in ("photometric", "pair")
    if in_px and detail.px_per_mm:
        units, factor = "mm", 1.0 / detail.px_per_mm
    else:
        units, factor = ("px" if in_px else "rel."), 1.0
    z = float(detail.params.get("significance_z") or stored.get("params", {}).get(
        "significance_z") or 6.0)
    lod = stored.get("level_of_detection")
    lod_value = float(lod) if isinstance(lod, (int, float)) else z * detail.noise_sigma
    peaks = [e.max_abs_peak * factor for e in hist.entries if e.method == detail.method]
    peaks += [r.peak * factor for r in detail.regions]
    return units, colour_limit(peaks, lod_value * factor), lod_value * factor, factor


def _crop_box(bbox: Sequence[float], width: int, height: int, margin: float = 1.0
              ) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = bbox
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    side = max(side, 32.0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    a0 = int(max(0, min(cx - side / 2, width - side)))
    b0 = int(max(0, min(cy - side / 2, height - side)))
    return a0, b0, int(min(width, a0 + side)), int(min(height, b0 + side))


def _figures(
    store: Store, detail: ComparisonDetail, hist: ArtworkHistory, folder: Path,
    stored: Mapping[str, Any],
) -> tuple[dict[str, Path | None], dict[str, Any]]:
    import cv2  # below the report layer: image resampling only

    from monitor.capture import read_capture
    from monitor.io import read_float_tiff, read_image
    from monitor.report.figures import (
        closeup_png,
        heatmap_png,
        locator_png,
        overlay_png,
        thumbnail_png,
    )

    figures: dict[str, Path | None] = {}
    images: dict[str, Any] = {}
    for name, scan in (("baseline_thumb", detail.baseline), ("current_thumb", detail.current)):
        path = store.stored_file(scan.path, f"scan {scan.id}")
        if path.is_file():
            path = store.verified_file(path, scan.sha256, f"scan {scan.id}")
            if scan.n_lights:  # a multi-light scan's file is its .lp: show its first photograph
                path = Path(read_capture(path).paths[0])
            images[name] = read_image(path).pixels
            figures[name] = thumbnail_png(images[name], folder / f"{name}.jpg", max_px=640)
        else:
            figures[name] = None
    units, limit, lod, factor = heat_scale(detail, hist, stored)
    appearance = [
        AppearanceRegion(
            id=int(a["id"]), kind=a["kind"], centroid=tuple(a["centroid"]),
            bbox=tuple(a["bbox"]), area_px=float(a["area_px"]),
            delta_e_mean=float(a["delta_e_mean"]), delta_e_max=float(a["delta_e_max"]),
            delta_l=float(a["delta_l"]), delta_chroma=float(a.get("delta_chroma", 0.0)),
            area_mm2=a.get("area_mm2"),
        )
        for a in stored.get("appearance") or []
    ]
    change_path = _artifact(store, detail, "change.tif")
    change = None
    if change_path is not None:
        change = read_float_tiff(change_path) * factor
        s = min(1.0, 1600 / max(change.shape))
        figures["heatmap"] = heatmap_png(
            change, folder / "heatmap.png", units=units, vmax=limit, lod=lod,
            px_per_mm=detail.px_per_mm, regions=detail.regions, appearance=appearance,
            max_px=1600, max_height_in=3.9,
        ) if s > 0 else None
    else:
        figures["heatmap"] = _artifact(store, detail, "heatmap.png")
    base = images.get("baseline_thumb")
    if base is not None:
        figures["overlay"] = overlay_png(
            base, detail.regions, folder / "overlay.jpg", appearance=appearance,
            px_per_mm=detail.px_per_mm, width_in=7.0, max_height_in=3.9,
        )
    else:
        figures["overlay"] = _artifact(store, detail, "overlay.png")
    figures["normals"] = _artifact(store, detail, "normals.png")
    outline, _ = _work_box(stored.get("outline"), detail.baseline.width, detail.baseline.height)
    figures["locator"] = locator_png(Outline(outline, "found"), detail.regions,
                                     folder / "locator.png", appearance=appearance)
    cur = images.get("current_thumb")
    if base is not None and cur is not None and change is not None:
        hom = np.asarray(detail.homography, dtype=np.float64).reshape(3, 3)
        items = [(f"region-{r.id}", r.bbox, f"{r.id}  {FINDING_WORDS[r.polarity][0].lower()}")
                 for r in detail.regions]
        items += [(f"appearance-{a.id}", a.bbox, f"A{a.id}  {a.kind}") for a in appearance]
        for key, bbox, label in items:
            x0, y0, x1, y1 = _crop_box(bbox, detail.baseline.width, detail.baseline.height)
            shift = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], dtype=np.float64)
            after = cv2.warpPerspective(
                np.ascontiguousarray(cur), shift @ hom, (x1 - x0, y1 - y0),
                flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
            )
            before = base[y0:y1, x0:x1]
            figures[key] = closeup_png(
                before, after, change[y0:y1, x0:x1], folder / f"{key}.jpg", limit=limit,
                lod=lod, units=units, label=label, px_per_mm=detail.px_per_mm,
                box=(bbox[0] - x0, bbox[1] - y0, bbox[2] - x0, bbox[3] - y0),
                width_in=3.25,
            )
    # one comparison makes no trend: a single bar would only take room from the findings
    tracks: dict[int, list[tuple[datetime, float]]] = {}
    for point in getattr(hist, "tracks", ()):
        area = point.area_mm2 if point.area_mm2 is not None else point.area_px
        tracks.setdefault(point.track, []).append((point.captured_at, float(area)))
    followed = {t: pts for t, pts in tracks.items() if len(pts) >= 2}
    figures["history"] = (
        history_chart_png(hist, folder / "history.png", highlight=detail.id,
                          series={e.comparison_id: e.series for e in hist.entries},
                          tracks=followed or None)
        if len(hist.entries) >= 2 else None
    )
    extra = {"appearance": stored.get("appearance") or [], "outline": stored.get("outline"),
             "limit": limit, "lod": lod, "units": units}
    return figures, extra


def write_report(
    store: Store, comparison_id: int, out: str | Path, *, now: datetime | None = None
) -> RenderedReport:
    """Write the PDF condition report of a stored comparison.

    Parameters
    ----------
    store
        The open store.
    comparison_id
        Id of the comparison.
    out
        PDF file to write.
    now
        Generation time printed in the report (default: now, UTC).

    Returns
    -------
    RenderedReport
        Path, page count, the HTML and the URLs the renderer asked for.
    """
    out = Path(out)
    if out.suffix.lower() != ".pdf":
        raise MonitorError(f"report file must end in .pdf: {out}")
    if not out.parent.is_dir():
        raise MonitorError(f"folder of the report does not exist: {out.parent}")
    detail = comparison_detail(store, comparison_id)
    hist = history(store, detail.artwork.slug)
    templates = templates_dir()
    # figures are staged beside the output, not in the home: the home may be read-only
    try:
        sweep_leftovers(out)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.{os.getpid()}-", suffix=".figures",
                                        dir=out.parent))
    except OSError as exc:
        raise MonitorError(f"cannot write into {out.parent}: {exc}") from exc
    try:
        stored = _stored_summary(store, detail)
        # the store's own records come first; regions.json covers comparisons stored before them
        if detail.appearance:
            stored["appearance"] = [a.to_dict(detail.px_per_mm) for a in detail.appearance]
        if detail.outline is not None:
            stored["outline"] = detail.outline.to_dict(detail.px_per_mm)
        figures, extra = _figures(store, detail, hist, staging, stored)
        context = build_context(detail, hist, figures, now or datetime.now(UTC), extra)
        html = render_html(context, templates)
        fetcher = StoreURLFetcher([templates, store.objects_dir, staging])
        pages = html_to_pdf(html, out, fetcher, templates)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return RenderedReport(out, pages, html, tuple(fetcher.requested), tuple(fetcher.refused))
