"""Training of the shipped networks (never on the hot path of a comparison).

``train("pair", ...)`` and ``train("relief", ...)`` render synthetic pairs with
:mod:`monitor.synth` (TRAIN split only: ``synth.paintings_for("train")`` and
procedural albedo, seeds from ``synth.TRAIN_SEEDS``), register them with the
TRUE mapping spoiled by a random residual misregistration of up to about one
pixel (translation, rotation and an uncorrected share of the lens
distortion), linearise them, compute the networks' inputs exactly as the
inference does (:func:`monitor.change.pair.pair_inputs`,
:func:`monitor.depth.relief.relief_inputs`) and fit on random crops with a
fixed seed. Rendered pairs are cached on disk (``.cache/monitor-train``,
ignored by git) because rendering dominates.

What the pairs vary (``synth.sample_spec`` plus the draws below): procedural
and photographed paint, canvas weave, impasto, bulges, recessions and ridges;
exposure, white balance, a lamp that drifts a few degrees, raking or steeper
light from any azimuth, point-lamp falloff, varnish gloss, vignetting, lens
distortion, sensor noise, JPEG or 16-bit files, discoloration and yellowing,
and pairs with no change at all; small damage (blisters, tenting along a
crack, cupping: :func:`monitor.synth.small.small_damage_spec`) in
``small_pairs`` further pairs of their own.

The network is told the light as the light estimator leaves it: for a share
``1 - exact_light_share`` of the examples the told azimuth is the true one
plus a draw of the estimator's measured error (:func:`jittered_light`:
normal with ``light_jitter_deg`` standard deviation, so median ~0.67 sigma
and 90th percentile ~1.6 sigma, clipped at ``light_jitter_max_deg``), and the
inputs (turn, integration direction, gain) are computed from that told light,
as an inference from an estimated lamp does.

Validation uses ``synth.VALIDATION_PAINTINGS`` / ``synth.VALIDATION_SEEDS``
only; the level of detection of the pair method (``noise_mult``,
``noise_floor`` in the weights' metadata) is chosen there. The TEST split is
never read here: the benchmark scores on it.

Outputs: ``<out>/<kind>.safetensors`` and ``<out>/<kind>.card.json`` (data,
steps, wall time, device, loss log, validation figures).

Why one room of ~800 lines: it is one pipeline read top to bottom (render ->
cache -> examples -> fit -> validate -> card) whose parts share the private
example and cache records and are used by nothing else; it is never on the
hot path, and splitting it would only spread one story over several files.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from monitor import synth
from monitor.change.pair import (
    LINEAR_CHANNEL,
    PHYS_CHANNEL,
    TARGET_SCALE,
    pair_change,
    pair_inputs,
    robust_sigma,
)
from monitor.change.pair import N_INPUTS as PAIR_INPUTS
from monitor.config import Settings, load_settings
from monitor.depth.relief import N_INPUTS as RELIEF_INPUTS
from monitor.depth.relief import relief_inputs
from monitor.errors import MonitorError
from monitor.io import to_linear
from monitor.nets import LoadedNet, NetSpec, UNet, count_parameters, load_net, save_net
from monitor.results import ChangeMap, Light, Region

KINDS = ("pair", "relief")
DEFAULT_CACHE = Path(__file__).resolve().parents[1] / ".cache" / "monitor-train"
VERSION = "v2"
Log = Callable[[str], None]

__all__ = [
    "KINDS",
    "TrainConfig",
    "TrainResult",
    "base_scene",
    "jittered_light",
    "supersampled_scene",
    "load_records",
    "perturbed_mapping",
    "score_regions",
    "train",
]


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of a training run (recorded in the model card).

    ``size`` is the long side of the rendered pairs, which is also the working
    grid of the pair method (``work_px``).
    """

    kind: str = "pair"
    steps: int = 2000
    size: int = 512
    pairs: int = 320
    val_pairs: int = 40
    batch: int = 8
    crop: int = 192
    lr: float = 2e-3
    seed: int = 0
    widths: tuple[int, ...] = (8, 16, 32, 48, 64)
    stem: int = 2
    threads: int = 2
    device: str = "cpu"
    #: Further training pairs with small damage (``synth.small.small_damage_spec``).
    small_pairs: int = 40
    #: Told-light azimuth error: normal with this sigma (degrees), clipped below.
    light_jitter_deg: float = 8.0
    light_jitter_max_deg: float = 25.0
    #: Share of examples told the exact light.
    exact_light_share: float = 0.2
    #: Start from these weights (same architecture) instead of a fresh net (fine-tuning).
    init: str | None = None

    def check(self) -> None:
        """Raise :class:`MonitorError` for impossible values."""
        if self.kind not in KINDS:
            raise MonitorError(f"unknown network kind {self.kind!r}; choose pair or relief")
        if self.steps < 1 or self.pairs < 1 or self.batch < 1 or self.val_pairs < 0:
            raise MonitorError("steps, pairs and batch must be >= 1 (val_pairs >= 0)")
        if self.small_pairs < 0:
            raise MonitorError(f"small_pairs must be >= 0, got {self.small_pairs}")
        if not (0 <= self.light_jitter_deg <= 45 and 0 <= self.light_jitter_max_deg <= 90):
            raise MonitorError("light_jitter_deg must be within 0..45 and "
                               "light_jitter_max_deg within 0..90 degrees")
        if not 0 <= self.exact_light_share <= 1:
            raise MonitorError(f"exact_light_share must be within 0..1, got "
                               f"{self.exact_light_share}")
        if not 64 <= self.size <= 2048:
            raise MonitorError(f"size must be within 64..2048 px, got {self.size}")
        multiple = self.stem * 2 ** (len(self.widths) - 1)
        if self.crop % multiple or self.crop > 3 * self.size // 4 or self.crop < multiple:
            raise MonitorError(
                f"crop must be a multiple of {multiple} and at most 3/4 of size, got {self.crop}"
            )


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` wrote and measured."""

    weights: Path
    card: Path
    sha256: str
    final_loss: float
    first_loss: float
    seconds: float
    validation: dict[str, object]


# --------------------------------------------------------------------------- scenes


def supersampled_scene(spec: synth.PairSpec) -> tuple[np.ndarray, np.ndarray]:
    """Albedo and base height (impasto + weave) of a spec on the renderer's supersampled grid.

    :func:`monitor.synth.render_pair` does not return the base relief; this
    repeats the renderer's first draws (albedo with its impasto, then the
    weave, from ``default_rng(spec.seed)``). ``tests/test_training.py`` checks
    that a noise-free rendering equals ``albedo * shading(height)``.

    Parameters
    ----------
    spec
        The pair's spec.

    Returns
    -------
    albedo : numpy.ndarray
        (H*ss) x (W*ss) x 3 float32 linear albedo.
    height : numpy.ndarray
        (H*ss) x (W*ss) float32, baseline pixel-pitch units.
    """
    rng = np.random.default_rng(spec.seed)
    w, h = spec.size
    ss = synth.SUPERSAMPLING
    if spec.painting is None:
        albedo, impasto = synth._procedural_albedo(rng, w, h, spec.impasto)
    else:
        albedo, impasto = synth._painting_albedo(rng, Path(spec.painting), w, h, spec.impasto)
    height = cv2.resize(impasto, (w * ss, h * ss), interpolation=cv2.INTER_CUBIC)
    height += synth._weave(rng, w, h, ss, spec.weave_amplitude, spec.weave_period)
    albedo2 = np.clip(cv2.resize(albedo, (w * ss, h * ss), interpolation=cv2.INTER_CUBIC),
                      0.02, 0.95)
    return albedo2.astype(np.float32), height.astype(np.float32)


def base_scene(spec: synth.PairSpec) -> np.ndarray:
    """The baseline's height field (impasto + weave) on the baseline grid (area average).

    Parameters
    ----------
    spec
        The pair's spec.

    Returns
    -------
    numpy.ndarray
        H x W float32, baseline pixel-pitch units.
    """
    w, h = spec.size
    _, height = supersampled_scene(spec)
    return cv2.resize(height, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)


def _draw_spec(split: str, index: int, size: int) -> synth.PairSpec:
    """The spec of pair ``index`` of a split (deterministic)."""
    seeds = synth.TRAIN_SEEDS if split == "train" else synth.VALIDATION_SEEDS
    if index >= len(seeds):
        raise MonitorError(f"{split}: at most {len(seeds)} pairs")
    seed = seeds.start + index
    rng = np.random.default_rng([seed, 4242])
    paintings = synth.paintings_for(split)
    painting = None
    if paintings and rng.random() < 0.5:
        painting = paintings[int(rng.integers(len(paintings)))]
    raking = bool(rng.random() < 0.85)
    realism = bool(rng.random() < 0.5)
    no_change = bool(rng.random() < (0.15 if split == "train" else 0.25))
    portrait = bool(rng.random() < 0.25)
    short = max(64, round(size * 0.75))
    dims = (short, size) if portrait else (size, short)
    spec = synth.sample_spec(
        seed, painting=painting, raking=raking, realism=realism, no_change=no_change, size=dims
    )
    if rng.random() < 0.5:  # any azimuth, not only near the four usual ones
        az = float(rng.uniform(0.0, 360.0))
        drift = spec.light_current.azimuth_deg - spec.light_baseline.azimuth_deg
        spec = dataclasses.replace(
            spec,
            light_baseline=Light(az, spec.light_baseline.elevation_deg),
            light_current=Light((az + drift) % 360.0, spec.light_current.elevation_deg),
        )
    return spec


#: Seeds of the small-damage training pairs: TRAIN_SEEDS, disjoint from _draw_spec's.
SMALL_SEED_OFFSET = 500_000
#: Pixels per millimetre of the small-damage training canvases (as a 6000 px
#: scan of a 60 cm canvas).
SMALL_PX_PER_MM = 10.0


def _draw_small_spec(index: int, size: int) -> synth.PairSpec:
    """Spec of small-damage training pair ``index`` (blisters, tenting, cupping)."""
    from monitor.synth.small import small_damage_spec

    seed = synth.TRAIN_SEEDS.start + SMALL_SEED_OFFSET + index
    if seed not in synth.TRAIN_SEEDS:
        raise MonitorError("train-small: too many pairs")
    rng = np.random.default_rng([seed, 4343])
    paintings = synth.paintings_for("train")
    painting = None
    if paintings and rng.random() < 0.5:
        painting = paintings[int(rng.integers(len(paintings)))]
    portrait = bool(rng.random() < 0.25)
    short = max(64, round(size * 0.75))
    dims = (short, size) if portrait else (size, short)
    spec = small_damage_spec(
        seed, size=dims, canvas_mm=size / SMALL_PX_PER_MM, damage="fine", painting=painting
    ).spec
    az = float(rng.uniform(0.0, 360.0))  # the lamp from any azimuth
    drift = spec.light_current.azimuth_deg - spec.light_baseline.azimuth_deg
    return dataclasses.replace(
        spec,
        light_baseline=Light(az, spec.light_baseline.elevation_deg),
        light_current=Light((az + drift) % 360.0, spec.light_current.elevation_deg),
    )


def _render_record(split: str, index: int, size: int, path: Path) -> None:
    spec = _draw_small_spec(index, size) if split == "train-small" else _draw_spec(
        split, index, size)
    pair = synth.render_pair(spec)
    labels = np.zeros(pair.height_change.shape, np.uint8)
    polarity = np.zeros(len(pair.regions) + 1, np.int8)
    for r in pair.regions:
        labels[r.mask] = r.id
        polarity[r.id] = 1 if r.polarity == "bulge" else -1
    tmp = path.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        baseline=pair.baseline,
        current=pair.current,
        homography=pair.homography,
        lens_k1=np.float64(pair.lens_k1),
        height_change=pair.height_change.astype(np.float32),
        base_height=base_scene(spec),
        labels=labels,
        polarity=polarity,
        light=np.array(
            [spec.light_baseline.azimuth_deg, spec.light_baseline.elevation_deg], np.float64
        ),
        spec=np.array(json.dumps(spec.to_dict())),
    )
    tmp.replace(path)


def load_records(
    split: str, n: int, size: int, cache_dir: Path | None = None, log: Log | None = None,
    stats: dict[str, int] | None = None,
) -> list[dict[str, np.ndarray]]:
    """Rendered pairs of a split, from the cache (rendering the missing ones).

    Parameters
    ----------
    split
        ``train``, ``train-small`` (small damage, TRAIN seeds) or
        ``validation`` (the test split is the benchmark's).
    n
        Number of pairs (indices ``0 .. n-1`` of the split's seed range).
    size
        Long side in pixels.
    cache_dir
        Cache root (default ``.cache/monitor-train`` in the checkout).
    log
        Progress messages.
    stats
        When given, ``stats["rendered"]`` is increased by the pairs rendered now.

    Returns
    -------
    list of dict
        One record per pair (arrays as saved by the renderer step).
    """
    if split not in ("train", "train-small", "validation"):
        raise MonitorError(f"training reads the train and validation splits only, not {split!r}")
    folder = (cache_dir or DEFAULT_CACHE) / f"{split}-{size}"
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    start = time.perf_counter()
    for i in range(n):
        path = folder / f"{i:06d}.npz"
        if not path.exists():
            _render_record(split, i, size, path)
            if stats is not None:
                stats["rendered"] = stats.get("rendered", 0) + 1
            if log and (i + 1) % 20 == 0:
                log(f"rendered {split} pair {i + 1}/{n} ({time.perf_counter() - start:.0f} s)")
        with np.load(path) as data:
            records.append({k: data[k] for k in data.files})
    return records


# --------------------------------------------------------------------------- examples


def perturbed_mapping(
    homography: np.ndarray,
    lens_k1: float,
    baseline_size: tuple[int, int],
    current_size: tuple[int, int],
    rng: np.random.Generator,
    max_px: float = 1.0,
) -> tuple[np.ndarray, float]:
    """The true mapping spoiled by a residual misregistration of up to ``max_px``.

    A translation (up to 0.5 ``max_px``), a rotation about the centre (corners
    move up to 0.25 ``max_px``) and a share of the lens distortion left
    uncorrected (corners move up to 0.25 ``max_px``).

    Returns
    -------
    homography : numpy.ndarray
        3 x 3, CURRENT -> BASELINE.
    lens_k1 : float
    """
    bw, bh = baseline_size
    cw, ch = current_size
    # mostly small (a good registration), sometimes up to the full max_px
    max_px = max_px * float(rng.uniform(0.2, 1.0)) ** 2 if rng.random() < 0.7 else max_px
    t = rng.uniform(0, 0.5 * max_px)
    phi = rng.uniform(0, 2 * math.pi)
    ang = rng.uniform(-1, 1) * 0.25 * max_px / (0.5 * math.hypot(bw, bh))
    c, s = math.cos(ang), math.sin(ang)
    cx, cy = bw / 2, bh / 2
    move = np.array(
        [
            [c, -s, cx - c * cx + s * cy + t * math.cos(phi)],
            [s, c, cy - s * cx - c * cy + t * math.sin(phi)],
            [0, 0, 1],
        ]
    )
    hom = move @ np.asarray(homography, np.float64)
    k1 = lens_k1 + rng.uniform(-1, 1) * 0.25 * max_px / (0.5 * math.hypot(cw, ch))
    return hom / hom[2, 2], float(k1)


def _registered(rec: dict[str, np.ndarray], rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    base = to_linear(rec["baseline"])
    cur = to_linear(rec["current"])
    h, w = base.shape[:2]
    hom, k1 = perturbed_mapping(
        rec["homography"], float(rec["lens_k1"]), (w, h), (cur.shape[1], cur.shape[0]), rng
    )
    # bicubic, as the pipeline's registration.warp_to_baseline resamples
    warped = synth.warp_current_to_baseline(cur, hom, k1, (w, h), interpolation=cv2.INTER_CUBIC)
    valid = np.isfinite(warped).all(axis=2)
    return base, np.nan_to_num(warped).astype(np.float32), valid


def _light(rec: dict[str, np.ndarray]) -> Light:
    return Light(float(rec["light"][0]), float(rec["light"][1]))


def jittered_light(
    light: Light, rng: np.random.Generator, sigma_deg: float = 8.0, max_deg: float = 25.0,
    exact_share: float = 0.2,
) -> Light:
    """The light as an estimate leaves it: the true azimuth plus the estimator's error.

    The light estimator's azimuth error on pairs with relief is ~4-8 degrees
    at the median, ~12 at the 90th percentile and 15-25 at worst (it refuses
    beyond); a normal draw of ``sigma_deg`` (median 0.67 sigma, 90th
    percentile 1.64 sigma) clipped at ``max_deg`` follows that.

    Parameters
    ----------
    light
        The true lamp.
    rng
        Random draws.
    sigma_deg, max_deg
        Standard deviation and clip of the azimuth error, degrees.
    exact_share
        Probability that the light is returned exactly (a user who gives it).

    Returns
    -------
    Light
        Same elevation, azimuth in [0, 360).

    Examples
    --------
    >>> told = jittered_light(Light(180, 30), np.random.default_rng(1), exact_share=0.0)
    >>> 0 < abs(told.azimuth_deg - 180) <= 25
    True
    """
    if rng.random() < exact_share or sigma_deg <= 0:
        return light
    err = float(np.clip(rng.normal(0.0, sigma_deg), -max_deg, max_deg))
    return Light((light.azimuth_deg + err) % 360.0, light.elevation_deg)


@dataclass
class _Example:
    x: torch.Tensor  # (C, H, W) float16, canonical orientation
    y: torch.Tensor  # (H, W) float32 target
    m: torch.Tensor  # (H, W) bool, loss mask


def _pair_example(
    rec: dict[str, np.ndarray], rng: np.random.Generator, told: Light | None = None
) -> _Example:
    """One example; ``told`` is the light the inputs are computed from (default: the true)."""
    base, cur, valid = _registered(rec, rng)
    inputs = pair_inputs(base, cur, valid, told or _light(rec))
    k = inputs.turns
    dh = torch.from_numpy(np.ascontiguousarray(rec["height_change"], dtype=np.float32))
    ok = torch.from_numpy(inputs.trusted)
    y = dh / inputs.gain * TARGET_SCALE
    if k:
        y, ok = torch.rot90(y, k, dims=(0, 1)), torch.rot90(ok, k, dims=(0, 1))
    return _Example(inputs.features.half(), y.contiguous(), ok.contiguous())


def _relief_examples(rec: dict[str, np.ndarray], rng: np.random.Generator) -> list[_Example]:
    base, cur, valid = _registered(rec, rng)
    height = rec["base_height"].astype(np.float32)
    out = []
    for img, mask, target in (
        (base, np.ones_like(valid), height),
        (cur, valid, height + rec["height_change"].astype(np.float32)),
    ):
        feats, k, gain = relief_inputs(img, mask, _light(rec))
        y = torch.from_numpy(np.ascontiguousarray(target)) / gain * TARGET_SCALE
        m = torch.from_numpy(np.ascontiguousarray(mask))
        if k:
            y, m = torch.rot90(y, k, dims=(0, 1)), torch.rot90(m, k, dims=(0, 1))
        out.append(_Example(feats.half(), y.contiguous(), (m & (feats[4] > 0)).contiguous()))
    return out


def _batch(
    examples: list[_Example], rng: np.random.Generator, batch: int, crop: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    xs, ys, ms = [], [], []
    for _ in range(batch):
        ex = examples[int(rng.integers(len(examples)))]
        h, w = ex.y.shape
        c = min(crop, h, w)
        y0, x0 = int(rng.integers(0, h - c + 1)), int(rng.integers(0, w - c + 1))
        x = ex.x[:, y0 : y0 + c, x0 : x0 + c].float()
        y = ex.y[y0 : y0 + c, x0 : x0 + c]
        m = ex.m[y0 : y0 + c, x0 : x0 + c]
        if rng.random() < 0.5:  # mirror top-bottom: the light's y component flips too
            x, y, m = x.flip(-2), y.flip(-2), m.flip(-2)
            x = x.clone()
            x[-2] = -x[-2]
        xs.append(x)
        ys.append(y)
        ms.append(m)
    return torch.stack(xs), torch.stack(ys)[:, None], torch.stack(ms)[:, None]


def _loss(kind: str, pred: torch.Tensor, y: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    mf = m.float()
    n = mf.sum().clamp_min(1.0)
    if kind == "pair":
        # changed pixels are few: weigh them up so the net does not learn to say 0.
        # Huber, not L1: with L1's sign-only gradient the correction of the physics
        # channel collapsed to zero in long runs (the net then stops learning)
        weight = mf * (1.0 + 4.0 * (y.abs() > 0.01).float())
        per_pixel = F.smooth_l1_loss(pred, y, reduction="none", beta=0.05)
        return (per_pixel * weight).sum() / weight.sum().clamp_min(1.0)
    # relief: height is relative -- compare after removing each crop's mean offset
    diff = pred - y
    offset = (diff * mf).sum(dim=(-2, -1), keepdim=True) / mf.sum(
        dim=(-2, -1), keepdim=True
    ).clamp_min(1.0)
    centred = diff - offset
    value = (F.smooth_l1_loss(centred, torch.zeros_like(centred), reduction="none", beta=0.05)
             * mf).sum() / n
    gx = (diff[..., :, 1:] - diff[..., :, :-1]).abs() * (mf[..., :, 1:] * mf[..., :, :-1])
    gy = (diff[..., 1:, :] - diff[..., :-1, :]).abs() * (mf[..., 1:, :] * mf[..., :-1, :])
    return value + 2.0 * (gx.sum() + gy.sum()) / n


# --------------------------------------------------------------------------- scoring


def score_regions(
    regions: tuple[Region, ...], labels: np.ndarray, polarity: np.ndarray
) -> dict[str, int]:
    """Match found regions to the truth (one to one).

    A found region matches a truth region when its centroid lies in the
    truth's mask (dilated by 2 px) or the truth's centroid lies in its box.

    Parameters
    ----------
    regions
        Found regions, baseline pixels.
    labels
        Truth label image on the baseline grid (0 = none, id = region).
    polarity
        Per truth id, +1 bulge / -1 recession.

    Returns
    -------
    dict
        ``tp``, ``fp``, ``fn`` and ``polarity_ok`` (matched with the right sign).
    """
    ids = [int(i) for i in np.unique(labels) if i > 0]
    h, w = labels.shape
    grown = {i: cv2.dilate((labels == i).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
             for i in ids}
    cents = {}
    for i in ids:
        rows, cols = np.nonzero(labels == i)
        cents[i] = (cols.mean() + 0.5, rows.mean() + 0.5)
    free = set(ids)
    tp = pol = 0
    for r in regions:
        cx, cy = r.centroid
        col, row = min(max(int(cx), 0), w - 1), min(max(int(cy), 0), h - 1)
        best = None
        for i in sorted(free, key=lambda j: math.hypot(cents[j][0] - cx, cents[j][1] - cy)):
            x0, y0, x1, y1 = r.bbox
            if grown[i][row, col] or (x0 <= cents[i][0] <= x1 and y0 <= cents[i][1] <= y1):
                best = i
                break
        if best is None:
            continue
        free.discard(best)
        tp += 1
        pol += int((polarity[best] > 0) == (r.polarity == "bulge"))
    return {"tp": tp, "fp": len(regions) - tp, "fn": len(free), "polarity_ok": pol}


def _correlation(change: ChangeMap, truth: np.ndarray) -> float | None:
    h = change.height
    ok = np.isfinite(h)
    if truth[ok].std() < 1e-9 or h[ok].std() < 1e-12:
        return None
    return float(np.corrcoef(h[ok], truth[ok])[0, 1])


def _summarise(rows: list[dict[str, object]]) -> dict[str, object]:
    tp = sum(int(r["tp"]) for r in rows)  # type: ignore[call-overload]
    fp = sum(int(r["fp"]) for r in rows)  # type: ignore[call-overload]
    fn = sum(int(r["fn"]) for r in rows)  # type: ignore[call-overload]
    pol = sum(int(r["polarity_ok"]) for r in rows)  # type: ignore[call-overload]
    nochange = [r for r in rows if r["no_change"]]
    corr = [float(r["corr"]) for r in rows if r["corr"] is not None]  # type: ignore[arg-type]
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    return {
        "pairs": len(rows),
        "f1": round(f1, 4),
        "precision": round(tp / (tp + fp), 4) if tp + fp else None,
        "recall": round(tp / (tp + fn), 4) if tp + fn else None,
        "polarity_right": round(pol / tp, 4) if tp else None,
        "no_change_pairs": len(nochange),
        "false_alarms_on_no_change": sum(int(r["fp"]) for r in nochange),  # type: ignore[call-overload]
        "correlation_mean": round(float(np.mean(corr)), 4) if corr else None,
    }


def _evaluate(
    changes: list[ChangeMap], records: list[dict[str, np.ndarray]], z: float, min_frac: float
) -> dict[str, object]:
    from monitor.regions import find_regions

    rows = []
    for change, rec in zip(changes, records, strict=True):
        regions = find_regions(change, z=z, min_diameter_frac=min_frac)
        row: dict[str, object] = dict(score_regions(regions, rec["labels"], rec["polarity"]))
        row["no_change"] = not bool(rec["labels"].any())
        row["corr"] = None if row["no_change"] else _correlation(change, rec["height_change"])
        rows.append(row)
    return _summarise(rows)


def _validation_inputs(
    records: list[dict[str, np.ndarray]], seed: int
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, Light]]:
    rng = np.random.default_rng([seed, 99])
    return [(*_registered(rec, rng), _light(rec)) for rec in records]


def _validate_pair(
    net: LoadedNet, records: list[dict[str, np.ndarray]], seed: int, log: Log
) -> tuple[dict[str, object], float, float]:
    """Validation figures of the pair net (and the photometric method on the same pairs).

    Chooses the level of detection (``noise_mult``, ``noise_floor``) that
    maximises F1 (false alarms on no-change pairs count) at the default
    ``significance_z`` and ``min_region_frac`` of :class:`monitor.config.Settings`.
    """
    from monitor.change.methods import photometric_change
    from monitor.config import Settings

    defaults = Settings()
    z, min_frac = defaults.significance_z, defaults.min_region_frac
    inputs = _validation_inputs(records, seed)
    raw = [pair_change(b, c, v, light, model=net) for b, c, v, light in inputs]
    # the two spreads the level of detection is built from, per pair
    spreads = []
    for ch, (b, c, v, light) in zip(raw, inputs, strict=True):
        pin = pair_inputs(b, c, v, light)
        phys = pin.channel(LINEAR_CHANNEL) / TARGET_SCALE * pin.gain
        ok = pin.trusted
        spreads.append((robust_sigma(ch.height[ok]), robust_sigma(phys[ok])))
    best: tuple[float, float, float, dict[str, object]] | None = None
    for mult in (1.0, 1.5, 2.0, 3.0, 4.0, 6.0):
        for floor in (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0):
            changes = [
                dataclasses.replace(ch, noise_sigma=max(mult * so, floor * sp, 1e-6))
                for ch, (so, sp) in zip(raw, spreads, strict=True)
            ]
            res = _evaluate(changes, records, z, min_frac)
            key = (float(cast(float, res["f1"])),
                   -int(cast(int, res["false_alarms_on_no_change"])))
            if best is None or key > (best[2], best[3]["_fa"]):
                best = (mult, floor, key[0], {**res, "_fa": key[1]})
    assert best is not None
    mult, floor, _, res = best
    res.pop("_fa")
    log(f"validation pair: noise_mult {mult} noise_floor {floor} -> {res}")
    photo = [photometric_change(b, c, v, light) for b, c, v, light in inputs]
    photo_res = _evaluate(photo, records, z, min_frac)
    log(f"validation photometric (same pairs): {photo_res}")
    return {"pair": res, "photometric_same_pairs": photo_res}, mult, floor


def _validate_relief(
    weights: Path, records: list[dict[str, np.ndarray]], seed: int, log: Log
) -> dict[str, object]:
    from monitor.change.methods import depth_change
    from monitor.config import Settings
    from monitor.depth.relief import ReliefEstimator

    defaults = Settings()
    est = ReliefEstimator(torch.device("cpu"), weights)
    inputs = _validation_inputs(records, seed)
    corr = []
    changes = []
    for (b, c, v, light), rec in zip(inputs, records, strict=True):
        d = est.estimate(b, light).height
        truth = rec["base_height"]
        corr.append(float(np.corrcoef(d.ravel(), truth.ravel())[0, 1]))
        changes.append(depth_change(b, c, v, light, estimator=est))
    res = _evaluate(changes, records, defaults.significance_z, defaults.min_region_frac)
    out = {
        "per_scan_height_correlation_mean": round(float(np.mean(corr)), 4),
        "depth_method": res,
    }
    log(f"validation relief: {out}")
    return out


# --------------------------------------------------------------------------- training


def default_weights_out(settings: Settings | None = None) -> Path:
    """Default folder of ``monitor train``'s output: ``<data home>/weights``.

    Never the package's ``weights/`` folder (:data:`monitor.nets.WEIGHTS_DIR`):
    the shipped, documented weights change only when asked for by name.

    Parameters
    ----------
    settings
        Where the data home is (default: :func:`monitor.config.load_settings`).

    Returns
    -------
    Path

    Examples
    --------
    >>> default_weights_out(Settings(home="/data/monitor"))
    PosixPath('/data/monitor/weights')
    """
    settings = settings or load_settings()
    return Path(settings.home).expanduser() / "weights"


def train(
    config: TrainConfig,
    out_dir: Path | None = None,
    *,
    cache_dir: Path | None = None,
    log: Log | None = None,
    validate: bool = True,
) -> TrainResult:
    """Train one network and write its weights and model card.

    Parameters
    ----------
    config
        Every knob (kind, steps, size, seed, ...).
    out_dir
        Where ``<kind>.safetensors`` and ``<kind>.card.json`` go (default:
        :func:`default_weights_out`, a folder in the data home; the package's
        shipped weights are replaced only when ``out_dir`` names their folder).
    cache_dir
        Cache of rendered pairs.
    log
        Receives progress lines (default: print).
    validate
        Compute validation figures (and, for ``pair``, calibrate the level of
        detection) on the validation split.

    Returns
    -------
    TrainResult
    """
    config.check()
    log = log or (lambda s: print(s, flush=True))
    out_dir = Path(out_dir) if out_dir is not None else default_weights_out()
    start = time.perf_counter()
    torch.set_num_threads(max(1, config.threads))
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    device = torch.device(config.device)

    cache_stats: dict[str, int] = {"rendered": 0}
    records = load_records("train", config.pairs, config.size, cache_dir, log, cache_stats)
    n_small = config.small_pairs if config.kind == "pair" else 0
    if n_small:
        records += load_records("train-small", n_small, config.size, cache_dir, log, cache_stats)
    t_render = time.perf_counter() - start
    examples: list[_Example] = []
    light_errors: list[float] = []
    jitter_rng = np.random.default_rng([config.seed, 31])
    for rec in records:
        if config.kind == "pair":
            true = _light(rec)
            told = jittered_light(true, jitter_rng, config.light_jitter_deg,
                                  config.light_jitter_max_deg, config.exact_light_share)
            light_errors.append(
                (told.azimuth_deg - true.azimuth_deg + 180.0) % 360.0 - 180.0)
            examples.append(_pair_example(rec, rng, told))
        else:
            examples.extend(_relief_examples(rec, rng))
    log(f"{len(examples)} examples ready ({time.perf_counter() - start:.0f} s)")

    n_in = PAIR_INPUTS if config.kind == "pair" else RELIEF_INPUTS
    residual = PHYS_CHANNEL if config.kind == "pair" else -1
    spec = NetSpec(n_in, 1, tuple(config.widths), "none", config.stem, residual)
    model = UNet(spec).to(device)
    if config.init:
        start_net = load_net(Path(config.init), torch.device("cpu"), kind=config.kind)
        if start_net.spec != spec:
            raise MonitorError(f"--init {config.init}: architecture differs from the config's")
        model.load_state_dict(start_net.model.state_dict())
        log(f"starting from {config.init} (sha256 {start_net.sha256[:12]})")
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-4)
    warm = max(1, min(50, config.steps // 20))

    def lr_at(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        t = (step - warm) / max(1, config.steps - warm)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    losses: list[tuple[int, float]] = []
    every = max(1, config.steps // 40)
    ema = None
    # a fixed probe of training crops: its loss is logged, the best state kept
    probe_rng = np.random.default_rng([config.seed, 17])
    probe = [_batch(examples, probe_rng, config.batch, config.crop) for _ in range(6)]

    def probe_loss(use_model: bool = True) -> float:
        with torch.no_grad():
            total = 0.0
            for px, py, pm in probe:
                px = px.to(device)
                if use_model:
                    out = model(px)
                elif config.kind == "pair":
                    out = px[:, PHYS_CHANNEL : PHYS_CHANNEL + 1]  # the physics alone
                else:
                    out = torch.zeros_like(py).to(device)
                total += float(_loss(config.kind, out, py.to(device), pm.to(device)))
        return total / len(probe)

    reference = probe_loss(use_model=False)
    probes: list[tuple[int, float]] = []
    best = (math.inf, -1, {k: v.clone() for k, v in model.state_dict().items()})
    check_every = max(1, config.steps // 20)
    t_train = time.perf_counter()
    model.train()
    for step in range(config.steps):
        x, y, m = _batch(examples, rng, config.batch, config.crop)
        x, y, m = x.to(device), y.to(device), m.to(device)
        loss = _loss(config.kind, model(x), y, m)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        value = float(loss.detach())
        ema = value if ema is None else 0.95 * ema + 0.05 * value
        if step % every == 0 or step == config.steps - 1:
            losses.append((step, round(ema, 6)))
            log(f"step {step:5d}/{config.steps}  loss {value:.5f}  ema {ema:.5f}  "
                f"{time.perf_counter() - t_train:.0f} s")
        if (step + 1) % check_every == 0 or step == config.steps - 1:
            p = probe_loss()
            probes.append((step + 1, round(p, 6)))
            if p < best[0]:
                best = (p, step + 1, {k: v.clone() for k, v in model.state_dict().items()})
            log(f"probe after {step + 1} steps: {p:.5f} (without the net: {reference:.5f})")
    train_seconds = time.perf_counter() - t_train
    model.load_state_dict(best[2])
    model.eval()
    log(f"kept the state after {best[1]} steps (probe {best[0]:.5f})")

    weights = out_dir / f"{config.kind}.safetensors"
    meta = {
        "version": VERSION,
        "work_px": str(config.size),
        "target_scale": str(TARGET_SCALE),
        "tile_px": str(max(768, config.size + 64)),
        "seed": str(config.seed),
        "steps": str(config.steps),
    }
    sha = save_net(model, weights, config.kind, meta)
    validation: dict[str, object] = {}
    if validate and config.val_pairs > 0:
        val_records = load_records(
            "validation", config.val_pairs, config.size, cache_dir, log, cache_stats
        )
        if config.kind == "pair":
            net = load_net(weights, torch.device("cpu"), kind="pair")
            validation, mult, floor = _validate_pair(net, val_records, config.seed, log)
            meta.update({"noise_mult": str(mult), "noise_floor": str(floor)})
            sha = save_net(model, weights, config.kind, meta)
        else:
            validation = _validate_relief(weights, val_records, config.seed, log)
    seconds = time.perf_counter() - start
    card = {
        "model": f"monitor/{config.kind}-{VERSION}",
        "kind": config.kind,
        "weights": weights.name,
        "weights_sha256": sha,
        "weights_bytes": weights.stat().st_size,
        "parameters": count_parameters(model),
        "architecture": json.loads(spec.to_json()),
        "inputs": "see monitor/change/pair.py" if config.kind == "pair"
        else "see monitor/depth/relief.py",
        "target": "height change / elevation gain * target_scale, working pixels"
        if config.kind == "pair"
        else "surface height (impasto + weave + deformations) / gain * target_scale, offset-free",
        "metadata": meta,
        "config": {**dataclasses.asdict(config), "widths": list(config.widths)},
        "data": {
            "renderer": "monitor.synth.render_pair(sample_spec(...)) with the draws of "
            "monitor.training._draw_spec",
            "train_pairs": config.pairs,
            "train_seeds": f"{synth.TRAIN_SEEDS.start}.."
            f"{synth.TRAIN_SEEDS.start + config.pairs - 1}",
            "train_paintings": [p.name for p in synth.paintings_for("train")],
            "validation_pairs": config.val_pairs if validate else 0,
            "validation_seeds": f"{synth.VALIDATION_SEEDS.start}.."
            f"{synth.VALIDATION_SEEDS.start + config.val_pairs - 1}",
            "validation_paintings": [p.name for p in synth.paintings_for("validation")],
            "test_split": "never read",
            "size_long_side": config.size,
            "examples": len(examples),
            "small_damage_pairs": n_small,
            "small_damage": "monitor.synth.small.small_damage_spec(damage='fine'): 8 "
            "blisters / tentings / cuppings of radius 0.2-0.6 % of the long side, canvas "
            f"{SMALL_PX_PER_MM:g} px/mm, lamp from any azimuth; seeds "
            f"{synth.TRAIN_SEEDS.start + SMALL_SEED_OFFSET}.."
            f"{synth.TRAIN_SEEDS.start + SMALL_SEED_OFFSET + max(n_small, 1) - 1}"
            if n_small else "none",
            "told_light": "the true light for a share exact_light_share of the examples, "
            "else the true azimuth + N(0, light_jitter_deg) clipped at light_jitter_max_deg "
            "(the light estimator's measured error); inputs computed from the told light"
            if config.kind == "pair" else "the true light",
            "told_light_azimuth_error_deg": {
                "median_abs": round(float(np.median(np.abs(light_errors))), 2),
                "p90_abs": round(float(np.percentile(np.abs(light_errors), 90)), 2),
                "max_abs": round(float(np.max(np.abs(light_errors))), 2),
                "exact": int(sum(e == 0.0 for e in light_errors)),
            } if light_errors else None,
            "misregistration": "true mapping + translation <= 0.5 px, rotation <= 0.25 px "
            "at the corners, uncorrected lens <= 0.25 px at the corners (70 % of draws "
            "scaled down by u^2, u ~ U(0.2, 1))",
        },
        "training": {
            "steps": config.steps,
            "batch": config.batch,
            "crop": config.crop,
            "optimiser": f"AdamW lr {config.lr} wd 1e-4, warm-up then cosine, grad clip 1",
            "seconds_total": round(seconds, 1),
            "seconds_rendering": round(t_render, 1),
            "pairs_rendered_this_run": cache_stats["rendered"],
            "cache": "rendered pairs are cached; a cold cache adds ~1-4 s per pair "
            "(512 px, one core)",
            "seconds_training": round(train_seconds, 1),
            "device": str(device),
            "threads": config.threads,
            "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "loss_log": losses,
            "probe_log": probes,
            "probe_without_net": round(reference, 6),
            "kept_step": best[1],
            "initialised_from": config.init,
            "loss": "pair: weighted Huber (beta 0.05, changed pixels x5); relief: offset-free "
            "Huber (beta 0.05) + 2 x L1 of the gradient",
        },
        "validation": validation,
        "command": f"monitor train {config.kind} --steps {config.steps} --size {config.size} "
        f"--pairs {config.pairs} --val-pairs {config.val_pairs} --batch {config.batch} "
        f"--crop {config.crop} --seed {config.seed} --threads {config.threads}"
        + (f" --small-pairs {config.small_pairs} --light-jitter {config.light_jitter_deg:g}"
           if config.kind == "pair" else "")
        + (f" --lr {config.lr:g} --init {config.init}" if config.init else ""),
    }
    card_path = out_dir / f"{config.kind}.card.json"
    card_path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    log(f"wrote {weights} ({weights.stat().st_size / 1e6:.2f} MB, sha256 {sha[:12]}) and "
        f"{card_path.name} in {seconds:.0f} s")
    first = losses[0][1] if losses else float("nan")
    return TrainResult(weights, card_path, sha, losses[-1][1], first, seconds, validation)
