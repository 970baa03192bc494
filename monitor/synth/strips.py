"""The strip renderer: a pair rendered and written row strip by row strip, in bounded memory.

:func:`render_pair_files` renders the pair :func:`monitor.synth.render_pair`
renders for the same spec and writes it as :func:`monitor.synth.write_pair`
does (PNG), without ever holding a supersampled image whole: the baseline is
rendered in full-width strips of ``strip_rows`` output rows, the current scan
in tiles of ``strip_rows`` x ``tile_cols``, each from the window of the
supersampled scene it needs plus a halo (cubic upsampling of the 1x albedo and
impasto, the height's slopes, the optical blur, the cubic resampling into the
current camera), and each strip is encoded and appended to its PNG at once.
Global random fields (canvas-weave jitter, varnish yellowing) are the same
coarse seeded grids as :func:`monitor.synth.fields._smooth_noise`, upsampled
with OpenCV's cubic weights for any window on demand, normalised with the
whole field's exact mean and standard deviation; deformations, the
discoloration and the vignetting are functions of coordinates; the sensor
noise is drawn from the same generator in the same (row-major) order.

Memory: the 1x scene (albedo and impasto, 16 bytes a pixel, 1.5 GB at 96 MP),
the 1x truth (height change and labels, 5 bytes a pixel) and a few hundred
bytes per supersampled sample of one strip -- instead of ~470 bytes a pixel
for the whole-image render.

Equality: the strip render matches the whole-image render to within one
code value, on a few pixels in a thousand (the smooth fields are evaluated in
float64 instead of OpenCV's float32 resize, which moves the float32 weave
phase by an ulp here and there); the truth files are identical.
``tests/test_synth_strips.py`` checks both, and that a render without halos
does not match.
"""

from __future__ import annotations

import json
import math
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import tifffile

from monitor.errors import MonitorError
from monitor.synth.albedo import _painting_albedo, _procedural_albedo
from monitor.synth.camera import current_to_baseline, pose_homography
from monitor.synth.fields import _centres
from monitor.synth.relief import _blob_alpha, _deformation_patch
from monitor.synth.render import (
    _draw_deformations,
    _draw_discoloration,
    _finish,
    _mask_truth,
    _shading_from_slopes,
)
from monitor.synth.specs import (
    _MAX_SIDE_STRIPS,
    MASK_FRACTION,
    SUPERSAMPLING,
    AppearanceTruth,
    PairSpec,
    SynthPair,
    TruthRegion,
    _Deformation,
    _validate,
)

#: Output rows of one strip (baseline strips span the width; current tiles are
#: ``STRIP_ROWS`` x ``TILE_COLS``).
STRIP_ROWS = 128
#: Output columns of one current tile.
TILE_COLS = 1024
#: Largest side the strip renderer accepts (the supersampled grid must index in int16).
MAX_SIDE = _MAX_SIDE_STRIPS

_CUBIC_A = -0.75  # OpenCV's INTER_CUBIC


def _cubic_weights(n_src: int, n_dst: int, start: int, count: int) -> np.ndarray:
    """Weights of OpenCV's cubic resize from ``n_src`` to ``n_dst`` samples.

    Row ``i`` holds the weights of destination sample ``start + i`` on the source
    samples (OpenCV's coordinate mapping, float32 coefficients, edge samples
    replicated).

    Parameters
    ----------
    n_src, n_dst
        Source and destination lengths.
    start, count
        The destination samples wanted.

    Returns
    -------
    numpy.ndarray
        ``(count, n_src)`` float64.

    Examples
    --------
    >>> w = _cubic_weights(4, 8, 0, 8)
    >>> w.shape, bool(np.allclose(w.sum(axis=1), 1.0))
    ((8, 4), True)
    """
    scale = 1.0 / (n_dst / n_src)
    dx = np.arange(start, start + count, dtype=np.float64)
    fx = ((dx + 0.5) * scale - 0.5).astype(np.float32)
    sx = np.floor(fx)
    t = (fx - sx).astype(np.float32)
    a = np.float32(_CUBIC_A)
    one = np.float32(1.0)
    t1 = t + one
    c0 = ((a * t1 - 5 * a) * t1 + 8 * a) * t1 - 4 * a
    c1 = ((a + 2) * t - (a + 3)) * t * t + one
    u = one - t
    c2 = ((a + 2) * u - (a + 3)) * u * u + one
    c3 = one - c0 - c1 - c2
    out = np.zeros((count, n_src), np.float64)
    rows = np.arange(count)
    base = sx.astype(np.int64) - 1
    for k, c in enumerate((c0, c1, c2, c3)):
        np.add.at(out, (rows, np.clip(base + k, 0, n_src - 1)), c.astype(np.float64))
    return out


