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
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

from monitor.errors import MonitorError
from monitor.io import analysis_scale, downsample, write_png
from monitor.results import Region

__all__ = ["BULGE_COLOR", "NAN_COLOR", "RECESSION_COLOR", "heatmap_png", "overlay_png",
           "thumbnail_png"]

DPI = 100
#: Outline colour of a bulge (towards the viewer) and of a recession.
BULGE_COLOR = "#e8141c"
RECESSION_COLOR = "#1746ff"
#: Where the change map has no value (no overlap, masked).
NAN_COLOR = "#808080"
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


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)  # attach an Agg canvas; no pyplot, no global backend
    try:
        fig.savefig(path, dpi=DPI, format="png")
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


def heatmap_png(
    height: np.ndarray,
    path: Path,
    *,
    units: str = "px",
    title: str | None = None,
    vmax: float | None = None,
    px_per_mm: float | None = None,
    max_px: int = 1600,
    quantity: str = "height change",
) -> Path:
    """Render a signed height-change map as a diverging heatmap PNG.

    Red = towards the viewer (bulge), blue = away (recession), white = no
    change, grey = no data (NaN). Limits are symmetric, ``[-vmax, vmax]``;
    values beyond show in the saturated colour (the colour bar has arrow
    ends).

    Parameters
    ----------
    height
        H x W float map (NaN where there is no data).
    path
        Output PNG; its folder must exist.
    units
        Unit of the values, shown on the colour bar ("px", "mm", "rel.").
    title
        Drawn above the map when given.
    vmax
        Colour limit; default the 99.5th percentile of ``|height|``.
    px_per_mm
        Pixels of ``height`` per millimetre; adds a scale bar when given.
    max_px
        Long side of the map in the figure; larger maps are area-averaged
        (NaN-aware).
    quantity
        What the values are, on the colour bar: ``"height change"`` (a
        comparison) or ``"height"`` (one scan's topography).

    Returns
    -------
    Path
        ``path``.
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
    if px_per_mm is not None and not (math.isfinite(px_per_mm) and px_per_mm > 0):
        raise MonitorError(f"heatmap_png: px_per_mm must be positive, got {px_per_mm}")
    out = _check_out(path)
    h = h.astype(np.float32, copy=False)
    rows, cols = h.shape
    limit = vmax if vmax is not None else _robust_vmax(h)

    s = analysis_scale((rows, cols), max_px)
    shown = _nan_area_downsample(h, s) if s < 1 else h
    mag = _magnification(shown.shape, max_px)
    img_w = round(shown.shape[1] * mag)
    img_h = round(shown.shape[0] * mag)

    left, right, bottom = 14, 150, 14
    top = 40 if title else 14
    fig_w, fig_h = img_w + left + right, img_h + top + bottom
    fig = Figure(figsize=(fig_w / DPI, fig_h / DPI), dpi=DPI, facecolor="white")
    ax = fig.add_axes((left / fig_w, bottom / fig_h, img_w / fig_w, img_h / fig_h))
    cmap = colormaps["RdBu_r"].with_extremes(bad=NAN_COLOR)
    im = ax.imshow(
        shown,
        cmap=cmap,
        norm=Normalize(-limit, limit),
        interpolation="nearest",
        extent=(0, cols, rows, 0),  # array pixel coordinates, corner origin
    )
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=12, pad=8)

    cax = fig.add_axes(
        ((left + img_w + 14) / fig_w, bottom / fig_h, 16 / fig_w, img_h / fig_h)
    )
    finite = h[np.isfinite(h)]
    over = finite.size > 0 and float(np.abs(finite).max()) > limit
    cbar = fig.colorbar(im, cax=cax, extend="both" if over else "neither")
    cbar.ax.tick_params(labelsize=9)
    cbar.set_label(f"{quantity} ({units})\n+ = towards viewer", fontsize=10)
    if finite.size < h.size:
        fig.text(
            (left + img_w + 10) / fig_w,
            2 / fig_h,
            "grey = no data",
            fontsize=8,
            color="#404040",
            va="bottom",
        )

    if px_per_mm is not None:
        width_mm = cols / px_per_mm
        length_mm = _nice_length(0.2 * width_mm)
        bar = AnchoredSizeBar(
            ax.transData,
            length_mm * px_per_mm,
            f"{length_mm:g} mm",
            loc="lower left",
            pad=0.4,
            borderpad=0.6,
            sep=4,
            color="black",
            frameon=True,
            size_vertical=max(1.0, rows / img_h * 3),
            fontproperties={"size": 9},
        )
        bar.patch.set_facecolor("white")
        bar.patch.set_alpha(0.8)
        bar.patch.set_edgecolor("none")
        ax.add_artist(bar)
    return _save(fig, out)


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
) -> Path:
    """Draw the regions of change, outlined and numbered, over the baseline image.

    Each region's bounding box is outlined (red: bulge, blue: recession) with
    a white halo, and labelled with its id in bold with a white halo. A
    strip of 26 px below the image holds the legend (or "no significant
    change").

    Parameters
    ----------
    baseline_rgb
        H x W x 3 uint8 or uint16 baseline (sRGB-encoded), full resolution or
        already reduced (see ``scale``).
    regions
        Regions in full-resolution baseline pixels (corner origin; ``bbox`` =
        ``(x0, y0, x1, y1)``).
    path
        Output PNG; its folder must exist.
    scale
        Pixels of ``baseline_rgb`` per full-resolution baseline pixel (e.g.
        ``ChangeMap.scale`` for a preview at analysis resolution); ``None``
        means 1 (``baseline_rgb`` is the full-resolution image).
    max_px
        Long side of the figure; larger images are area-averaged down.

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
    out = _check_out(path)

    rows, cols = rgb.shape[:2]
    d = analysis_scale((rows, cols), max_px)
    shown = _to_uint8_rgb(downsample(rgb, d), "overlay_png")
    mag = _magnification(shown.shape[:2], max_px)
    img_w, img_h = round(shown.shape[1] * mag), round(shown.shape[0] * mag)
    full_w, full_h = cols / s_in, rows / s_in  # extent in full-resolution baseline px
    px_per_full = img_w / full_w  # figure pixels per full-resolution pixel

    strip = 26  # legend strip below the image, so the legend never hides a region
    fig_h = img_h + strip
    fig = Figure(figsize=(img_w / DPI, fig_h / DPI), dpi=DPI, facecolor="white")
    ax = fig.add_axes((0, strip / fig_h, 1, img_h / fig_h))
    ax.imshow(shown, interpolation="antialiased", extent=(0, full_w, full_h, 0))
    ax.set_xlim(0, full_w)
    ax.set_ylim(full_h, 0)
    ax.set_axis_off()

    halo = [pe.withStroke(linewidth=5.0, foreground="white")]
    font_pt = 12 if max(img_w, img_h) < 1000 else 14
    label_h = font_pt * DPI / 72 / px_per_full  # label height in full-res px
    for region in regions:
        color = BULGE_COLOR if region.polarity == "bulge" else RECESSION_COLOR
        x0, y0, x1, y1 = (float(v) for v in region.bbox)
        rect = Rectangle(
            (x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=color, linewidth=2.5,
            path_effects=halo + [pe.Normal()],
        )
        ax.add_patch(rect)
        gap = 0.3 * label_h
        label_w = 0.65 * label_h * len(str(region.id))
        if y0 - gap > label_h:  # above the box
            ty, va, tx = y0 - gap, "bottom", x0
        elif y1 + gap + label_h < full_h:  # below the box
            ty, va, tx = y1 + gap, "top", x0
        else:  # inside, clear of the outline
            ty, va, tx = y0 + gap, "top", x0 + gap
        ax.text(
            min(max(tx, 0.0), full_w - label_w),
            ty,
            str(region.id),
            color=color,
            fontsize=font_pt,
            fontweight="bold",
            va=va,
            ha="left",
            path_effects=[pe.withStroke(linewidth=3.5, foreground="white")],
        )
    legend_y = (strip / 2) / fig_h
    if regions:
        kinds = {r.polarity for r in regions}
        handles = [
            Patch(facecolor="none", edgecolor=c, linewidth=2, label=label)
            for kind, c, label in (
                ("bulge", BULGE_COLOR, "bulge (towards viewer)"),
                ("recession", RECESSION_COLOR, "recession (away)"),
            )
            if kind in kinds
        ]
        fig.legend(
            handles=handles, loc="center", bbox_to_anchor=(0.5, legend_y), ncol=len(handles),
            fontsize=9, frameon=False, handlelength=1.6, borderaxespad=0.0,
        )
    else:
        fig.text(0.5, legend_y, "no significant change", fontsize=9, ha="center", va="center")
    return _save(fig, out)


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
    write_png(out, small)
    return out
