"""Tiled inference for images of any size: overlapping tiles, feathered blending, harmonisation.

A network sees the image in overlapping square tiles (``tile`` pixels,
``overlap`` shared with each neighbour), batched. Each tile's prediction is
weighted by a feather window (a smooth ramp over the overlap on the sides
that touch another tile, flat on the image border) and the weighted
predictions are summed. The weights of a regular tile grid are separable,
so their sum is two 1-D arrays: the output is the only full-size array.

Relative models (monocular depth networks, the per-scan relief net) give
each tile its own unknown offset and, for depth networks, scale: naive
blending leaves seams and a chessboard of levels. ``harmonise="shift"`` or
``"affine"`` fits one shift (and scale) per tile so that all tiles agree on
their overlaps -- one sparse least-squares problem over the whole grid, not a
chain of pairwise fits, so errors do not drift across a large image. An
optional low-resolution ``anchor`` (the same model run on the whole image
shrunk to one tile) ties the tiles to a common frame as well. Harmonised
runs keep the tiles' predictions until the solve (float32 in memory below
``spill_bytes``, float16 in a temporary file above it).

On CUDA the predictions run under ``torch.autocast`` (bfloat16 where the GPU
supports it, else float16) with channels-last inputs; on CPU they run in
float32 and are deterministic. Everything runs under ``torch.inference_mode``.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from scipy import sparse
from scipy.sparse.linalg import spsolve

from monitor.errors import MonitorError

Harmonise = Literal["none", "shift", "affine"]
Predict = Callable[[torch.Tensor], torch.Tensor]

__all__ = [
    "Tile", "autocast_context", "feather_1d", "full_precision", "prepare_model", "tile_grid",
    "tiled_predict",
]


@dataclass(frozen=True)
class Tile:
    """One tile: rows ``y0:y0+h`` and columns ``x0:x0+w`` of the image, grid cell (i, j).

    Examples
    --------
    >>> t = Tile(0, 1, 0, 48, 64, 64)
    >>> image = np.zeros((64, 112))
    >>> image[t.y0 : t.y0 + t.h, t.x0 : t.x0 + t.w].shape
    (64, 64)
    """

    i: int
    j: int
    y0: int
    x0: int
    h: int
    w: int


def _starts(n: int, tile: int, overlap: int) -> list[int]:
    if n <= tile:
        return [0]
    step = tile - overlap
    count = math.ceil((n - tile) / step) + 1
    # spread the tiles evenly so every overlap is at least ``overlap``
    return [round(k * (n - tile) / (count - 1)) for k in range(count)]


def tile_grid(height: int, width: int, tile: int, overlap: int) -> list[Tile]:
    """The tiles covering a ``height`` x ``width`` image, row by row.

    Parameters
    ----------
    height, width
        Image size in pixels.
    tile
        Tile side (tiles are ``min(tile, height)`` x ``min(tile, width)``).
    overlap
        Minimum overlap of neighbouring tiles, ``0 <= overlap < tile / 2``.

    Returns
    -------
    list of Tile

    Examples
    --------
    >>> tiles = tile_grid(100, 150, 64, 16)
    >>> last = tiles[-1]
    >>> len(tiles), (tiles[0].y0, tiles[0].x0), (last.y0 + last.h, last.x0 + last.w)
    (6, (0, 0), (100, 150))
    """
    if tile < 8 or not 0 <= overlap < tile / 2:
        raise MonitorError(
            f"tiling: need tile >= 8 and 0 <= overlap < tile/2, got {tile}/{overlap}"
        )
    if height < 1 or width < 1:
        raise MonitorError(f"tiling: empty image {height}x{width}")
    th, tw = min(tile, height), min(tile, width)
    ys, xs = _starts(height, tile, overlap), _starts(width, tile, overlap)
    return [Tile(i, j, y, x, th, tw) for i, y in enumerate(ys) for j, x in enumerate(xs)]


def feather_1d(n: int, ramp: int, taper_start: bool, taper_end: bool) -> np.ndarray:
    """Blending weights along one tile side: a smoothstep ramp over ``ramp`` px at tapered ends.

    Parameters
    ----------
    n
        Tile length.
    ramp
        Ramp length in pixels (the overlap).
    taper_start, taper_end
        Whether that end touches another tile (image borders are not tapered).

    Returns
    -------
    numpy.ndarray
        float64 weights in (0, 1].

    Examples
    --------
    >>> w = feather_1d(8, 4, taper_start=True, taper_end=False)
    >>> bool(w[0] < w[3] < 1.0), float(w[-1])
    (True, 1.0)
    """
    w = np.ones(n, np.float64)
    if ramp <= 0:
        return w
    d = np.arange(n, dtype=np.float64)
    t_start = np.clip((d + 0.5) / ramp, 0.0, 1.0)
    t_end = np.clip((n - d - 0.5) / ramp, 0.0, 1.0)
    if taper_start:
        w *= t_start * t_start * (3 - 2 * t_start)
    if taper_end:
        w *= t_end * t_end * (3 - 2 * t_end)
    return np.maximum(w, 1e-4)


def prepare_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Move a model to ``device`` in eval mode; channels-last memory format on CUDA.

    Parameters
    ----------
    model
        Any torch module.
    device
        Where it runs.

    Returns
    -------
    torch.nn.Module
        The same module, moved, in eval mode.

    Examples
    --------
    >>> prepare_model(torch.nn.Dropout(), torch.device("cpu")).training
    False
    """
    model = model.to(device).eval()
    if device.type == "cuda":
        # torch's stubs omit Module.to(memory_format=...), which torch has had since 1.5
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return model


