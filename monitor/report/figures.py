"""PNG figures for reports: height-change heatmap, region overlay, thumbnail.

Figures are drawn on :class:`matplotlib.figure.Figure` objects attached to
their own :class:`~matplotlib.backends.backend_agg.FigureCanvasAgg`: no
``pyplot``, no global backend switch (``matplotlib.use`` is never called), no
figure registry to leak, so the module is safe to import from a GUI or a
notebook and from several threads drawing different figures.

Images are drawn at their display size pixel for pixel (dpi 100, figure size
chosen in pixels); images larger than ``max_px`` on their long side are
area-averaged down first, small ones are magnified (nearest neighbour) so
labels stay legible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib import patheffects as pe
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from matplotlib.text import Text
from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar
from PIL import Image as PILImage

from monitor.errors import MonitorError
from monitor.io import analysis_scale, downsample, write_png
from monitor.results import AppearanceRegion, Outline, Region

__all__ = ["APPEARANCE_COLOR", "BULGE_COLOR", "NAN_COLOR", "RECESSION_COLOR", "closeup_png",
           "colour_limit", "heatmap_png", "locator_png", "nice_ceiling", "overlay_png",
           "thumbnail_png"]

DPI = 100
#: Outline colour of a bulge (towards the viewer) and of a recession.
BULGE_COLOR = "#e8141c"
RECESSION_COLOR = "#1746ff"
#: Where the change map has no value (no overlap, masked).
NAN_COLOR = "#808080"
#: Outline of an appearance finding (colour change that is not relief).
APPEARANCE_COLOR = "#8a5a00"
#: Text size of print-laid-out figures, and the smallest allowed (points at print size).
FONT_PT = 7.5
MIN_PT = 7.0
#: JPEG quality of photographic figures (report size).
JPEG_QUALITY = 82

#: zlib level of the PNG figures: lossless at any level; 1 encodes the 24 MP overlay
#: about 5x faster than Pillow's default 6 for a ~17 % larger file.
PNG_COMPRESS_LEVEL = 1

_MIN_LONG_PX = 480  # small images are magnified to at least this long side
_MIN_SHORT_PX = 200


def _check_out(path: str | Path) -> Path:
    out = Path(path)
    if not out.parent.is_dir():
        raise MonitorError(f"cannot write {out}: folder {out.parent} does not exist")
    return out


def _magnification(shape: tuple[int, int], max_px: int) -> float:
    """Display pixels per array pixel for an array that already fits ``max_px``.

    Small arrays are magnified so the long side reaches about
    ``min(_MIN_LONG_PX, max_px)`` (and the short side ``_MIN_SHORT_PX``),
    never beyond ``max_px``.
    """
    long_side, short_side = max(shape), min(shape)
    mag = max(1.0, min(_MIN_LONG_PX, max_px) / long_side, _MIN_SHORT_PX / short_side)
    return min(mag, max(1.0, max_px / long_side))


def _save(fig: Figure, path: Path, *, dpi: int = DPI) -> Path:
    FigureCanvasAgg(fig)  # attach an Agg canvas; no pyplot, no global backend
    fmt = "jpeg" if path.suffix.lower() in (".jpg", ".jpeg") else "png"
    pil_kwargs: dict[str, object] = (
        {"quality": JPEG_QUALITY, "optimize": True} if fmt == "jpeg"
        else {"compress_level": PNG_COMPRESS_LEVEL}
    )
    try:
        fig.savefig(path, dpi=dpi, format=fmt, pil_kwargs=pil_kwargs)
    except OSError as exc:
        raise MonitorError(f"cannot write {path}: {exc}") from exc
    return path


def _nan_area_downsample(values: np.ndarray, scale: float) -> np.ndarray:
    """Area average ignoring NaN; output NaN where less than half the footprint is valid."""
    valid = np.isfinite(values)
    filled = np.where(valid, values, 0.0).astype(np.float32)
    num = downsample(filled, scale)
    den = downsample(valid.astype(np.float32), scale)
    out = np.full(num.shape, np.nan, dtype=np.float32)
    ok = den >= 0.5
    out[ok] = num[ok] / den[ok]
    return out


def _robust_vmax(values: np.ndarray) -> float:
    finite = np.abs(values[np.isfinite(values)])
    if finite.size == 0:
        return 1.0
    vmax = float(np.percentile(finite, 99.5))
    if not vmax > 0:
        vmax = float(finite.max())
    return vmax if vmax > 0 else 1.0


def _nice_length(target: float) -> float:
    """Largest 1, 2 or 5 x 10^k not above ``target`` (> 0)."""
    exp = math.floor(math.log10(target))
    for mult in (5, 2, 1):
        if mult * 10.0**exp <= target:
            return mult * 10.0**exp
    return 10.0**exp


def _to_uint8_rgb(rgb: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(rgb)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3 or min(arr.shape[:2]) < 1:
        raise MonitorError(f"{what}: need an H x W x 3 image, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.uint16:
        return ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)
    raise MonitorError(f"{what}: need uint8 or uint16 pixels, got {arr.dtype}")


def nice_ceiling(value: float) -> float:
    """Smallest 1, 2, 2.5 or 5 x 10^k at or above ``value`` (> 0): a colour-bar limit.

    Examples
    --------
    >>> nice_ceiling(1.3), nice_ceiling(0.0042), nice_ceiling(2.6)
    (2.0, 0.005, 5.0)
    """
    if not (math.isfinite(value) and value > 0):
        return 1.0
    exp = math.floor(math.log10(value))
    for mult in (1.0, 2.0, 2.5, 5.0, 7.5, 10.0):
        if mult * 10.0**exp >= value * (1 - 1e-9):
            return float(f"{mult * 10.0**exp:.6g}")
    return 10.0 ** (exp + 1)


def colour_limit(peaks: Sequence[float], lod: float | None) -> float:
    """Symmetric colour limit of a heatmap: a nice number above every peak and 2 x the LoD.

    Give it the peaks of *every* comparison of one artwork and its heatmaps
    share one scale, so that they can be compared by eye.

    Parameters
    ----------
    peaks
        Peak changes (any sign), in the heatmap's units.
    lod
        Level of detection (significance threshold), same units, or None.

    Returns
    -------
    float
        The limit (> 0).

    Examples
    --------
    >>> colour_limit([1.28, -2.11], 0.4)
    2.5
    >>> colour_limit([], 0.03)
    0.1
    """
    candidates = [abs(float(p)) for p in peaks if math.isfinite(float(p))]
    if lod is not None and math.isfinite(lod) and lod > 0:
        candidates.append(2.0 * lod)
    return nice_ceiling(max(candidates, default=1.0))


def change_colormap(limit: float, lod: float | None, n: int = 512) -> ListedColormap:
    """Diverging red / blue map over ``[-limit, limit]`` that is neutral within ``+-lod``.

    Change below the level of detection is drawn in one neutral light grey;
    above it the colour starts at a visible tint and saturates at ``limit``.
    """
    base = colormaps["RdBu_r"]
    values = np.linspace(-limit, limit, n)
    frac = np.abs(values) / limit
    if lod is not None and 0 < lod < limit:
        t = np.clip((np.abs(values) - lod) / (limit - lod), 0, 1)
        strength = 0.18 + 0.82 * t
    else:
        strength = frac
    colours = base(0.5 + 0.5 * np.sign(values) * strength)
    if lod is not None and lod > 0:
        colours[np.abs(values) < lod] = (0.95, 0.95, 0.95, 1.0)
    return ListedColormap(colours, bad=NAN_COLOR)


def _print_text(fig: Figure) -> None:
    """Check the figure's text stays readable in print (>= MIN_PT at its print size)."""
    for text in fig.findobj(Text):
        if text.get_text() and float(text.get_fontsize()) < MIN_PT - 1e-6:  # pragma: no cover
            raise MonitorError(f"figure text below {MIN_PT} pt: {text.get_text()!r}")