class _SmoothField:
    """:func:`monitor.synth.fields._smooth_noise` evaluated on any window, on demand.

    Draws the same coarse grid from ``rng``; the whole field is never built.
    """

    def __init__(self, rng: np.random.Generator, shape: tuple[int, int], cells: float) -> None:
        h, w = shape
        long_side = max(h, w)
        gh = max(2, round(cells * h / long_side)) + 3
        gw = max(2, round(cells * w / long_side)) + 3
        self.coarse = rng.standard_normal((gh, gw)).astype(np.float32).astype(np.float64)
        # _smooth_noise resizes to (w + 2 (w // gw), h + 2 (h // gh)) and crops the interior
        self.wy = _cubic_weights(gh, h + 2 * (h // gh), h // gh, h)
        self.wx = _cubic_weights(gw, w + 2 * (w // gw), w // gw, w)
        n = float(h) * float(w)
        c = self.coarse
        self.mean = float(self.wy.sum(axis=0) @ c @ self.wx.sum(axis=0)) / n
        sumsq = float(np.trace((self.wy.T @ self.wy) @ c @ (self.wx.T @ self.wx) @ c.T))
        self.std = math.sqrt(max(sumsq / n - self.mean**2, 0.0))

    def window(self, rows: slice, cols: slice) -> np.ndarray:
        """The normalised field on ``[rows, cols]`` (float32)."""
        f = (self.wy[rows] @ self.coarse) @ self.wx[cols].T - self.mean
        if self.std > 0:
            f /= self.std
        return f.astype(np.float32)


class _Weave:
    """:func:`monitor.synth.albedo._weave` (same draws) evaluated on any window."""

    def __init__(
        self, rng: np.random.Generator, w: int, h: int, ss: int, amplitude: float, period: float
    ) -> None:
        hs, ws = h * ss, w * ss
        self.angle = math.radians(rng.uniform(-3.0, 3.0))
        self.ratio = rng.uniform(0.9, 1.1)
        self.jit_u = _SmoothField(rng, (hs, ws), 6.0)
        self.jit_v = _SmoothField(rng, (hs, ws), 6.0)
        self.amplitude = amplitude
        self.period = period

    def window(self, rows: slice, cols: slice, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """Weave relief at the samples ``ys[:, None], xs[None, :]`` of ``[rows, cols]``."""
        if self.amplitude <= 0:
            return np.zeros((ys.size, xs.size), np.float32)
        jit_u = 0.35 * self.jit_u.window(rows, cols)
        jit_v = 0.35 * self.jit_v.window(rows, cols)
        x = xs[None, :]
        y = ys[:, None]
        c, s = math.cos(self.angle), math.sin(self.angle)
        u = (2 * np.pi / self.period) * (x * c + y * s) + jit_u
        v = (2 * np.pi / (self.period * self.ratio)) * (-x * s + y * c) + jit_v
        wv = 0.6 * np.sin(u) * np.sin(v) + 0.2 * (np.cos(2 * u) + np.cos(2 * v))
        return (self.amplitude * wv).astype(np.float32)


def _box(cx: float, cy: float, bound: float, scale: int, w: int, h: int) -> tuple[slice, slice]:
    """Rows and columns of a grid ``scale`` x finer than the baseline around a disc."""
    b = bound + 1.0
    cols = slice(max(int((cx - b) * scale), 0), min(int((cx + b) * scale) + 1, w * scale))
    rows = slice(max(int((cy - b) * scale), 0), min(int((cy + b) * scale) + 1, h * scale))
    return rows, cols


def _meet(a: slice, b: slice) -> slice | None:
    lo, hi = max(a.start, b.start), min(a.stop, b.stop)
    return slice(lo, hi) if hi > lo else None


def _vignette_window(
    size: tuple[int, int], strength: float, rows: slice, cols: slice
) -> np.ndarray:
    """:func:`monitor.synth.render._vignette` on ``[rows, cols]``."""
    from monitor.synth.camera import _lens_params

    w, h = size
    n_r, n_c = rows.stop - rows.start, cols.stop - cols.start
    if strength <= 0:
        return np.ones((n_r, n_c), np.float32)
    cx, cy, rad = _lens_params((w, h))
    dx = _centres(w)[cols][None, :] - cx
    dy = _centres(h)[rows][:, None] - cy
    return (1.0 - strength * (dx * dx + dy * dy) / (rad * rad)).astype(np.float32)


def _blur_halo(psf: float) -> int:
    """Rows / columns OpenCV's Gaussian of ``psf`` reaches (its kernel radius), plus 2."""
    if psf <= 0:
        return 0
    ksize = int(round(psf * 8 + 1)) | 1
    return ksize // 2 + 2


class _PngWriter:
    """A PNG (RGB, 8 or 16 bit) written row strip by row strip (zlib of the standard library).

    Every row has filter type 1 (Sub) and the stream is deflated at level 1 with
    run-length matching (about the size and speed of ``cv2.imwrite``'s PNG); it is
    split over ``IDAT`` chunks as it is produced, so memory grows with the strip,
    not the image.
    """

    def __init__(self, path: Path, width: int, height: int, bit_depth: int) -> None:
        self.path = path
        self.width, self.height, self.bit_depth = width, height, bit_depth
        self.rows = 0
        self._z = zlib.compressobj(1, zlib.DEFLATED, 15, 8, zlib.Z_RLE)
        self._f = path.open("wb")
        self._f.write(b"\x89PNG\r\n\x1a\n")
        self._chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, 2, 0, 0, 0))

    def _chunk(self, kind: bytes, data: bytes) -> None:
        self._f.write(struct.pack(">I", len(data)) + kind + data)
        self._f.write(struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    def write(self, rows: np.ndarray) -> None:
        """Append ``(n, width, 3)`` rows (uint8 or uint16)."""
        n = rows.shape[0]
        if rows.shape[1:] != (self.width, 3) or self.rows + n > self.height:
            raise MonitorError(f"PNG strip {rows.shape} does not fit {self.path.name}")
        data = rows.astype(">u2" if self.bit_depth == 16 else np.uint8, copy=False)
        flat = np.ascontiguousarray(data).reshape(n, -1).view(np.uint8)
        bpp = 3 * (self.bit_depth // 8)  # bytes per pixel
        raw = np.empty((n, 1 + flat.shape[1]), np.uint8)
        raw[:, 0] = 1  # Sub: each byte minus the byte one pixel to the left (mod 256)
        raw[:, 1 : 1 + bpp] = flat[:, :bpp]
        np.subtract(flat[:, bpp:], flat[:, :-bpp], out=raw[:, 1 + bpp :])
        out = self._z.compress(raw.tobytes())
        if out:
            self._chunk(b"IDAT", out)
        self.rows += n

    def close(self) -> None:
        """Finish the file (all rows must have been written)."""
        if self.rows != self.height:
            raise MonitorError(f"{self.path.name}: {self.rows} of {self.height} rows written")
        self._chunk(b"IDAT", self._z.flush())
        self._chunk(b"IEND", b"")
        self._f.close()

    def abort(self) -> None:
        """Close and remove the partial file."""
        self._f.close()
        self.path.unlink(missing_ok=True)


class _Scene:
    """Everything of a pair that is global, and the renderer of any window of it."""

    def __init__(self, spec: PairSpec) -> None:
        rng = np.random.default_rng(spec.seed)
        ss = self.ss = SUPERSAMPLING
        w, h = self.w, self.h = spec.size
        self.csize = spec.current_size or spec.size
        self.spec = spec
        self.long_side = max(w, h)
        # --- scene: albedo and base relief (the same draws as render_pair)
        if spec.painting is None:
            self.albedo, self.impasto = _procedural_albedo(rng, w, h, spec.impasto)
        else:
            self.albedo, self.impasto = _painting_albedo(
                rng, Path(spec.painting), w, h, spec.impasto
            )
        self.weave = _Weave(rng, w, h, ss, spec.weave_amplitude, spec.weave_period)
        self.hom = pose_homography(
            (w, h), self.csize, rotation_deg=spec.rotation_deg, scale=spec.scale,
            translation=spec.translation, perspective=spec.perspective,
        )
        inv_h = np.linalg.inv(self.hom)
        taken: list[tuple[float, float, float]] = []
        drawn = _draw_discoloration(rng, spec, w, h, inv_h, self.csize, taken)
        self.blob = None if drawn is None else drawn[0]
        self.factors = None if drawn is None else drawn[1]
        self.is_stain = False if drawn is None else drawn[2]
        self.blob_bound = 0.0
        if self.blob is not None:
            _, _, rad, a2, _, a3, _ = self.blob
            self.blob_bound = rad * (1.0 + a2 + a3)
        self.defs: list[_Deformation] = []
        if not spec.no_change:
            self.defs = _draw_deformations(rng, spec, w, h, inv_h, self.csize, taken)
        self.yellow = _SmoothField(rng, (h * ss, w * ss), 3.0)
        self.noise_rng = np.random.default_rng(rng.integers(0, 2**63 - 1))
        self.xs, self.ys = _centres(w, ss), _centres(h, ss)
        self.lz_ref = float(spec.light_baseline.vector()[2])
        self.halo = 1

    # ------------------------------------------------------------------ scene windows

    def _upsampled(self, image: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
        """``cv2.resize(image, ss x, INTER_CUBIC)[rows, cols]`` from a crop with a margin."""
        ss, m = self.ss, 3 * self.halo
        a0, a1 = max(rows.start // ss - m, 0), min((rows.stop - 1) // ss + 1 + m, self.h)
        b0, b1 = max(cols.start // ss - m, 0), min((cols.stop - 1) // ss + 1 + m, self.w)
        crop = np.ascontiguousarray(image[a0:a1, b0:b1])
        up = cv2.resize(crop, ((b1 - b0) * ss, (a1 - a0) * ss), interpolation=cv2.INTER_CUBIC)
        return up[rows.start - a0 * ss : rows.stop - a0 * ss,
                  cols.start - b0 * ss : cols.stop - b0 * ss]

    def _height(self, rows: slice, cols: slice, change: bool) -> np.ndarray:
        height = self._upsampled(self.impasto, rows, cols)
        height = height + self.weave.window(rows, cols, self.xs[cols], self.ys[rows])
        if not change or not self.defs:
            return height
        dh = np.zeros(height.shape, np.float32)
        for d in self.defs:
            r_box, c_box = _box(d.cx, d.cy, d.bound, self.ss, self.w, self.h)
            r, c = _meet(r_box, rows), _meet(c_box, cols)
            if r is None or c is None:
                continue
            dh[r.start - rows.start : r.stop - rows.start,
               c.start - cols.start : c.stop - cols.start] += _deformation_patch(
                d, self.xs[c], self.ys[r])
        return height + dh

    def radiance(self, rows: slice, cols: slice, current: bool) -> np.ndarray:
        """Scene radiance under a scan's lamp on ``[rows, cols]`` of the supersampled grid."""
        ss, spec = self.ss, self.spec
        hs, ws = self.h * ss, self.w * ss
        hl = self.halo
        g_rows = slice(max(rows.start - hl, 0), min(rows.stop + hl, hs))
        g_cols = slice(max(cols.start - hl, 0), min(cols.stop + hl, ws))
        height = self._height(g_rows, g_cols, current)
        gy, gx = np.gradient(height, 1.0 / ss)
        inner = (slice(rows.start - g_rows.start, rows.stop - g_rows.start),
                 slice(cols.start - g_cols.start, cols.stop - g_cols.start))
        light = spec.light_current if current else spec.light_baseline
        shade, specular = _shading_from_slopes(
            gx[inner], gy[inner], height[inner], (self.xs[cols], self.ys[rows]),
            (float(self.w), float(self.h)), light, self.lz_ref, spec, self.long_side,
        )
        del gx, gy, height
        albedo = np.clip(self._upsampled(self.albedo, rows, cols), 0.02, 0.95)
        if current:
            if self.blob is not None:
                assert self.factors is not None
                r_box, c_box = _box(self.blob[0], self.blob[1], self.blob_bound, ss,
                                    self.w, self.h)
                r, c = _meet(r_box, rows), _meet(c_box, cols)
                if r is not None and c is not None:
                    alpha2 = _blob_alpha(self.blob, self.xs[c], self.ys[r])
                    factor2 = 1.0 + alpha2[..., None] * (self.factors.astype(np.float32) - 1.0)
                    albedo[r.start - rows.start : r.stop - rows.start,
                           c.start - cols.start : c.stop - cols.start] *= factor2
            if spec.yellowing > 0:
                field_ = self.yellow.window(rows, cols)
                y = spec.yellowing * (0.5 + 0.5 * np.tanh(field_))
                albedo = albedo * np.stack([np.ones_like(y), 1.0 - 0.4 * y, 1.0 - y], axis=-1)
        return albedo * shade[..., None] + specular[..., None]

    # ------------------------------------------------------------------ the two cameras

    def baseline_strip(self, y0: int, y1: int) -> np.ndarray:
        """Linear baseline pixels of output rows ``[y0, y1)``."""
        ss, spec = self.ss, self.spec
        psf = spec.psf_sigma * ss
        hb = self.halo * _blur_halo(psf)
        rows = slice(max(y0 * ss - hb, 0), min(y1 * ss + hb, self.h * ss))
        rad = self.radiance(rows, slice(0, self.w * ss), False)
        if psf > 0:
            rad = cv2.GaussianBlur(rad, (0, 0), psf)
        rad = rad[y0 * ss - rows.start : y1 * ss - rows.start]
        lin: np.ndarray = cv2.resize(rad, (self.w, y1 - y0), interpolation=cv2.INTER_AREA)
        vig = _vignette_window(spec.size, spec.vignetting[0], slice(y0, y1), slice(0, self.w))
        lin *= (spec.base_exposure * vig)[..., None]
        return lin

    def current_tile(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Linear current pixels of output rows ``[y0, y1)``, columns ``[x0, x1)``."""
        ss, spec = self.ss, self.spec
        cw, ch = self.csize
        psf = spec.psf_sigma * ss
        hb = self.halo * _blur_halo(psf)
        rows = slice(max(y0 * ss - hb, 0), min(y1 * ss + hb, ch * ss))
        cols = slice(max(x0 * ss - hb, 0), min(x1 * ss + hb, cw * ss))
        grid = np.stack(np.meshgrid(_centres(cw, ss)[cols], _centres(ch, ss)[rows]), axis=-1)
        p = current_to_baseline(grid, self.hom, spec.lens_k1, self.csize)
        del grid
        mx = (p[..., 0] * ss - 0.5).astype(np.float32)
        my = (p[..., 1] * ss - 0.5).astype(np.float32)
        del p
        hs, ws = self.h * ss, self.w * ss
        finite = np.isfinite(mx) & np.isfinite(my)
        src_r, src_c = slice(0, 1), slice(0, 1)  # no tap inside: any pixel (all wall)
        if finite.any():
            m = 2 * self.halo
            lo_x, hi_x = math.floor(mx[finite].min()) - m, math.floor(mx[finite].max()) + 1 + m
            lo_y, hi_y = math.floor(my[finite].min()) - m, math.floor(my[finite].max()) + 1 + m
            c0, c1 = max(lo_x, 0), min(hi_x + 1, ws)
            r0, r1 = max(lo_y, 0), min(hi_y + 1, hs)
            if c1 > c0 and r1 > r0:
                src_r, src_c = slice(r0, r1), slice(c0, c1)
        rad = self.radiance(src_r, src_c, True)
        mx -= np.float32(src_c.start)
        my -= np.float32(src_r.start)
        wall = float(spec.wall)
        lin2 = cv2.remap(rad, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=(wall, wall, wall, 0.0))
        del rad, mx, my
        if psf > 0:
            lin2 = cv2.GaussianBlur(lin2, (0, 0), psf)
        lin2 = lin2[y0 * ss - rows.start : y1 * ss - rows.start,
                    x0 * ss - cols.start : x1 * ss - cols.start]
        lin: np.ndarray = cv2.resize(np.maximum(lin2, 0.0), (x1 - x0, y1 - y0),
                                     interpolation=cv2.INTER_AREA)
        gains = spec.base_exposure * spec.exposure * np.asarray(spec.wb, np.float32)
        vig = _vignette_window(self.csize, spec.vignetting[1], slice(y0, y1), slice(x0, x1))
        lin *= vig[..., None] * gains[None, None, :]
        return lin

    # ------------------------------------------------------------------ truth

    def truth(self) -> tuple[np.ndarray, np.ndarray, tuple[TruthRegion, ...],
                             AppearanceTruth | None]:
        """Height change and labels (1x, whole) and the truth records, each in its box."""
        w, h = self.w, self.h
        x1, y1 = _centres(w), _centres(h)
        dh1 = np.zeros((h, w), np.float32)
        labels = np.zeros((h, w), np.uint8)
        regions = []
        for i, d in enumerate(self.defs, start=1):
            rows, cols = _box(d.cx, d.cy, d.bound, 1, w, h)
            single = _deformation_patch(d, x1[cols], y1[rows])
            dh1[rows, cols] += single
            mask = np.abs(single) >= MASK_FRACTION * abs(d.peak)
            centroid, bbox, area = _mask_truth_at(mask, rows, cols)
            labels[rows, cols][mask] = min(i, 254)
            regions.append(TruthRegion(
                id=i, kind=d.kind, polarity="recession" if d.peak < 0 else "bulge",
                centroid=centroid, bbox=bbox, peak=float(d.peak), max_slope=d.slope,
                size_px=d.radius, area_px=area, mask=mask,  # the mask of the box only
            ))
        discol = None
        if self.blob is not None:
            assert self.factors is not None
            rows, cols = _box(self.blob[0], self.blob[1], self.blob_bound, 1, w, h)
            mask = _blob_alpha(self.blob, x1[cols], y1[rows]) >= 0.5
            centroid, bbox, area = _mask_truth_at(mask, rows, cols)
            labels[rows, cols][mask] = 255
            f = self.factors
            discol = AppearanceTruth(
                kind="stain" if self.is_stain else "bloom",
                factors=(float(f[0]), float(f[1]), float(f[2])),
                centroid=centroid, bbox=bbox, area_px=area, mask=mask,
            )
        return dh1, labels, tuple(regions), discol


def _mask_truth_at(
    mask: np.ndarray, rows: slice, cols: slice
) -> tuple[tuple[float, float], tuple[float, float, float, float], int]:
    """``_mask_truth`` of a box's mask in whole-image coordinates (the same floats)."""
    r, c = np.nonzero(mask)
    if r.size == 0:
        return _mask_truth(mask)
    r = r + rows.start
    c = c + cols.start
    centroid = (float(c.mean() + 0.5), float(r.mean() + 0.5))
    bbox = (float(c.min()), float(r.min()), float(c.max() + 1), float(r.max() + 1))
    return centroid, bbox, int(r.size)


def render_pair_files(
    spec: PairSpec,
    out_dir: Path,
    *,
    strip_rows: int = STRIP_ROWS,
    tile_cols: int = TILE_COLS,
    progress: Callable[[str, float], None] | None = None,
    _halo: bool = True,
) -> dict[str, Path]:
    """Render a pair strip by strip and write it as :func:`monitor.synth.write_pair` (PNG).

    Parameters
    ----------
    spec
        The pair (sides up to :data:`MAX_SIDE`); JPEG specs are refused.
    out_dir
        Created if missing; ``baseline.png``, ``current.png``, ``truth.json``,
        ``truth_height_change.tif`` and ``truth_labels.png`` as :func:`write_pair`
        writes them. The PNGs are written under a temporary name and renamed
        when complete, so an interrupted render leaves no image behind.
    strip_rows, tile_cols
        Output rows of a strip and columns of a current tile (memory grows
        with ``strip_rows`` x width).
    progress
        Called with ``("baseline" or "current", fraction done)`` after each strip.
    _halo
        Tests only: False renders every window without its halo (seams).

    Returns
    -------
    dict of str to Path
        As :func:`write_pair`.

    Raises
    ------
    MonitorError
        Invalid spec, a JPEG spec, or a file that cannot be written.
    """
    _validate(spec, max_side=MAX_SIDE)
    if spec.jpeg_quality is not None:
        raise MonitorError("the strip renderer writes PNG; render a JPEG spec with render_pair")
    if strip_rows < 1 or tile_cols < 1:
        raise MonitorError(f"strip_rows and tile_cols must be >= 1, got {strip_rows}, {tile_cols}")
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MonitorError(f"cannot create {out_dir}: {exc}") from exc
    scene = _Scene(spec)
    scene.halo = 1 if _halo else 0
    w, h = spec.size
    cw, ch = scene.csize
    paths = {
        "baseline": out_dir / "baseline.png",
        "current": out_dir / "current.png",
        "truth": out_dir / "truth.json",
        "height_change": out_dir / "truth_height_change.tif",
        "labels": out_dir / "truth_labels.png",
    }
    parts = {k: paths[k].with_name(paths[k].name + ".part") for k in ("baseline", "current")}
    writer: _PngWriter | None = None
    try:
        writer = _PngWriter(parts["baseline"], w, h, spec.bit_depth)
        for y0 in range(0, h, strip_rows):
            y1 = min(y0 + strip_rows, h)
            q, _ = _finish(scene.baseline_strip(y0, y1), scene.noise_rng, spec)
            writer.write(q)
            if progress is not None:
                progress("baseline", y1 / h)
        writer.close()
        writer = _PngWriter(parts["current"], cw, ch, spec.bit_depth)
        for y0 in range(0, ch, strip_rows):
            y1 = min(y0 + strip_rows, ch)
            strip = np.concatenate(
                [scene.current_tile(y0, y1, x0, min(x0 + tile_cols, cw))
                 for x0 in range(0, cw, tile_cols)], axis=1)
            q, _ = _finish(strip, scene.noise_rng, spec)
            del strip
            writer.write(q)
            if progress is not None:
                progress("current", y1 / ch)
        writer.close()
        writer = None
    except OSError as exc:
        if writer is not None:
            writer.abort()
        for p in parts.values():
            p.unlink(missing_ok=True)
        raise MonitorError(f"cannot write the pair to {out_dir}: {exc}") from exc
    except BaseException:
        if writer is not None:
            writer.abort()
        for p in parts.values():
            p.unlink(missing_ok=True)
        raise
    dh1, labels, regions, discol = scene.truth()
    # truth.json through SynthPair.truth_dict, with zero-copy stand-ins for the images
    dtype = np.uint8 if spec.bit_depth == 8 else np.uint16
    pair = SynthPair(
        baseline=np.broadcast_to(np.zeros(1, dtype), (h, w, 3)),
        current=np.broadcast_to(np.zeros(1, dtype), (ch, cw, 3)),
        homography=scene.hom, lens_k1=float(spec.lens_k1), height_change=dh1,
        regions=regions, discoloration=discol, spec=spec,
    )
    try:
        paths["truth"].write_text(json.dumps(pair.truth_dict(), indent=2) + "\n",
                                  encoding="utf-8")
        tifffile.imwrite(paths["height_change"], dh1, compression="zlib")
        if not cv2.imwrite(str(paths["labels"]), labels):
            raise MonitorError(f"cannot write {paths['labels']}")
        for k, part in parts.items():
            os.replace(part, paths[k])
    except OSError as exc:
        raise MonitorError(f"cannot write the pair to {out_dir}: {exc}") from exc
    return paths