def autocast_context(device: torch.device, enabled: bool = True) -> AbstractContextManager[Any]:
    """``torch.autocast`` (bfloat16 if supported, else float16) on CUDA; nothing elsewhere.

    Parameters
    ----------
    device
        Where the network runs.
    enabled
        False gives no autocast anywhere.

    Returns
    -------
    context manager
        ``torch.autocast`` on CUDA, else a no-op context.

    Examples
    --------
    >>> with autocast_context(torch.device("cpu")):
    ...     torch.is_autocast_enabled("cpu")
    False
    """
    if not enabled or device.type != "cuda":
        return nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def full_precision(device: torch.device | str) -> AbstractContextManager[Any]:
    """Leave any enclosing ``torch.autocast`` for float32 feature computations.

    :func:`tiled_predict` runs ``predict`` under :func:`autocast_context`, so
    that the network body may run in reduced precision on CUDA. The features a
    ``predict`` computes before its network -- log ratios, blurs (convolutions,
    which autocast would run in bfloat16), integration along the light -- are
    physics, not network: compute them inside this context so they stay float32
    and agree with the CPU.

    Parameters
    ----------
    device
        Where the tensors live.

    Returns
    -------
    context manager

    Examples
    --------
    >>> with full_precision(torch.device("cpu")):
    ...     torch.is_autocast_enabled("cpu")
    False
    """
    kind = torch.device(device).type
    if kind in ("cuda", "cpu"):
        return torch.autocast(kind, enabled=False)
    return nullcontext()


def _batches(tiles: list[Tile], size: int) -> Iterator[list[Tile]]:
    for k in range(0, len(tiles), size):
        yield tiles[k : k + size]


