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
import PIL.ImageFile

from monitor import __version__
from monitor.errors import MonitorError
from monitor.report.charts import history_chart_png
from monitor.results import Region
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


class StoreURLFetcher(URLFetcher):  # type: ignore[misc]
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


def region_location(region: Region, width: int, height: int, px_per_mm: float | None) -> str:
    """Where a region lies on the work, in a conservator's words plus coordinates.

    Zones are thirds of the baseline image (upper / middle / lower, left /
    centre / right, as the viewer faces the work); coordinates are measured
    from the top-left corner of the baseline image, in mm when the scale is
    known, else in percent of its width and height.

    Parameters
    ----------
    region
        The region (baseline pixel coordinates).
    width, height
        Size of the baseline image in pixels.
    px_per_mm
        Baseline pixels per millimetre, or None.

    Returns
    -------
    str
        e.g. ``upper left; x 120 mm, y 45 mm`` (with no-break spaces).
    """
    x, y = region.centroid
    col = min(int(3 * x / max(width, 1)), 2)
    row = min(int(3 * y / max(height, 1)), 2)
    vertical = ("upper", "middle", "lower")[max(row, 0)]
    horizontal = ("left", "centre", "right")[max(col, 0)]
    zone = f"{vertical} {horizontal}"
    if zone == "middle centre":
        zone = "centre"
    if px_per_mm:
        where = f"x\u00a0{x / px_per_mm:.0f}\u00a0mm, y\u00a0{y / px_per_mm:.0f}\u00a0mm"
    else:
        where = f"x\u00a0{100 * x / max(width, 1):.0f}%, y\u00a0{100 * y / max(height, 1):.0f}%"
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


def _region_rows(detail: ComparisonDetail) -> list[dict[str, str]]:
    rows = []
    for r in detail.regions:
        pmm = peak_mm(r.peak, detail.method, detail.px_per_mm)
        unit = "px" if detail.method == "photometric" else "rel."
        peak = f"{r.peak:+.3g}\u00a0{unit}" + (
            f" ({pmm:+.2g}\u00a0mm)" if pmm is not None else ""
        )
        area = (
            f"{r.area_mm2:.3g}\u00a0mm²" if r.area_mm2 is not None else f"{r.area_px:.0f}\u00a0px"
        )
        rows.append(
            {
                "number": str(r.id),
                "type": "Bulge" if r.polarity == "bulge" else "Recession (depression)",
                "polarity": r.polarity,
                "location": region_location(
                    r, detail.baseline.width, detail.baseline.height, detail.px_per_mm
                ),
                "area": area,
                "peak": peak,
                "significance": f"{r.significance:.1f} σ",
            }
        )
    return rows