def _scale_bar(ax: object, map_px_per_mm: float, width_px: float, rows_px: float,
               shown_h: float, fontsize: float) -> None:
    width_mm = width_px / map_px_per_mm
    length_mm = _nice_length(0.2 * width_mm)
    bar = AnchoredSizeBar(
        ax.transData,  # type: ignore[attr-defined]
        length_mm * map_px_per_mm,
        f"{length_mm:g} mm",
        loc="lower left",
        pad=0.3,
        borderpad=0.5,
        sep=2,
        color="black",
        frameon=True,
        size_vertical=max(1.0, rows_px / max(shown_h, 1.0) * 3),
        fontproperties={"size": fontsize},
    )
    bar.patch.set_facecolor("white")
    bar.patch.set_alpha(0.85)
    bar.patch.set_edgecolor("none")
    ax.add_artist(bar)  # type: ignore[attr-defined]


def _number(ax: object, x: float, y: float, text: str, color: str, fontsize: float) -> None:
    ax.text(  # type: ignore[attr-defined]
        x, y, text, color=color, fontsize=fontsize, fontweight="bold", ha="center",
        va="center", path_effects=[pe.withStroke(linewidth=2.5, foreground="white")],
    )


def heatmap_png(
    height: np.ndarray,
    path: Path,
    *,
    units: str = "px",
    title: str | None = None,
    vmax: float | None = None,
    lod: float | None = None,
    px_per_mm: float | None = None,
    regions: Sequence[Region] = (),
    appearance: Sequence[AppearanceRegion] = (),
    region_scale: float = 1.0,
    max_px: int = 1600,
    width_in: float = 7.0,
    max_height_in: float = 5.2,
    dpi: int = 150,
    quantity: str = "height change",
) -> Path:
    """Render a signed height-change map as a diverging heatmap PNG, laid out for print.

    Red = towards the viewer (bulge), blue = away (recession), light grey =
    change below the level of detection (not significant), dark grey = no
    data (NaN). Limits are symmetric, ``[-vmax, vmax]``; values beyond show
    in the saturated colour (the colour bar has arrow ends). The figure is
    ``width_in`` inches wide and all its text is at least 7 pt at that size.

    Parameters
    ----------
    height
        H x W float map (NaN where there is no data), in ``units``.
    path
        Output PNG; its folder must exist.
    units
        Unit of the values, shown on the colour bar ("mm", "px", "rel.").
    title
        Drawn above the map when given.
    vmax
        Colour limit; default from :func:`colour_limit` over the regions'
        peaks and ``lod``, or the 99.5th percentile of ``|height|``.
    lod
        Level of detection in ``units``: ``|change| < lod`` is drawn neutral.
    px_per_mm
        Pixels of ``height`` per millimetre; adds a scale bar when given.
    regions, appearance
        Relief regions (numbered at their centres) and appearance findings
        (dashed outlines, numbered ``A1``...), in baseline pixels.
    region_scale
        Pixels of ``height`` per baseline pixel (``ChangeMap.scale``).
    max_px
        Long side of the map in the figure at most (larger maps are
        area-averaged, NaN-aware).
    width_in, max_height_in, dpi
        Print width and largest print height of the figure (inches), and its
        resolution.
        Long side of the map in the figure; larger maps are area-averaged
        (NaN-aware).
    quantity
        What the values are, on the colour bar: ``"height change"`` (a
        comparison) or ``"height"`` (one scan's topography).

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> h = np.zeros((60, 90), np.float32); h[20:30, 20:30] = 0.5
    >>> out = heatmap_png(h, pathlib.Path(tempfile.mkdtemp()) / "h.png", lod=0.1, units="mm")
    >>> out.name
    'h.png'
    """
    h = np.asarray(height)
    if h.ndim != 2 or min(h.shape) < 1:
        raise MonitorError(f"heatmap_png: need an H x W map, got shape {h.shape}")
    if h.dtype.kind not in "fiu":
        raise MonitorError(f"heatmap_png: need a numeric map, got {h.dtype}")
    if max_px < 16:
        raise MonitorError(f"heatmap_png: max_px must be >= 16, got {max_px}")
    if vmax is not None and not (math.isfinite(vmax) and vmax > 0):
        raise MonitorError(f"heatmap_png: vmax must be a positive number, got {vmax}")
    if lod is not None and not (math.isfinite(lod) and lod >= 0):
        raise MonitorError(f"heatmap_png: lod must be a non-negative number, got {lod}")
    if px_per_mm is not None and not (math.isfinite(px_per_mm) and px_per_mm > 0):
        raise MonitorError(f"heatmap_png: px_per_mm must be positive, got {px_per_mm}")
    if not (width_in >= 2 and max_height_in >= 1 and dpi >= 50):
        raise MonitorError("heatmap_png: need width_in >= 2, max_height_in >= 1, dpi >= 50")
    out = _check_out(path)
    h = h.astype(np.float32, copy=False)
    rows, cols = h.shape
    if vmax is not None:
        limit = vmax
    elif regions:
        limit = colour_limit([r.peak for r in regions], lod)
    else:
        limit = max(_robust_vmax(h), 2.0 * lod if lod else 0.0)

    # geometry in inches: map, colour bar column on the right, legend line below
    margin, bar_col, legend_h = 0.06, 1.3, 0.26
    top = 0.3 if title else margin
    map_w = width_in - 2 * margin - bar_col
    map_h = map_w * rows / cols
    if map_h > max_height_in:
        map_h = max_height_in
        map_w = map_h * cols / rows
    fig_h = top + map_h + legend_h + margin
    fig = Figure(figsize=(width_in, fig_h), dpi=dpi, facecolor="white")
    left = margin + (width_in - 2 * margin - bar_col - map_w) / 2
    ax = fig.add_axes((left / width_in, (legend_h + margin) / fig_h, map_w / width_in,
                       map_h / fig_h))
    target = max(16, min(max_px, round(max(map_w, map_h) * dpi)))
    s = analysis_scale((rows, cols), target)
    shown = _nan_area_downsample(h, s) if s < 1 else h
    im = ax.imshow(
        shown,
        cmap=change_colormap(limit, lod),
        norm=Normalize(-limit, limit),
        interpolation="nearest",
        extent=(0, cols, rows, 0),  # array pixel coordinates, corner origin
    )
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=FONT_PT + 1, pad=4)

    cax = fig.add_axes(((left + map_w + 0.12) / width_in, (legend_h + margin) / fig_h,
                        0.13 / width_in, map_h / fig_h))
    finite = h[np.isfinite(h)]
    over = finite.size > 0 and float(np.abs(finite).max()) > limit
    cbar = fig.colorbar(im, cax=cax, extend="both" if over else "neither")
    ticks = [-limit, -limit / 2, 0.0, limit / 2, limit]
    if lod and lod < limit / 2:
        ticks = [-limit, -lod, lod, limit] if lod > limit / 4 else [-limit, -limit / 2, -lod,
                                                                     lod, limit / 2, limit]
    cbar.set_ticks(ticks)
    cbar.ax.tick_params(labelsize=FONT_PT)
    cbar.set_label(f"{quantity} ({units})\n+ towards viewer, \u2212 away", fontsize=FONT_PT)

    font = FONT_PT + 1
    for region in regions:
        x, y = (v * region_scale for v in region.centroid)
        color = BULGE_COLOR if region.polarity == "bulge" else RECESSION_COLOR
        _number(ax, x, y - (region.bbox[3] - region.bbox[1]) * region_scale * 0.5
                - 0.02 * rows, str(region.id), color, font)
    for a in appearance:
        x0, y0, x1, y1 = (v * region_scale for v in a.bbox)
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=APPEARANCE_COLOR,
                               linewidth=1.2, linestyle=(0, (3, 2))))
        _number(ax, (x0 + x1) / 2, y0 - 0.02 * rows, f"A{a.id}", APPEARANCE_COLOR, font)

    notes: list[str] = []
    if lod:
        notes.append(f"light grey: |change| < {lod:.2g} {units} (not significant)")
    if finite.size < h.size:
        notes.append("dark grey: no data")
    if appearance:
        notes.append(f"dashed A1\u2026: colour change, not relief ({len(appearance)})")
    if notes:
        fig.text(left / width_in, margin / fig_h, "   ".join(notes), fontsize=FONT_PT,
                 color="#303030", va="bottom")
    if px_per_mm is not None:
        _scale_bar(ax, px_per_mm, cols, rows, map_h * dpi, FONT_PT)
    _print_text(fig)
    return _save(fig, out, dpi=dpi)