def _run_batch(
    image: np.ndarray,
    batch: list[Tile],
    predict: Predict,
    device: torch.device,
    multiple: int,
    amp: bool,
) -> np.ndarray:
    """Predictions of a batch of equal-sized tiles, (B, h, w) float32 on the CPU."""
    th, tw = batch[0].h, batch[0].w
    arr = np.stack([np.asarray(image[t.y0 : t.y0 + th, t.x0 : t.x0 + tw]) for t in batch])
    x = torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2), dtype=np.float32))
    x = x.to(device)
    ph, pw = (-th) % multiple, (-tw) % multiple
    if ph or pw:
        mode = "reflect" if ph < th and pw < tw else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    with autocast_context(device, amp):
        y = predict(x)
    if y.dim() == 4:
        if y.shape[1] != 1:
            raise MonitorError(f"tiling: prediction must have one channel, got {tuple(y.shape)}")
        y = y[:, 0]
    if y.dim() != 3 or y.shape[0] != len(batch):
        raise MonitorError(f"tiling: prediction shape {tuple(y.shape)} for {len(batch)} tiles")
    y = y.float()
    if y.shape[-2:] != x.shape[-2:]:
        y = F.interpolate(y[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return y[:, :th, :tw].cpu().numpy()


def _solve_harmonisation(
    tiles: list[Tile],
    store: np.ndarray,
    small: list[np.ndarray],
    factor: int,
    mode: Harmonise,
    anchor_small: list[np.ndarray] | None,
    anchor_weight: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-tile (scale, shift) making the tiles agree on their overlaps.

    Weighted least squares over every overlap sample (and the anchor), solved
    exactly through its normal equations: each row touches at most two tiles,
    so the system is a sparse 2N x 2N (affine) or N x N (shift) matrix with a
    few blocks per row -- milliseconds even for the ~500 tiles of 100 MP.
    """
    n = len(tiles)
    affine = mode == "affine"
    k = 2 if affine else 1
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    rhs = np.zeros(k * n)

    def add(idx: list[int], design: np.ndarray, target: np.ndarray, weight: float) -> None:
        """Rows ``design @ x[idx] ~= target`` with weight ``weight`` (normal-equation form)."""
        w2 = weight * weight
        block = w2 * (design.T @ design)
        ii, jj = np.meshgrid(idx, idx, indexing="ij")
        rows.append(ii.ravel())
        cols.append(jj.ravel())
        vals.append(block.ravel())
        np.add.at(rhs, idx, w2 * (design.T @ target))

    spread = float(np.median([np.std(s) for s in small])) or 1.0
    for a in range(n):
        ta = tiles[a]
        for b_ in range(a + 1, n):
            tb = tiles[b_]
            if abs(ta.i - tb.i) > 1 or abs(ta.j - tb.j) > 1:
                continue
            y0, y1 = max(ta.y0, tb.y0), min(ta.y0 + ta.h, tb.y0 + tb.h)
            x0, x1 = max(ta.x0, tb.x0), min(ta.x0 + ta.w, tb.x0 + tb.w)
            if y1 - y0 < factor or x1 - x0 < factor:
                continue
            # the same pixels of both tiles, averaged over factor x factor cells
            sa = _coarse(np.asarray(store[a][y0 - ta.y0 : y1 - ta.y0, x0 - ta.x0 : x1 - ta.x0],
                                    np.float32), factor)
            sb = _coarse(np.asarray(store[b_][y0 - tb.y0 : y1 - tb.y0, x0 - tb.x0 : x1 - tb.x0],
                                    np.float32), factor)
            va, vb = sa.ravel().astype(np.float64), sb.ravel().astype(np.float64)
            one = np.ones_like(va)
            if affine:  # s_a va + t_a - s_b vb - t_b = 0
                add([2 * a, 2 * a + 1, 2 * b_, 2 * b_ + 1],
                    np.stack([va, one, -vb, -one], axis=1), np.zeros_like(va), 1.0 / spread)
            else:  # t_a - t_b = vb - va
                add([a, b_], np.stack([one, -one], axis=1), vb - va, 1.0 / spread)
    # gauge: the anchor when there is one, else tile 0's own frame; plus a weak
    # prior (scale 1, shift 0) that only decides tiles the data leave undetermined
    for a in range(n):
        m = small[a].size
        if anchor_small is not None:
            v = small[a].ravel().astype(np.float64)
            ref = anchor_small[a].ravel().astype(np.float64)
            wa = anchor_weight / spread
            if affine:
                add([2 * a, 2 * a + 1], np.stack([v, np.ones_like(v)], axis=1), ref, wa)
            else:
                add([a], np.ones((v.size, 1)), ref - v, wa)
        gauge = (1e3 if (a == 0 and anchor_small is None) else 1e-3) * math.sqrt(m)
        if affine:
            add([2 * a], np.ones((1, 1)), np.ones(1), gauge)
            add([2 * a + 1], np.ones((1, 1)) / spread, np.zeros(1), gauge)
        else:
            add([a], np.ones((1, 1)) / spread, np.zeros(1), gauge)
    normal = sparse.csc_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(k * n, k * n)
    )
    sol = np.atleast_1d(spsolve(normal, rhs))
    if not np.isfinite(sol).all():
        raise MonitorError("tiling: the harmonisation of tiles is singular")
    if affine:
        return sol[0::2], sol[1::2]
    return np.ones(n), sol


def _coarse(pred: np.ndarray, factor: int) -> np.ndarray:
    if factor <= 1:
        return pred.astype(np.float32, copy=False)
    h, w = pred.shape[0] // factor, pred.shape[1] // factor
    return cv2.resize(
        np.ascontiguousarray(pred[: h * factor, : w * factor], dtype=np.float32),
        (w, h), interpolation=cv2.INTER_AREA,
    )


def _anchor_coarse(anchor: np.ndarray, t: Tile, factor: int, shape: tuple[int, int],
                   size: tuple[int, int]) -> np.ndarray:
    """The anchor sampled at the centres of a tile's coarse cells."""
    height, width = size
    ah, aw = anchor.shape
    ys = (t.y0 + (np.arange(shape[0]) + 0.5) * factor) * ah / height - 0.5
    xs = (t.x0 + (np.arange(shape[1]) + 0.5) * factor) * aw / width - 0.5
    mx, my = np.meshgrid(xs.astype(np.float32), ys.astype(np.float32))
    return cv2.remap(anchor.astype(np.float32), mx, my, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def tiled_predict(
    image: np.ndarray,
    predict: Predict,
    *,
    tile: int = 512,
    overlap: int = 64,
    batch_size: int = 4,
    device: torch.device | None = None,
    multiple: int = 1,
    harmonise: Harmonise = "none",
    anchor: np.ndarray | None = None,
    anchor_weight: float = 0.1,
    amp: bool = True,
    spill_bytes: int = 1 << 30,
) -> np.ndarray:
    """Run ``predict`` over an image of any size in overlapping, feathered tiles.

    Parameters
    ----------
    image
        H x W x C array, any numeric dtype (tiles are converted to float32 one
        batch at a time, so a large uint8 image never exists as float).
    predict
        Maps a (B, C, h, w) float32 batch on ``device`` to (B, h', w') or
        (B, 1, h', w') predictions (resized bilinearly to h x w when they differ).
    tile, overlap
        Tile side and minimum overlap in pixels.
    batch_size
        Tiles per call of ``predict``.
    device
        Where the batches go (default CPU).
    multiple
        Tiles are reflect-padded to multiples of this before ``predict`` (and
        the output cropped back).
    harmonise
        ``none`` (absolute models), ``shift`` or ``affine`` (relative models).
    anchor
        Optional low-resolution prediction of the whole image (same model,
        image shrunk): tiles are also fitted to it, so the result keeps the
        global frame.
    anchor_weight
        Weight of the anchor against the overlaps.
    amp
        Autocast on CUDA (ignored elsewhere).
    spill_bytes
        Above this size the kept tile predictions go to a temporary file.

    Returns
    -------
    numpy.ndarray
        H x W float32.

    Examples
    --------
    A per-pixel "network" (the mean over channels) gives the same map tiled as whole:

    >>> image = np.random.default_rng(0).random((40, 50, 3)).astype(np.float32)
    >>> out = tiled_predict(image, lambda x: x.mean(dim=1), tile=16, overlap=4)
    >>> out.shape, bool(np.allclose(out, image.mean(axis=2), atol=1e-5))
    ((40, 50), True)
    """
    if image.ndim != 3:
        raise MonitorError(f"tiling: image must be H x W x C, got shape {image.shape}")
    if harmonise not in ("none", "shift", "affine"):
        raise MonitorError(f"tiling: harmonise must be none, shift or affine, got {harmonise!r}")
    if batch_size < 1 or multiple < 1:
        raise MonitorError("tiling: batch_size and multiple must be >= 1")
    device = device or torch.device("cpu")
    height, width = image.shape[:2]
    tiles = tile_grid(height, width, tile, overlap)
    ramp = overlap
    ni, nj = tiles[-1].i + 1, tiles[-1].j + 1
    wy = [feather_1d(tiles[0].h, ramp, i > 0, i < ni - 1) for i in range(ni)]
    wx = [feather_1d(tiles[0].w, ramp, j > 0, j < nj - 1) for j in range(nj)]
    sum_y = np.zeros(height, np.float64)
    sum_x = np.zeros(width, np.float64)
    for t in tiles:
        if t.j == 0:
            sum_y[t.y0 : t.y0 + t.h] += wy[t.i]
        if t.i == 0:
            sum_x[t.x0 : t.x0 + t.w] += wx[t.j]
    out = np.zeros((height, width), np.float32)

    def blend(t: Tile, pred: np.ndarray, scale: float = 1.0, shift: float = 0.0) -> None:
        wyn = (wy[t.i] / sum_y[t.y0 : t.y0 + t.h]).astype(np.float32)
        wxn = (wx[t.j] / sum_x[t.x0 : t.x0 + t.w]).astype(np.float32)
        val = pred.astype(np.float32) * np.float32(scale) + np.float32(shift)
        out[t.y0 : t.y0 + t.h, t.x0 : t.x0 + t.w] += val * wyn[:, None] * wxn[None, :]

    keep = harmonise != "none" and len(tiles) > 1
    factor = max(1, overlap // 8)
    store: np.ndarray | None = None
    small: list[np.ndarray] = []
    if keep:
        nbytes = len(tiles) * tiles[0].h * tiles[0].w * 4
        shape = (len(tiles), tiles[0].h, tiles[0].w)
        if nbytes > spill_bytes:
            # the memmap keeps the (already unlinked) file open until it is freed
            spill = tempfile.TemporaryFile(prefix="monitor-tiles-")  # noqa: SIM115
            store = np.memmap(spill, dtype=np.float16, mode="w+", shape=shape)
        else:
            store = np.empty(shape, np.float32)
    with torch.inference_mode():
        k = 0
        for batch in _batches(tiles, batch_size):
            preds = _run_batch(image, batch, predict, device, multiple, amp)
            for t, pred in zip(batch, preds, strict=True):
                if keep:
                    assert store is not None
                    store[k] = pred
                    small.append(_coarse(pred, factor))
                else:
                    blend(t, pred)
                k += 1
    if not keep:
        return out
    assert store is not None
    anchor_small = None
    if anchor is not None:
        if anchor.ndim != 2 or not np.isfinite(anchor).all():
            raise MonitorError("tiling: anchor must be a finite 2-D array")
        anchor_small = [
            _anchor_coarse(anchor, t, factor, s.shape, (height, width))
            for t, s in zip(tiles, small, strict=True)
        ]
    scales, shifts = _solve_harmonisation(tiles, store, small, factor, harmonise, anchor_small,
                                          anchor_weight)
    for k, t in enumerate(tiles):
        blend(t, np.asarray(store[k], np.float32), float(scales[k]), float(shifts[k]))
    return out