def build_context(
    detail: ComparisonDetail,
    hist: ArtworkHistory,
    figures: Mapping[str, Path | None],
    generated_at: datetime,
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
        ``history`` -> PNG path (or None when not available).
    generated_at
        Time stamp printed on every page.

    Returns
    -------
    dict
        The template context.
    """
    art = detail.artwork
    if art.width_mm and art.height_mm:
        dimensions = f"{art.height_mm:g} × {art.width_mm:g} mm (h × w)"
    elif art.width_mm or art.height_mm:
        dimensions = f"{art.height_mm or '?'} × {art.width_mm or '?'} mm (h × w)"
    else:
        dimensions = None
    bulges = [r for r in detail.regions if r.polarity == "bulge"]
    recessions = [r for r in detail.regions if r.polarity == "recession"]
    if detail.changed_area_mm2 is not None:
        changed = f"{detail.changed_area_mm2:.3g} mm²"
    else:
        changed = f"{detail.changed_area_px:.0f} px (scale unknown)"
    interval = detail.current.captured_at - detail.baseline.captured_at
    history_rows = [
        {
            "id": e.comparison_id,
            "baseline": e.baseline_captured_at.date().isoformat(),
            "current": e.current_captured_at.date().isoformat(),
            "n_bulge": e.n_bulge,
            "n_recession": e.n_recession,
            "area": _fmt(e.changed_area_mm2) + " mm²"
            if e.changed_area_mm2 is not None
            else f"{e.changed_area_px:.0f} px",
            "peak": _fmt(e.max_abs_peak),
            "this": e.comparison_id == detail.id,
        }
        for e in hist.entries
    ]

    def uri(name: str) -> str | None:
        path = figures.get(name)
        return path.resolve().as_uri() if path is not None and path.is_file() else None

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
            "light": light,
            "camera": display_text(scan.camera),
            "operator": display_text(scan.operator),
            "notes": display_text(scan.notes, NOTES_SHOWN_CHARS),
            "sha256": scan.sha256[:16],
            "original_name": display_text(scan.original_name),
            "thumb": uri(thumb),
        }

    units = "baseline pixel pitch" if detail.method == "photometric" else "relative units"
    artwork = {
        "slug": art.slug,
        "title": display_text(art.title),
        "artist": display_text(art.artist),
        "date": display_text(art.date),
        "medium": display_text(art.medium),
        "location": display_text(art.location),
        "notes": display_text(art.notes, NOTES_SHOWN_CHARS),
    }
    return {
        "title": artwork["title"],
        "artwork": artwork,
        "dimensions": dimensions,
        "comparison_id": detail.id,
        "generated_at": generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "scans": [
            scan_block(detail.baseline, "Baseline", "baseline_thumb"),
            scan_block(detail.current, "Current", "current_thumb"),
        ],
        "interval_days": interval.days,
        "n_regions": len(detail.regions),
        "n_bulge": len(bulges),
        "n_recession": len(recessions),
        "changed_area": changed,
        "registration": registration_quality(detail.rmse_px, detail.n_inliers, detail.n_matches),
        "rmse_homography": f"{detail.rmse_homography_px:.2f} px",
        "heatmap": uri("heatmap"),
        "overlay": uri("overlay"),
        "history_chart": uri("history"),
        "scale_known": detail.px_per_mm is not None,
        "regions": _region_rows(detail),
        "history": history_rows,
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
            "params": ", ".join(f"{k}={v}" for k, v in sorted(detail.params.items())),
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
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        with _quiet_weasyprint():
            document = HTML(string=html, base_url=base.as_uri() + "/", url_fetcher=fetcher).render()
            document.write_pdf(tmp)
        os.replace(tmp, out)
    except OSError as exc:
        raise MonitorError(f"cannot write report {out}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return len(document.pages)


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


def _figures(
    store: Store, detail: ComparisonDetail, hist: ArtworkHistory, folder: Path
) -> dict[str, Path | None]:
    from monitor.io import read_image  # below the report layer
    from monitor.report.figures import thumbnail_png

    figures: dict[str, Path | None] = {}
    for name, scan in (("baseline_thumb", detail.baseline), ("current_thumb", detail.current)):
        path = store.stored_file(scan.path, f"scan {scan.id}")
        if path.is_file():
            path = store.verified_file(path, scan.sha256, f"scan {scan.id}")
            figures[name] = thumbnail_png(read_image(path).pixels, folder / f"{name}.png",
                                          max_px=700)
        else:
            figures[name] = None
    for name in ("heatmap", "overlay"):
        path = detail.artifacts.get(f"{name}.png")
        if path is not None:
            what = f"artifact {name}.png of comparison {detail.id}"
            path = store.stored_file(path, what)
            if path.is_file():
                path = store.verified_file(path, None, what)
        figures[name] = path if path is not None and path.is_file() else None
    figures["history"] = history_chart_png(hist, folder / "history.png", highlight=detail.id)
    return figures


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
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".figures", dir=out.parent))
    except OSError as exc:
        raise MonitorError(f"cannot write into {out.parent}: {exc}") from exc
    try:
        figures = _figures(store, detail, hist, staging)
        context = build_context(detail, hist, figures, now or datetime.now(UTC))
        html = render_html(context, templates)
        fetcher = StoreURLFetcher([templates, store.objects_dir, staging])
        pages = html_to_pdf(html, out, fetcher, templates)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return RenderedReport(out, pages, html, tuple(fetcher.requested), tuple(fetcher.refused))