def normals_rgb(normals: np.ndarray) -> np.ndarray:
    """Unit normals (x right, y down, z out) as the usual normal-map picture (y up, 128 = 0).

    Examples
    --------
    >>> import numpy as np
    >>> n = np.zeros((2, 2, 3), np.float32); n[..., 2] = 1
    >>> normals_rgb(n)[0, 0].tolist()
    [128, 128, 255]
    """
    n = np.asarray(normals, np.float32)
    if n.ndim != 3 or n.shape[2] != 3:
        raise MonitorError(f"normals_rgb: need H x W x 3 normals, got shape {n.shape}")
    n = n * np.array([1.0, -1.0, 1.0], np.float32)  # y up, as normal maps are drawn
    return np.round((np.clip(np.nan_to_num(n), -1, 1) + 1.0) * 127.5).astype(np.uint8)


def overlay_png(
    baseline_rgb: np.ndarray,
    regions: Sequence[Region],
    path: Path,
    *,
    scale: float | None = None,
    max_px: int = 1600,
    appearance: Sequence[AppearanceRegion] = (),
    px_per_mm: float | None = None,
    width_in: float | None = None,
    max_height_in: float = 5.2,
    dpi: int = 150,
) -> Path:
    """Draw the regions of change, outlined and numbered, over the baseline image.

    Each region's bounding box is outlined (red: bulge, blue: recession;
    dashed brown: appearance finding, numbered ``A1``...) with a white halo,
    and labelled with its id in bold with a white halo. A strip below the
    image holds the legend (or "no significant change").

    Parameters
    ----------
    baseline_rgb
        H x W x 3 uint8 or uint16 baseline (sRGB-encoded), full resolution or
        already reduced (see ``scale``).
    regions
        Regions in full-resolution baseline pixels (corner origin; ``bbox`` =
        ``(x0, y0, x1, y1)``).
    path
        Output image (``.png``, or ``.jpg`` for a compact photographic figure);
        its folder must exist.
    scale
        Pixels of ``baseline_rgb`` per full-resolution baseline pixel (e.g.
        ``ChangeMap.scale`` for a preview at analysis resolution); ``None``
        means 1 (``baseline_rgb`` is the full-resolution image).
    max_px
        Long side of the figure; larger images are area-averaged down.
    appearance
        Appearance findings (colour change, not relief), full-resolution px.
    px_per_mm
        Full-resolution baseline pixels per millimetre: adds a scale bar.
    width_in, max_height_in, dpi
        Lay the figure out for print, ``width_in`` inches wide (text >= 7 pt
        at that size); None keeps a pixel layout (small images magnified).

    Returns
    -------
    Path
        ``path``.
    """
    if baseline_rgb is None:
        raise MonitorError("overlay_png: no baseline image given")
    rgb = np.asarray(baseline_rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 1:
        raise MonitorError(f"overlay_png: need an H x W x 3 image, got shape {rgb.shape}")
    if rgb.dtype not in (np.uint8, np.uint16):
        raise MonitorError(f"overlay_png: need uint8 or uint16 pixels, got {rgb.dtype}")
    s_in = 1.0 if scale is None else float(scale)
    if not (math.isfinite(s_in) and s_in > 0):
        raise MonitorError(f"overlay_png: scale must be positive, got {scale}")
    if max_px < 16:
        raise MonitorError(f"overlay_png: max_px must be >= 16, got {max_px}")
    if px_per_mm is not None and not (math.isfinite(px_per_mm) and px_per_mm > 0):
        raise MonitorError(f"overlay_png: px_per_mm must be positive, got {px_per_mm}")
    out = _check_out(path)

    rows, cols = rgb.shape[:2]
    full_w, full_h = cols / s_in, rows / s_in  # extent in full-resolution baseline px
    if width_in is None:
        d = analysis_scale((rows, cols), max_px)
        shown = _to_uint8_rgb(downsample(rgb, d), "overlay_png")
        mag = _magnification(shown.shape[:2], max_px)
        img_w, img_h = round(shown.shape[1] * mag), round(shown.shape[0] * mag)
        strip = 26  # legend strip below the image, so the legend never hides a region
        fig_h_px = img_h + strip
        fig = Figure(figsize=(img_w / DPI, fig_h_px / DPI), dpi=DPI, facecolor="white")
        ax = fig.add_axes((0, strip / fig_h_px, 1, img_h / fig_h_px))
        font_pt = 12.0 if max(img_w, img_h) < 1000 else 14.0
        legend_pt = 9.0
        px_per_full = img_w / full_w  # figure pixels per full-resolution pixel
        legend_y = (strip / 2) / fig_h_px
        save_dpi = DPI
    else:
        strip_in = 0.26
        map_w = width_in
        map_h = map_w * rows / cols
        if map_h > max_height_in:
            map_h = max_height_in
            map_w = map_h * cols / rows
        fig_h = map_h + strip_in
        fig = Figure(figsize=(width_in, fig_h), dpi=dpi, facecolor="white")
        ax = fig.add_axes(((width_in - map_w) / 2 / width_in, strip_in / fig_h,
                           map_w / width_in, map_h / fig_h))
        d = analysis_scale((rows, cols), max(16, min(max_px, round(max(map_w, map_h) * dpi))))
        shown = _to_uint8_rgb(downsample(rgb, d), "overlay_png")
        font_pt, legend_pt = FONT_PT + 1.5, FONT_PT
        px_per_full = map_w * dpi / full_w
        legend_y = (strip_in / 2) / fig_h
        save_dpi = dpi
    ax.imshow(shown, interpolation="antialiased", extent=(0, full_w, full_h, 0))
    ax.set_xlim(0, full_w)
    ax.set_ylim(full_h, 0)
    ax.set_axis_off()

    halo = [pe.withStroke(linewidth=4.0, foreground="white")]
    label_h = font_pt * save_dpi / 72 / px_per_full  # label height in full-res px
    boxes = [
        (str(r.id), BULGE_COLOR if r.polarity == "bulge" else RECESSION_COLOR, r.bbox, "-")
        for r in regions
    ] + [(f"A{a.id}", APPEARANCE_COLOR, a.bbox, "--") for a in appearance]
    for text, color, bbox, style in boxes:
        x0, y0, x1, y1 = (float(v) for v in bbox)
        rect = Rectangle(
            (x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=color, linewidth=2.0,
            linestyle=style, path_effects=halo + [pe.Normal()],
        )
        ax.add_patch(rect)
        gap = 0.3 * label_h
        label_w = 0.65 * label_h * len(text)
        if y0 - gap > label_h:  # above the box
            ty, va, tx = y0 - gap, "bottom", x0
        elif y1 + gap + label_h < full_h:  # below the box
            ty, va, tx = y1 + gap, "top", x0
        else:  # inside, clear of the outline
            ty, va, tx = y0 + gap, "top", x0 + gap
        ax.text(
            min(max(tx, 0.0), full_w - label_w),
            ty,
            text,
            color=color,
            fontsize=font_pt,
            fontweight="bold",
            va=va,
            ha="left",
            path_effects=[pe.withStroke(linewidth=3.0, foreground="white")],
        )
    if regions or appearance:
        kinds = {r.polarity for r in regions}
        handles = [
            Patch(facecolor="none", edgecolor=c, linewidth=2, label=label)
            for kind, c, label in (
                ("bulge", BULGE_COLOR, "bulge (towards viewer)"),
                ("recession", RECESSION_COLOR, "recession (away)"),
            )
            if kind in kinds
        ]
        if appearance:
            handles.append(Patch(facecolor="none", edgecolor=APPEARANCE_COLOR, linewidth=2,
                                 linestyle="--", label="colour change (not relief)"))
        fig.legend(
            handles=handles, loc="center", bbox_to_anchor=(0.5, legend_y), ncol=len(handles),
            fontsize=legend_pt, frameon=False, handlelength=1.6, borderaxespad=0.0,
        )
    else:
        fig.text(0.5, legend_y, "no significant change", fontsize=legend_pt, ha="center",
                 va="center")
    if px_per_mm is not None:
        _scale_bar(ax, px_per_mm, full_w, full_h, shown.shape[0], legend_pt)
    return _save(fig, out, dpi=save_dpi)


def closeup_png(
    before: np.ndarray,
    after: np.ndarray,
    change: np.ndarray,
    path: Path,
    *,
    limit: float,
    lod: float | None,
    units: str,
    label: str,
    px_per_mm: float | None = None,
    box: tuple[float, float, float, float] | None = None,
    width_in: float = 5.6,
    dpi: int = 150,
) -> Path:
    """Before / after / change close-up of one region, side by side, for print.

    Parameters
    ----------
    before, after
        H x W x 3 uint8 crops of the baseline and of the current scan brought
        onto the baseline grid (same shape).
    change
        h x w change crop covering the same area (any resolution), in ``units``.
    path
        Output image (``.jpg`` or ``.png``); its folder must exist.
    limit, lod
        The artwork's colour limit and level of detection (as the heatmap).
    units
        Unit of ``change``.
    label
        Caption over the strip, e.g. ``"1  bulge"``.
    px_per_mm
        Pixels of ``before`` per millimetre: adds a scale bar to the first panel.
    box
        The region's box within the crop (x0, y0, x1, y1 in pixels of
        ``before``), outlined on every panel.
    width_in, dpi
        Print width of the strip and its resolution.

    Returns
    -------
    Path
        ``path``.
    """
    b, a = _to_uint8_rgb(before, "closeup_png"), _to_uint8_rgb(after, "closeup_png")
    if b.shape != a.shape:
        raise MonitorError(f"closeup_png: before {b.shape} and after {a.shape} differ")
    c = np.asarray(change, dtype=np.float32)
    if c.ndim != 2 or min(c.shape) < 1:
        raise MonitorError(f"closeup_png: change crop must be 2-D, got {c.shape}")
    if not (math.isfinite(limit) and limit > 0):
        raise MonitorError(f"closeup_png: limit must be positive, got {limit}")
    out = _check_out(path)
    rows, cols = b.shape[:2]
    gap, top = 0.08, 0.36
    panel_w = (width_in - 2 * gap) / 3
    panel_h = min(panel_w * rows / cols, 2.2)
    panel_w_used = panel_h * cols / rows if panel_w * rows / cols > 2.2 else panel_w
    fig_h = panel_h + top + 0.04
    fig = Figure(figsize=(width_in, fig_h), dpi=dpi, facecolor="white")
    titles = ("before (baseline)", "after (current)", f"change ({units})")
    for i, (img, title) in enumerate(zip((b, a, c), titles, strict=True)):
        x = i * (panel_w + gap) + (panel_w - panel_w_used) / 2
        ax = fig.add_axes((x / width_in, 0.04 / fig_h, panel_w_used / width_in, panel_h / fig_h))
        if img.ndim == 2:
            ax.imshow(img, cmap=change_colormap(limit, lod), norm=Normalize(-limit, limit),
                      interpolation="nearest", extent=(0, cols, rows, 0))
        else:
            ax.imshow(img, interpolation="antialiased", extent=(0, cols, rows, 0))
        ax.set_xlim(0, cols)
        ax.set_ylim(rows, 0)
        ax.set_axis_off()
        ax.set_title(title, fontsize=FONT_PT, pad=2)
        if box is not None:
            x0, y0, x1, y1 = box
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor="white",
                                   linewidth=0.8, linestyle=(0, (2, 2))))
        if i == 0 and px_per_mm is not None:
            _scale_bar(ax, px_per_mm, cols, rows, panel_h * dpi, FONT_PT)
    fig.text(0.0, 1.0 - 0.02 / fig_h, label, fontsize=FONT_PT + 1, fontweight="bold", va="top")
    _print_text(fig)
    return _save(fig, out, dpi=dpi)


def locator_png(
    outline: Outline,
    regions: Sequence[Region],
    path: Path,
    *,
    appearance: Sequence[AppearanceRegion] = (),
    size_in: float = 1.9,
    dpi: int = 150,
) -> Path:
    """Small locator diagram: the work's outline with each finding's place, numbered.

    Parameters
    ----------
    outline
        The work's edges in baseline pixels.
    regions, appearance
        Relief regions (dots) and appearance findings (squares), baseline px.
    path
        Output PNG; its folder must exist.
    size_in, dpi
        Long side of the diagram (inches) and resolution.

    Returns
    -------
    Path
        ``path``.
    """
    x0, y0, x1, y1 = outline.bbox
    w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    out = _check_out(path)
    fw, fh = (size_in, size_in * h / w) if w >= h else (size_in * w / h, size_in)
    fig = Figure(figsize=(fw + 0.1, fh + 0.1), dpi=dpi, facecolor="white")
    ax = fig.add_axes((0.05 / (fw + 0.1), 0.05 / (fh + 0.1), fw / (fw + 0.1), fh / (fh + 0.1)))
    ax.add_patch(Rectangle((0, 0), w, h, fill=False, edgecolor="#333333", linewidth=1.0))
    for r in regions:
        cx, cy = r.centroid[0] - x0, r.centroid[1] - y0
        color = BULGE_COLOR if r.polarity == "bulge" else RECESSION_COLOR
        ax.plot([cx], [cy], marker="o", ms=3, color=color)
        ax.text(cx + 0.025 * w, cy, str(r.id), fontsize=FONT_PT, color=color, va="center",
                fontweight="bold")
    for a in appearance:
        cx, cy = a.centroid[0] - x0, a.centroid[1] - y0
        ax.plot([cx], [cy], marker="s", ms=3, color=APPEARANCE_COLOR)
        ax.text(cx + 0.025 * w, cy, f"A{a.id}", fontsize=FONT_PT, color=APPEARANCE_COLOR,
                va="center", fontweight="bold")
    ax.set_xlim(-0.01 * w, 1.01 * w)
    ax.set_ylim(1.01 * h, -0.01 * h)
    ax.set_aspect("equal")
    ax.set_axis_off()
    _print_text(fig)
    return _save(fig, out, dpi=dpi)


def thumbnail_png(rgb: np.ndarray, path: Path, max_px: int = 800) -> Path:
    """Write a small 8-bit copy of an image (long side at most ``max_px``).

    Parameters
    ----------
    rgb
        H x W x 3 (or H x W grey) uint8 or uint16, sRGB-encoded.
    path
        Output PNG; its folder must exist.
    max_px
        Long side of the thumbnail; smaller images are not enlarged.

    Returns
    -------
    Path
        ``path``.
    """
    if max_px < 1:
        raise MonitorError(f"thumbnail_png: max_px must be >= 1, got {max_px}")
    arr = np.asarray(rgb)
    if arr.ndim not in (2, 3):
        raise MonitorError(f"thumbnail_png: need an H x W x 3 image, got shape {arr.shape}")
    if arr.dtype not in (np.uint8, np.uint16):
        raise MonitorError(f"thumbnail_png: need uint8 or uint16 pixels, got {arr.dtype}")
    s = analysis_scale(arr.shape[:2], max_px)
    small = _to_uint8_rgb(downsample(arr, s), "thumbnail_png")
    out = _check_out(path)
    if out.suffix.lower() in (".jpg", ".jpeg"):
        try:
            PILImage.fromarray(small).save(out, format="JPEG", quality=JPEG_QUALITY,
                                           optimize=True)
        except OSError as exc:
            raise MonitorError(f"cannot write {out}: {exc}") from exc
    else:
        write_png(out, small)
    return out
