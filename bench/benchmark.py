"""Accuracy benchmark of `monitor` against ground truth and baselines (``make bench``).

Usage::

    .venv/bin/python bench/benchmark.py [--size 960x720] [--out bench/out] [--docs docs]
                                        [--max-pairs N] [--configs photometric,naive,...]
                                        [--split test|train|validation] [--no-auto-light]

``--split train`` / ``validation`` renders the same design from the training or
validation paintings and seeds (``synth.TRAIN_SEEDS`` / ``VALIDATION_SEEDS`` + 1000):
where settings are chosen. The default, ``test``, is the benchmark.

Renders a deterministic set of synthetic scan pairs with :mod:`monitor.synth`
(the benchmark's paintings and seeds only: ``synth.paintings_for("test")`` and
``synth.TEST_SEEDS``; procedural canvases fill up to 8 canvases, and make up all
of them when ``../shared/paintings`` is absent), writes each pair to disk with
``synth.write_pair`` and runs ``monitor.pipeline.compare`` on the files for every
change method and depth estimator `monitor` offers, plus the baselines in
``bench/baselines.py``. Scores (per pair and overall):

* region recall / precision / F1: a truth region is found when a predicted
  region of the same polarity has its centroid inside the truth mask
  (one-to-one: further predictions on a found region are duplicates and count
  as false positives);
* polarity accuracy: of the predicted regions whose centroid lies on a true
  deformation, the share with the right polarity;
* false alarms: predicted regions whose centroid lies on no deformation; those
  on the discoloration, and every region on a pair without deformation, are
  false alarms on appearance-only changes;
* correlation (Pearson) of the change map with the true height change over
  the overlap, on the analysis grid (truth area-averaged onto it);
* registration error against the true mapping: at the four baseline corners
  (pairs without lens distortion) or the largest error over a 9 x 9 grid of
  points inside the overlap (pairs with lens distortion), for `monitor`'s
  registration and for plain full-resolution SIFT.

Results go to ``<out>/benchmark.json`` and, with ``--docs``, to
``docs/benchmarks.json`` (key ``accuracy``) and ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import tifffile

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from bench.baselines import naive_compare, sift_homography  # noqa: E402
from monitor import registration as _registration  # noqa: E402
from monitor import synth  # noqa: E402
from monitor.change.methods import METHODS  # noqa: E402
from monitor.config import Settings, scale_route  # noqa: E402
from monitor.depth import get_estimator, known_estimators  # noqa: E402
from monitor.errors import MonitorError  # noqa: E402
from monitor.io import read_image  # noqa: E402
from monitor.light import angular_difference, compare_light  # noqa: E402
from monitor.pipeline import compare  # noqa: E402
from monitor.results import ChangeMap, Light, LightUsed, Registration  # noqa: E402

DEFAULT_SIZE = (960, 720)
#: Spacing of the benchmark lamps' azimuths (golden angle: spread over the circle).
GOLDEN_DEG = 137.508
#: Suffix of a configuration run without the light (``light="auto"``).
AUTO = " / light auto"
SEED0 = 1000  # first seed, from the start of the split's seeds (synth.TEST_SEEDS by default)
#: The seeds of each split: ``test`` is the benchmark; ``train`` and ``validation``
#: (their own paintings and seeds, disjoint from the test ones) are where
#: settings may be chosen.
SPLIT_SEEDS = {"train": synth.TRAIN_SEEDS, "validation": synth.VALIDATION_SEEDS,
               "test": synth.TEST_SEEDS}
MIN_CANVASES = 8
N_NO_CHANGE = 4
REALISM_EVERY = 3  # every third pair is a "realism" pair
DISCOLORATION_LABEL = 255
NAIVE = "naive"

#: Targets of the default configuration (issue 5).
TARGETS = {
    "f1": 0.95,
    "polarity_accuracy": 0.98,
    "appearance_false_alarms": 0,
    "correlation": 0.9,
    "registration_error_px": 0.3,
    "e2e_24mp_s": 60.0,
    "peak_rss_100mp_bytes": 6e9,
}


# --------------------------------------------------------------------------- pairs


@dataclass(frozen=True)
class BenchPair:
    """One benchmark pair: a name and the spec it renders from."""

    name: str
    spec: synth.PairSpec
    canvas: str  # painting stem or "procedural"
    raking: bool
    realism: bool
    no_change: bool


def bench_pairs(
    size: tuple[int, int] = DEFAULT_SIZE,
    *,
    paintings: Sequence[Path] | None = None,
    min_canvases: int = MIN_CANVASES,
    n_no_change: int = N_NO_CHANGE,
    seed0: int | None = None,
    spread_lamps: bool = True,
    split: str = "test",
) -> list[BenchPair]:
    """The benchmark's pairs: every canvas under normal and raking light, then no-change pairs.

    Parameters
    ----------
    size
        Baseline ``(width, height)``.
    paintings
        Albedo photographs; default ``synth.paintings_for(split)`` (the test
        split never sees a training or validation painting).
    min_canvases
        Procedural canvases are added until there are this many canvas slots.
    n_no_change
        Extra pairs without deformation (appearance and pose changes only).
    seed0
        First seed; pair ``k`` uses ``seed0 + k`` (all in the split's seeds);
        default the split's first seed + :data:`SEED0` (1000 for ``test``).
    spread_lamps
        Spread the baseline lamp over all azimuths (pair ``k`` at
        ``k * 137.5 deg``, the golden angle, plus the drawn jitter) instead of
        ``synth.sample_spec``'s mostly-from-the-left draw; the current lamp
        keeps its small drift from the baseline's (issue #10).
    split
        ``test`` (the benchmark, default), ``train`` or ``validation``
        (:data:`SPLIT_SEEDS`, ``synth.paintings_for(split)``): choose settings
        on the latter two, never on ``test``.

    Returns
    -------
    list of BenchPair
        Every third pair (``k % 3 == 2``) is a realism pair (lens distortion,
        vignetting, point lamp, gloss, yellowing, JPEG or 16 bit, drawn by
        ``synth.sample_spec``); no-change pairs alternate plain and realism.
    """
    if split not in SPLIT_SEEDS:
        raise MonitorError(f"bench_pairs: unknown split {split!r}; use train, validation or test")
    seeds = SPLIT_SEEDS[split]
    if seed0 is None:
        seed0 = seeds.start + SEED0
    paintings = list(synth.paintings_for(split) if paintings is None else paintings)
    canvases: list[Path | None] = [*paintings, *[None] * max(0, min_canvases - len(paintings))]
    if not canvases:
        raise MonitorError("bench_pairs: no canvas (min_canvases is 0 and no paintings)")
    jobs: list[tuple[Path | None, bool, bool, bool]] = []
    for canvas in canvases:
        for raking in (False, True):
            jobs.append((canvas, raking, len(jobs) % REALISM_EVERY == REALISM_EVERY - 1, False))
    for j in range(n_no_change):
        jobs.append((canvases[(2 * j + 1) % len(canvases)], j % 2 == 0, j % 2 == 1, True))
    pairs = []
    for k, (canvas, raking, realism, no_change) in enumerate(jobs):
        seed = seed0 + k
        if seed not in seeds:
            raise MonitorError(f"bench_pairs: seed {seed} is outside the {split} seeds")
        stem = "procedural" if canvas is None else canvas.stem
        tags = ["raking" if raking else "normal"]
        tags += ["realism"] if realism else []
        tags += ["nochange"] if no_change else []
        spec = synth.sample_spec(
            seed, painting=canvas, raking=raking, realism=realism, no_change=no_change, size=size
        )
        if spread_lamps:
            b, c = spec.light_baseline, spec.light_current
            az = (k * GOLDEN_DEG + (b.azimuth_deg + 10.0) % 90.0 - 10.0) % 360.0
            spec = replace(
                spec,
                light_baseline=Light(az, b.elevation_deg),
                light_current=Light((az + c.azimuth_deg - b.azimuth_deg) % 360.0,
                                    c.elevation_deg),
            )
        pairs.append(
            BenchPair(
                name=f"{k:02d}-{stem}-{'-'.join(tags)}",
                spec=spec,
                canvas=stem,
                raking=raking,
                realism=realism,
                no_change=no_change,
            )
        )
    return pairs


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class RegionScore:
    """Counts from matching predicted regions with the truth of one pair.

    Every predicted region falls in exactly one of ``matched``, ``duplicates``,
    ``wrong_polarity``, ``fa_discoloration`` and ``fa_other``.
    """

    n_truth: int
    n_pred: int
    matched: int  # truth regions found (a same-polarity centroid inside the mask)
    duplicates: int  # further same-polarity predictions on an already found region
    wrong_polarity: int  # predictions on a deformation with the opposite polarity
    fa_discoloration: int  # predictions on the discoloration (appearance change)
    fa_other: int  # predictions on nothing
    found_any_polarity: int = 0  # truth regions with any predicted centroid inside

    @property
    def recall(self) -> float:
        return self.matched / self.n_truth if self.n_truth else math.nan

    @property
    def precision(self) -> float:
        return self.matched / self.n_pred if self.n_pred else math.nan

    @property
    def f1(self) -> float:
        """``2 TP / (n_truth + n_pred)``; 1 when there is nothing to find and nothing found."""
        total = self.n_truth + self.n_pred
        return 2.0 * self.matched / total if total else 1.0

    @property
    def false_alarms(self) -> int:
        return self.fa_discoloration + self.fa_other

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = asdict(self)
        out.update(
            recall=_r(self.recall), precision=_r(self.precision), f1=_r(self.f1),
            false_alarms=self.false_alarms,
        )
        return out


def _r(v: float | None, nd: int = 4) -> float | None:
    """Round for JSON; NaN / None become None."""
    if v is None or not math.isfinite(v):
        return None
    return round(float(v), nd)


def score_regions(
    predicted: Iterable[tuple[str, tuple[float, float]]],
    labels: np.ndarray,
    truth_polarity: dict[int, str],
    *,
    discoloration_label: int = DISCOLORATION_LABEL,
) -> RegionScore:
    """Match predicted regions with the truth of one pair.

    Parameters
    ----------
    predicted
        ``(polarity, (x, y))`` per predicted region, centroid in corner-origin
        baseline pixels; in the order the method ranks them (most significant first).
    labels
        H x W integer truth labels on the baseline grid: truth-region id,
        ``discoloration_label`` on the discoloration, 0 elsewhere
        (``truth_labels.png`` of :func:`monitor.synth.write_pair`).
    truth_polarity
        Truth-region id -> ``"bulge"`` or ``"recession"``.
    discoloration_label
        Label value of the discoloration.

    Returns
    -------
    RegionScore
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise MonitorError(f"score_regions: labels must be 2-D, got shape {labels.shape}")
    h, w = labels.shape
    found: set[int] = set()
    touched: set[int] = set()
    n_pred = dup = wrong = fa_disc = fa_other = 0
    for polarity, (x, y) in predicted:
        n_pred += 1
        col, row = math.floor(x), math.floor(y)
        lab = int(labels[row, col]) if 0 <= row < h and 0 <= col < w else 0
        if lab in truth_polarity:
            touched.add(lab)
            if truth_polarity[lab] != polarity:
                wrong += 1
            elif lab in found:
                dup += 1
            else:
                found.add(lab)
        elif lab == discoloration_label:
            fa_disc += 1
        else:
            fa_other += 1
    return RegionScore(
        n_truth=len(truth_polarity),
        n_pred=n_pred,
        matched=len(found),
        duplicates=dup,
        wrong_polarity=wrong,
        fa_discoloration=fa_disc,
        fa_other=fa_other,
        found_any_polarity=len(touched),
    )


def change_correlation(change: np.ndarray, truth: np.ndarray) -> float:
    """Pearson correlation of a change map with the true height change over the overlap.

    Parameters
    ----------
    change
        H' x W' float map (NaN outside the overlap), on the analysis grid.
    truth
        H x W true height change on the baseline grid; area-averaged onto the
        change map's grid when the shapes differ.

    Returns
    -------
    float
        NaN when either map is constant over the overlap (e.g. no deformation)
        or fewer than 16 pixels overlap.
    """
    change = np.asarray(change, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float32)
    if change.ndim != 2 or truth.ndim != 2:
        raise MonitorError("change_correlation: both maps must be 2-D")
    if change.shape != truth.shape:
        truth = cv2.resize(truth, (change.shape[1], change.shape[0]), interpolation=cv2.INTER_AREA)
    t = truth.astype(np.float64)
    ok = np.isfinite(change) & np.isfinite(t)
    if ok.sum() < 16:
        return math.nan
    a, b = change[ok], t[ok]
    a, b = a - a.mean(), b - b.mean()
    den = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / den if den > 0 else math.nan


def mapping_errors(
    estimated: Callable[[np.ndarray], np.ndarray],
    truth: Callable[[np.ndarray], np.ndarray],
    baseline_size: tuple[int, int],
    current_size: tuple[int, int],
    *,
    lens: bool,
    n_grid: int = 9,
) -> dict[str, float | None]:
    """Errors of an estimated BASELINE -> CURRENT mapping against the true one.

    Parameters
    ----------
    estimated, truth
        Functions mapping N x 2 baseline points to N x 2 CURRENT points.
    baseline_size, current_size
        ``(width, height)`` of the two scans.
    lens
        Whether the true mapping has lens distortion; then the figure of merit
        (``error_px``) is the grid maximum inside the overlap, else the corner error.
    n_grid
        Grid points per side.

    Returns
    -------
    dict
        ``corner_px`` (max over the 4 baseline corners), ``grid_max_px`` and
        ``grid_rms_px`` (grid points whose true position lies inside CURRENT),
        ``error_px`` (the figure of merit).
    """
    w, h = baseline_size
    cw, ch = current_size
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
    gx, gy = np.meshgrid(np.linspace(0, w, n_grid), np.linspace(0, h, n_grid))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    d_corner = np.hypot(*(estimated(corners) - truth(corners)).T)
    t_grid = truth(grid)
    inside = (t_grid[:, 0] >= 0) & (t_grid[:, 0] <= cw) & (t_grid[:, 1] >= 0) & (t_grid[:, 1] <= ch)
    d_grid = np.hypot(*(estimated(grid[inside]) - t_grid[inside]).T) if inside.any() else None
    corner = float(np.max(d_corner)) if np.all(np.isfinite(d_corner)) else math.inf
    gmax = None if d_grid is None else float(np.max(d_grid))
    grms = None if d_grid is None else float(np.sqrt(np.mean(d_grid**2)))
    return {
        "corner_px": corner,
        "grid_max_px": gmax,
        "grid_rms_px": grms,
        "error_px": (gmax if gmax is not None else math.inf) if lens else corner,
    }


def registration_errors(
    reg: Registration, pair_truth: dict[str, object]
) -> dict[str, float | None]:
    """:func:`mapping_errors` of a `monitor` registration against ``truth.json`` content."""
    hom = np.asarray(pair_truth["homography"], dtype=np.float64)
    k1 = float(pair_truth["lens"]["k1"])  # type: ignore[index]
    bsize = tuple(pair_truth["baseline_size"])  # type: ignore[arg-type]
    csize = tuple(pair_truth["current_size"])  # type: ignore[arg-type]
    return mapping_errors(
        lambda p: _registration.baseline_to_current(p, reg),
        lambda p: synth.baseline_to_current(p, hom, k1, csize),  # type: ignore[arg-type]
        bsize,  # type: ignore[arg-type]
        csize,  # type: ignore[arg-type]
        lens=k1 != 0.0,
    )


# --------------------------------------------------------------------------- configurations


@dataclass(frozen=True)
class Config:
    """One thing to score: a `monitor` configuration or a baseline."""

    label: str
    settings: Settings | None  # None for the naive baseline
    default: bool = False
    skipped: str | None = None  # why it was not run


def local_hf_depth_models() -> list[str]:
    """Hub ids of depth models held in the local Hugging Face cache (nothing is downloaded)."""
    hub = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.expanduser("~/.cache/huggingface")), "hub"
    )
    root = Path(hub)
    if not root.is_dir():
        return []
    found = []
    for d in sorted(root.glob("models--*")):
        repo_id = d.name[len("models--") :].replace("--", "/")
        if "depth" in repo_id.lower() and any(d.glob("snapshots/*/config.json")):
            found.append(repo_id)
    return found


def _depth_names(hf_models: Sequence[str] | None) -> list[str]:
    """Concrete ``--depth`` names: the registry's, with the ``hf:`` family expanded."""
    names: list[str] = []
    for name in known_estimators():
        if name.startswith("hf:") and "<" in name:  # the family placeholder
            models = list(hf_models) if hf_models is not None else local_hf_depth_models()
            names += [f"hf:{m}" for m in models] or [name]
        else:
            names.append(name)
    return names


def configurations(
    only: Sequence[str] | None = None, hf_models: Sequence[str] | None = None
) -> list[Config]:
    """Every change method and depth estimator `monitor` offers, plus the naive baseline.

    Parameters
    ----------
    only
        Labels to keep (e.g. ``["photometric", "naive"]``); default all.
    hf_models
        ``hf:`` depth models to run (hub ids or local folders); default: the depth
        models found in the local Hugging Face cache.

    Returns
    -------
    list of Config
        ``depth:<name>`` for each depth estimator; estimators that cannot be built
        offline (e.g. ``hf:`` models without local weights) come back with
        ``skipped`` set. The configuration equal to ``Settings()`` is marked default.
    """
    default = Settings()
    out: list[Config] = []
    for method in METHODS:
        if method != "depth":
            s = Settings(method=method, scale="grid")
            out.append(Config(method, s, default=(method == default.method
                                                  and scale_route(default) == "grid")))
            if method in ("photometric", "pair"):  # every scale at full resolution (issue #11)
                s = Settings(method=method, scale="auto")
                out.append(Config(f"{method}-multiscale", s,
                                  default=(method == default.method
                                           and scale_route(default) == "auto")))
            continue
        for name in _depth_names(hf_models):
            if "<" in name:
                out.append(Config(f"depth:{name}", None, skipped=(
                    "no hf: depth model weights in the local Hugging Face cache and none "
                    "given (--hf-model ID_OR_PATH); nothing is downloaded")))
                continue
            s = Settings(method="depth", depth=name)
            is_default = default.method == "depth" and default.depth == name
            reason = None
            try:
                get_estimator(name, "cpu")
            except Exception as exc:  # weights absent offline, missing extra, ...
                reason = f"{type(exc).__name__}: {exc}"
            out.append(Config(f"depth:{name}", s, default=is_default, skipped=reason))
    out.append(Config(NAIVE, None))
    if only:
        out = [c for c in out if c.label in set(only)]
    return out


# --------------------------------------------------------------------------- running


@dataclass
class ConfigResult:
    """What one configuration produced on one pair."""

    ok: bool
    error: str | None = None
    seconds: float | None = None
    stages: dict[str, float] = field(default_factory=dict)
    regions: list[dict[str, object]] = field(default_factory=list)
    score: dict[str, object] | None = None
    correlation: float | None = None


def _score_config(
    regions: Sequence[object], change: ChangeMap, labels: np.ndarray, truth: dict[str, object],
    height: np.ndarray,
) -> tuple[dict[str, object], float | None, list[dict[str, object]]]:
    pol = {int(r["id"]): str(r["polarity"]) for r in truth["regions"]}  # type: ignore[index,union-attr]
    preds = [(r.polarity, r.centroid) for r in regions]  # type: ignore[attr-defined]
    score = score_regions(preds, labels, pol)
    corr = change_correlation(change.height, height)
    listed = [
        {"polarity": p, "centroid": [round(c[0], 1), round(c[1], 1)]} for p, c in preds
    ]
    true_peak = {int(r["id"]): float(r["peak"]) for r in truth["regions"]}  # type: ignore[index,union-attr]
    peaks = [getattr(r, "peak", None) for r in regions]
    out = score.to_dict()
    out["peak_ratios"] = [_r(v) for v in peak_ratios(preds, peaks, labels, pol, true_peak)]
    return out, _r(corr), listed


def peak_ratios(
    predicted: Sequence[tuple[str, tuple[float, float]]],
    peaks: Sequence[float | None],
    labels: np.ndarray,
    truth_polarity: dict[int, str],
    truth_peak: dict[int, float],
) -> list[float]:
    """``|reported peak| / |true peak|`` of each found truth region (1 = exact height).

    The match is :func:`score_regions`' (the first same-polarity prediction whose
    centroid lies on the truth region); predictions without a peak are skipped.

    Examples
    --------
    >>> lab = np.zeros((10, 10), np.int32); lab[2:5, 2:5] = 1
    >>> peak_ratios([("bulge", (3.0, 3.0))], [1.5], lab, {1: "bulge"}, {1: 3.0})
    [0.5]
    """
    h, w = labels.shape
    seen: set[int] = set()
    out: list[float] = []
    for (polarity, (x, y)), peak in zip(predicted, peaks, strict=True):
        col, row = math.floor(x), math.floor(y)
        lab = int(labels[row, col]) if 0 <= row < h and 0 <= col < w else 0
        if lab in seen or truth_polarity.get(lab) != polarity or peak is None:
            continue
        seen.add(lab)
        if truth_peak.get(lab):
            out.append(abs(float(peak)) / abs(truth_peak[lab]))
    return out


def light_record(used: LightUsed, truth: Light, truth_current: Light) -> dict[str, object]:
    """The pair estimator against the true lamp, and whether wrong claims are flagged.

    ``used`` is a comparison run with the true lamp given (its ``estimate`` is
    the registered pair's estimate, made whatever was given).
    """
    est = used.estimate
    assert est is not None
    err = angular_difference(est.azimuth_deg, truth.azimuth_deg) if est.known else 180.0
    flags = {}
    for off in (0.0, 90.0, 180.0, 270.0):
        wrong = Light((truth.azimuth_deg + off) % 360.0, truth.elevation_deg)
        flags[int(off)] = compare_light(wrong, est).disagrees
    return {
        "true_azimuth_deg": round(truth.azimuth_deg, 2),
        "estimate_azimuth_deg": None if not est.known else round(est.azimuth_deg, 2),
        "error_deg": round(err, 2),
        "axis_error_deg": round(min(err, 180.0 - err), 2),
        "uncertainty_deg": round(est.azimuth_uncertainty_deg, 2),
        "end_known": est.azimuth_uncertainty_deg < 180.0,
        "confident": est.confident,
        "flag_true": flags[0],
        "flag_90": flags[90] and flags[270],
        "flag_180": flags[180],
        "method": est.method,
    }


def run_pair(
    bp: BenchPair,
    configs: Sequence[Config],
    work: Path,
    log: Callable[[str], None] = print,
    *,
    auto_light: bool = True,
) -> dict[str, object]:
    """Render, write and score one pair with every configuration and baseline.

    Parameters
    ----------
    bp
        The pair.
    configs
        From :func:`configurations`.
    work
        Folder for the pair's files (``work / bp.name``).
    log
        Progress lines.
    auto_light
        Run every configuration a second time without the light
        (``light="auto"``, label suffix :data:`AUTO`).

    Returns
    -------
    dict
        JSON-ready: pair facts, per-configuration results (light given and not
        given), registration errors, the light estimator against the truth.
    """
    t0 = time.perf_counter()
    pair = synth.render_pair(bp.spec)
    fmt = "jpg" if bp.spec.jpeg_quality else "png"
    paths = synth.write_pair(pair, work / bp.name, fmt=fmt)
    truth = json.loads(paths["truth"].read_text(encoding="utf-8"))
    labels = cv2.imread(str(paths["labels"]), cv2.IMREAD_UNCHANGED)
    height = tifffile.imread(paths["height_change"])
    render_s = time.perf_counter() - t0
    light = bp.spec.light_baseline
    info: dict[str, object] = {
        "name": bp.name,
        "canvas": bp.canvas,
        "raking": bp.raking,
        "realism": bp.realism,
        "no_change": bp.no_change,
        "seed": bp.spec.seed,
        "format": fmt if bp.spec.bit_depth == 8 else f"{fmt}16",
        "lens_k1_corner_px": round(bp.spec.lens_k1 * 0.5 * math.hypot(*bp.spec.size), 2),
        "light_baseline": [round(light.azimuth_deg, 2), round(light.elevation_deg, 2)],
        "light_current": [
            round(bp.spec.light_current.azimuth_deg, 2),
            round(bp.spec.light_current.elevation_deg, 2),
        ],
        "n_truth": len(truth["regions"]),
        "truth_kinds": [r["kind"] for r in truth["regions"]],
        "discoloration": truth["discoloration"] is not None,
        "render_s": round(render_s, 2),
    }
    results: dict[str, ConfigResult] = {}
    reg: Registration | None = None
    reg_from = None
    runs = [(cfg, cfg.label, light) for cfg in configs]
    if auto_light:
        runs += [(cfg, cfg.label + AUTO, "auto") for cfg in configs]
    for cfg, label, lamp in runs:
        if cfg.settings is None or cfg.skipped:
            continue
        start = time.perf_counter()
        try:
            comp = compare(paths["baseline"], paths["current"], cfg.settings, light=lamp)
        except Exception as exc:  # a method that raises is recorded, the run goes on
            msg = f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, MonitorError):
                msg += " | " + traceback.format_exc(limit=3).strip().splitlines()[-1]
            results[label] = ConfigResult(ok=False, error=msg)
            log(f"  {label:18s} FAILED {msg}")
            continue
        seconds = time.perf_counter() - start
        score, corr, listed = _score_config(comp.regions, comp.change, labels, truth, height)
        if lamp != "auto" and "light" not in info and comp.light_used is not None:
            info["light"] = light_record(comp.light_used, light, bp.spec.light_current)
        elif lamp == "auto" and comp.light_used is not None:
            info.setdefault("light_used_auto", {})[cfg.label] = {  # type: ignore[index]
                "azimuth_deg": round(comp.light.azimuth_deg, 2),
                "error_deg": round(angular_difference(comp.light.azimuth_deg,
                                                      light.azimuth_deg), 2),
            }
        results[label] = ConfigResult(
            ok=True,
            seconds=round(seconds, 3),
            stages={t.name: round(t.seconds, 3) for t in comp.timings},
            regions=listed,
            score=score,
            correlation=corr,
        )
        if reg is None or (cfg.default and lamp != "auto"):
            reg, reg_from = comp.registration, cfg.label
        log(
            f"  {label:18s} {seconds:6.1f} s  found {score['matched']}/{score['n_truth']}"
            f"  pred {score['n_pred']}  FA {score['false_alarms']}  r={corr}"
        )

    base_px = read_image(paths["baseline"]).pixels
    cur_px = read_image(paths["current"]).pixels
    if any(c.label == NAIVE for c in configs):
        try:
            if reg is None:  # every monitor configuration failed: register for the baseline
                reg = _registration.register(base_px, cur_px)
                reg_from = "register()"
            naive = naive_compare(base_px, cur_px, reg)
            score, corr, listed = _score_config(naive.regions, naive.change, labels, truth, height)
            results[NAIVE] = ConfigResult(
                ok=True, seconds=round(naive.seconds, 3), regions=listed, score=score,
                correlation=corr,
            )
            log(
                f"  {NAIVE:18s} {naive.seconds:6.1f} s  found {score['matched']}/"
                f"{score['n_truth']}  pred {score['n_pred']}  FA {score['false_alarms']}  r={corr}"
            )
        except Exception as exc:
            results[NAIVE] = ConfigResult(ok=False, error=f"{type(exc).__name__}: {exc}")

    registration: dict[str, object] = {"monitor_from": reg_from}
    if reg is not None:
        registration["monitor"] = {
            k: _r(v) for k, v in registration_errors(reg, truth).items()
        }
        registration["monitor"]["n_inliers"] = reg.n_inliers  # type: ignore[index]
        registration["monitor"]["residual_grid"] = reg.residual_grid is not None  # type: ignore[index]
    try:
        sift = sift_homography(base_px, cur_px)
        sreg = sift.as_registration(base_px.shape[:2], cur_px.shape[:2])
        errs = {k: _r(v) for k, v in registration_errors(sreg, truth).items()}
        registration["sift"] = {
            **errs, "n_inliers": sift.n_inliers, "seconds": round(sift.seconds, 3)
        }
    except Exception as exc:
        registration["sift"] = {"error": f"{type(exc).__name__}: {exc}"}
    info["registration"] = registration
    info["results"] = {k: asdict(v) for k, v in results.items()}
    return info


# --------------------------------------------------------------------------- aggregation


def _median(values: Iterable[float | None]) -> float | None:
    v = [x for x in values if x is not None and math.isfinite(x)]
    return statistics.median(v) if v else None


def _mean(values: Iterable[float | None]) -> float | None:
    v = [x for x in values if x is not None and math.isfinite(x)]
    return statistics.fmean(v) if v else None


def aggregate(pairs: Sequence[dict[str, object]], label: str) -> dict[str, object]:
    """Overall figures of one configuration over a list of scored pairs.

    Counts are summed over pairs (micro average); a pair on which the
    configuration failed counts as "nothing found". Appearance false alarms are
    the regions on the discoloration plus every region on a no-change pair.

    Parameters
    ----------
    pairs
        :func:`run_pair` results.
    label
        Configuration label.

    Returns
    -------
    dict
        JSON-ready figures (``None`` where undefined).
    """
    n_truth = n_pred = tp = dup = wrong = fa_disc = fa_other = fa_app = 0
    failed: list[str] = []
    corrs: list[float | None] = []
    ratios: list[float] = []
    secs: list[float | None] = []
    stages: dict[str, list[float]] = {}
    n = 0
    for p in pairs:
        res = p["results"].get(label)  # type: ignore[union-attr]
        if res is None:
            continue
        n += 1
        if not res["ok"]:
            failed.append(f"{p['name']}: {res['error']}")
            n_truth += int(p["n_truth"])  # type: ignore[arg-type]
            continue
        s = res["score"]
        n_truth += s["n_truth"]
        n_pred += s["n_pred"]
        tp += s["matched"]
        dup += s["duplicates"]
        wrong += s["wrong_polarity"]
        fa_disc += s["fa_discoloration"]
        fa_other += s["fa_other"]
        fa_app += s["fa_discoloration"] + (s["fa_other"] if p["no_change"] else 0)
        if not p["no_change"]:
            corrs.append(res["correlation"])
        ratios.extend(v for v in s.get("peak_ratios", []) if v is not None)
        secs.append(res["seconds"])
        for name, v in res["stages"].items():
            stages.setdefault(name, []).append(v)
    on_truth = tp + dup + wrong
    total = n_truth + n_pred
    return {
        "pairs": n,
        "failed": len(failed),
        "errors": failed,
        "n_truth": n_truth,
        "n_pred": n_pred,
        "matched": tp,
        "duplicates": dup,
        "wrong_polarity": wrong,
        "recall": _r(tp / n_truth) if n_truth else None,
        "precision": _r(tp / n_pred) if n_pred else None,
        "f1": _r(2 * tp / total) if total else 1.0,  # nothing to find, nothing found
        "polarity_accuracy": _r((tp + dup) / on_truth) if on_truth else None,
        "false_alarms": fa_disc + fa_other,
        "fa_discoloration": fa_disc,
        "appearance_false_alarms": fa_app,
        "correlation_mean": _r(_mean(corrs)),
        "correlation_median": _r(_median(corrs)),
        "correlation_min": _r(min((c for c in corrs if c is not None), default=math.nan)),
        # reported / true peak height of the found regions (1 = exact)
        "peak_ratio_median": _r(_median(ratios)) if ratios else None,
        "seconds_median": _r(_median(secs), 2),
        "stages_median_s": {k: _r(_median(v), 3) for k, v in stages.items()},
    }


def aggregate_light(pairs: Sequence[dict[str, object]]) -> dict[str, object]:
    """The pair light estimator's azimuth error by elevation class, relief / all pairs."""
    out: dict[str, object] = {}
    for cls in ("normal", "raking", "all"):
        for subset in ("relief", "all"):
            recs = [
                p["light"] for p in pairs
                if "light" in p
                and (cls == "all" or (cls == "raking") == bool(p["raking"]))
                and (subset == "all" or not p["no_change"])
            ]
            if not recs:
                continue
            e = np.asarray([float(r["error_deg"]) for r in recs])  # type: ignore[index]
            known = [r for r in recs if r["end_known"]]  # type: ignore[index]
            ek = [float(r["error_deg"]) for r in known]  # type: ignore[index]
            out[f"{cls}/{subset}"] = {
                "n": len(recs),
                "median": _r(float(np.median(e)), 2),
                "p90": _r(float(np.percentile(e, 90)), 2),
                "worst": _r(float(e.max()), 2),
                "end_known_share": _r(len(known) / len(recs), 3),
                "end_known_median": _r(float(np.median(ek)), 2) if ek else None,
                "end_known_worst": _r(max(ek), 2) if ek else None,
                "flag_90": _r(float(np.mean([r["flag_90"] for r in recs])), 3),  # type: ignore[index]
                "flag_180": _r(float(np.mean([r["flag_180"] for r in recs])), 3),  # type: ignore[index]
                "flag_true": _r(float(np.mean([r["flag_true"] for r in recs])), 3),  # type: ignore[index]
            }
    return out


def _worst(values: Iterable[float | None]) -> float:
    """Largest value; a missing one (failed registration) counts as infinite; NaN if empty."""
    v = [math.inf if x is None else x for x in values]
    return max(v) if v else math.nan


def aggregate_registration(pairs: Sequence[dict[str, object]], which: str) -> dict[str, object]:
    """Median / max registration error of ``monitor`` or ``sift`` over pairs (by lens)."""
    plain = [p["registration"].get(which, {}) for p in pairs if not p["lens_k1_corner_px"]]  # type: ignore[union-attr]
    lens = [p["registration"].get(which, {}) for p in pairs if p["lens_k1_corner_px"]]  # type: ignore[union-attr]
    everything = plain + lens
    errors = [e.get("error_px") for e in everything]
    failed = sum(1 for e in everything if "error" in e or e.get("error_px") is None)
    finite = [e for e in errors if e is not None]
    return {
        "pairs": len(everything),
        "failed": failed,
        "corner_median_px": _r(_median(e.get("corner_px") for e in plain)),
        "corner_max_px": _r(_worst(e.get("corner_px") for e in plain)),
        "lens_grid_median_px": _r(_median(e.get("grid_max_px") for e in lens)),
        "lens_grid_max_px": _r(_worst(e.get("grid_max_px") for e in lens)),
        "error_max_px": _r(max(finite, default=math.nan)) if not failed else None,
        "seconds_median": _r(_median(e.get("seconds") for e in everything), 3),
    }


# --------------------------------------------------------------------------- reporting


def machine_info() -> dict[str, object]:
    """CPU, memory, OS and library versions of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    import torch  # noqa: PLC0415 (heavy; only for the version)

    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    return {
        "cpu": cpu,
        "cores": affinity,
        "memory_gb": mem_gb,
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }


def git_commit() -> str | None:
    """Short commit of the checkout (``+dirty`` when the tree has changes)."""
    try:
        rev = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("+dirty" if dirty else "")


def check_targets(data: dict[str, object]) -> list[dict[str, object]]:
    """Each target of the default configuration with its measured figure and met / NOT met.

    Parameters
    ----------
    data
        The combined document (keys ``accuracy`` and / or ``speed``).

    Returns
    -------
    list of dict
        ``name``, ``target`` (text), ``value`` and ``met`` (True, False, or None
        when not measured).
    """
    acc = data.get("accuracy") or {}
    speed = data.get("speed") or {}
    default_label = acc.get("default")  # type: ignore[union-attr]
    overall = (acc.get("overall") or {}).get(default_label) or {}  # type: ignore[union-attr]
    reg = (acc.get("registration") or {}).get("monitor") or {}  # type: ignore[union-attr]
    out: list[dict[str, object]] = []

    def add(name: str, text: str, value: object, ok: Callable[[float], bool]) -> None:
        met = None if value is None else bool(ok(value))  # type: ignore[arg-type]
        out.append({"name": name, "target": text, "value": value, "met": met})

    add("F1 (regions, all pairs)", f">= {TARGETS['f1']}", overall.get("f1"),
        lambda v: v >= TARGETS["f1"])
    add("polarity accuracy", f">= {TARGETS['polarity_accuracy']}",
        overall.get("polarity_accuracy"), lambda v: v >= TARGETS["polarity_accuracy"])
    add("false alarms on appearance-only changes", "= 0",
        overall.get("appearance_false_alarms"), lambda v: v == 0)
    add("correlation with true height change (mean)", f">= {TARGETS['correlation']}",
        overall.get("correlation_mean"), lambda v: v >= TARGETS["correlation"])
    if reg.get("failed"):
        out.append({"name": "registration error, worst pair (px)",
                    "target": f"<= {TARGETS['registration_error_px']}",
                    "value": f"failed on {reg['failed']} pair(s)", "met": False})
    else:
        add("registration error, worst pair (px)", f"<= {TARGETS['registration_error_px']}",
            reg.get("error_max_px"), lambda v: v <= TARGETS["registration_error_px"])
    sizes = {s.get("label"): s for s in speed.get("sizes", [])}  # type: ignore[union-attr]
    e2e = (sizes.get("24MP") or {}).get("end_to_end_s_median")
    add("24 MP pair end to end, this CPU (s)", f"<= {TARGETS['e2e_24mp_s']:.0f}", e2e,
        lambda v: v <= TARGETS["e2e_24mp_s"])
    rss = (sizes.get("100MP") or {}).get("peak_rss_mb_max")
    add("peak memory at 100 MP (GB)", "<= 6", None if rss is None else round(rss * 2**20 / 1e9, 2),
        lambda v: v * 1e9 <= TARGETS["peak_rss_100mp_bytes"])
    return out


def _fmt(v: object, nd: int = 3) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "inf"
        return f"{v:.{nd}f}"
    return str(v)


def _mb(v: object) -> str:
    return "—" if v is None else f"{float(v):.0f}"  # type: ignore[arg-type]


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c) if not isinstance(c, str) else c for c in r) + " |"
              for r in rows]
    return lines


def render_markdown(data: dict[str, object]) -> str:
    """``docs/benchmarks.md`` from the combined document (accuracy and speed)."""
    lines = [
        "# Benchmarks",
        "",
        "Written by `bench/benchmark.py` (`make bench`, accuracy) and `bench/stages.py`",
        "(`make bench-speed`, speed and memory); all figures are also in",
        "[`benchmarks.json`](benchmarks.json). Do not edit by hand: re-run the commands.",
        "Targets are those of issue 5 for `monitor`'s default configuration (`Settings()`);",
        "the benchmark is never tuned to meet them.",
        "",
        "## Targets (default configuration)",
        "",
    ]
    rows = []
    for t in check_targets(data):
        met = "not measured" if t["met"] is None else ("met" if t["met"] else "**NOT met**")
        rows.append([t["name"], t["target"], _fmt(t["value"]), met])
    lines += _table(["target", "goal", "measured", "status"], rows)
    acc = data.get("accuracy")
    if acc:
        lines += ["", *_accuracy_markdown(acc)]  # type: ignore[arg-type]
    speed = data.get("speed")
    if speed:
        lines += ["", *_speed_markdown(speed)]  # type: ignore[arg-type]
    return "\n".join(lines) + "\n"


def _run_header(run: dict[str, object]) -> list[str]:
    m = run["machine"]
    return [
        f"- command: `{run['command']}`",
        f"- date: {run['date']}, commit {run.get('commit')}",
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB RAM, {m['os']}; "  # type: ignore[index]
        f"Python {m['python']}, torch {m['torch']}, OpenCV {m['opencv']}, "  # type: ignore[index]
        f"GPU: {m['gpu'] or 'none'}; OMP_NUM_THREADS={m['omp_num_threads']}",  # type: ignore[index]
        f"- load average at start / end: {run.get('load_start')} / {run.get('load_end')} "
        "(the machine is shared with other engineers' tests and training: figures "
        "were taken under load)",
        f"- wall time of the run: {run.get('wall_s')} s",
    ]


def _light_markdown(acc: dict[str, object]) -> list[str]:
    """Light given vs not given, side by side, and the light estimator's error table."""
    lines = ["### Light given and light not given (issue #10)", "",
             "Each configuration ran twice on every pair: with the true lamp given, and with",
             "`light=\"auto\"` (estimated from the registered pair). When the estimate knows",
             "the lamp's axis but not which end, or does not trust even the axis, `auto`",
             "refuses (one-line error asking for `--light-azimuth`): such a pair counts as",
             "*refused*, i.e. nothing found.", ""]
    overall = acc["overall"]  # type: ignore[index]
    rows = []
    for label, o in overall.items():  # type: ignore[union-attr]
        a = overall.get(label + AUTO)  # type: ignore[union-attr]
        if label.endswith(AUTO) or a is None:
            continue
        rows.append([label, o["f1"], a["f1"], o["polarity_accuracy"], a["polarity_accuracy"],
                     o["recall"], a["recall"], f"{a['failed']}/{a['pairs']}"])
    lines += _table(["configuration", "F1 given", "F1 auto", "polarity given",
                     "polarity auto", "recall given", "recall auto", "refused (auto)"], rows)
    sub, sub_a = acc.get("subsets") or {}, acc.get("subsets_auto_light") or {}
    if sub_a:
        lines += ["", f"Default configuration (`{acc['default']}`) by subset:", ""]
        rows = [[name, o["pairs"], o["f1"], sub_a[name]["f1"], o["polarity_accuracy"],
                 sub_a[name]["polarity_accuracy"], sub_a[name]["failed"]]
                for name, o in sub.items() if name in sub_a]  # type: ignore[union-attr]
        lines += _table(["subset", "pairs", "F1 given", "F1 auto", "polarity given",
                         "polarity auto", "refused (auto)"], rows)
    est = acc.get("light_estimator") or {}
    if est:
        lines += ["", "Pair light estimator (`monitor.light.estimate_pair_light` on the",
                  "registered pair) against the true baseline lamp, degrees; lamps spread over",
                  "all azimuths. *end known*: share of pairs where the estimate knows which end",
                  "of the axis (else its uncertainty is 180 and `auto` refuses); *flag 90 / 180*:",
                  "share of pairs where a given lamp 90 (both ways) / 180 deg off is flagged;",
                  "*flag true*: the true lamp wrongly flagged.", ""]
        rows = [[k, v["n"], v["median"], v["p90"], v["worst"], v["end_known_share"],
                 v["end_known_median"], v["end_known_worst"], v["flag_90"], v["flag_180"],
                 v["flag_true"]] for k, v in est.items()]  # type: ignore[union-attr]
        lines += _table(["elevation / pairs", "n", "median", "p90", "worst", "end known",
                         "median (end known)", "worst (end known)", "flag 90", "flag 180",
                         "flag true"], rows)
    return lines


def _accuracy_markdown(acc: dict[str, object]) -> list[str]:
    lines = ["## Accuracy", ""]
    lines += _run_header(acc)
    lines += [
        f"- pairs: {acc['n_pairs']} at {acc['size'][0]}x{acc['size'][1]} px "  # type: ignore[index]
        f"({acc['n_realism']} realism, {acc['n_no_change']} without deformation, "
        f"{acc['n_truth']} true deformations); {acc.get('n_canvases')} distinct canvases "
        f"(a procedural canvas is its seed): {', '.join(acc['canvases'])}",  # type: ignore[arg-type]
        "",
        "Region matching: a truth region is found when a predicted region of the same",
        "polarity has its centroid inside it (one-to-one; extra predictions on it are",
        "duplicates and count as false positives). Polarity accuracy: of the predictions",
        "landing on a true deformation, the share with the right polarity. Appearance false",
        "alarms: regions on the discoloration plus every region on a pair without",
        "deformation. Correlation: Pearson, change map vs true height change over the",
        "overlap, pairs with deformations. Peak / true: the found regions' reported peak",
        "height over the true peak (median; 1 = exact). A failed run counts as nothing found.",
        "",
    ]
    rows = []
    for label, o in acc["overall"].items():  # type: ignore[union-attr]
        name = f"**{label}** (default)" if label == acc["default"] else label
        rows.append([
            name, f"{o['pairs'] - o['failed']}/{o['pairs']}", o["recall"], o["precision"],
            o["f1"], o["polarity_accuracy"], o["appearance_false_alarms"], o["false_alarms"],
            o["correlation_mean"], o["correlation_median"], o.get("peak_ratio_median"),
            o["seconds_median"],
        ])
    lines += _table(
        ["configuration", "pairs ok", "recall", "precision", "F1", "polarity acc.",
         "appearance FA", "all FA", "corr. mean", "corr. median", "peak / true (median)",
         "s / pair (median)"],
        rows,
    )
    for c in acc.get("skipped", []):  # type: ignore[union-attr]
        lines.append(f"\nSkipped: `{c['label']}`: {c['reason']}")
    for label, o in acc["overall"].items():  # type: ignore[union-attr]
        if o["errors"]:
            lines.append(f"\nErrors of `{label}` ({o['failed']} pairs), first: `{o['errors'][0]}`")
    lines += [
        "",
        "The naive baseline calls a brighter patch a bulge and a darker one a recession; a",
        "luminance difference cannot tell them apart (a bump under raking light is a",
        "bright/dark pair), which its polarity accuracy shows. It uses `monitor`'s",
        "registration and region rule, so only the change step differs.",
        "",
        f"### Default configuration (`{acc['default']}`) by subset",
        "",
    ]
    rows = []
    for name, o in acc["subsets"].items():  # type: ignore[union-attr]
        rows.append([name, o["pairs"], o["n_truth"], o["recall"], o["precision"], o["f1"],
                     o["polarity_accuracy"], o["appearance_false_alarms"], o["false_alarms"],
                     o["correlation_mean"]])
    lines += _table(["subset", "pairs", "deformations", "recall", "precision", "F1",
                     "polarity acc.", "appearance FA", "all FA", "corr. mean"], rows)
    lines += ["", *_light_markdown(acc)]
    lines += ["", "### Registration", "",
              "Error of the BASELINE -> CURRENT mapping against the truth: at the four baseline",
              "corners for pairs without lens distortion; the largest error over a 9 x 9 grid",
              "inside the overlap for pairs with lens distortion (a homography cannot model it).",
              ""]
    rows = []
    for which, name in (("monitor", "monitor (SIFT+MAGSAC, refinement, residual grid)"),
                        ("sift", "plain full-resolution SIFT + RANSAC homography")):
        r = acc["registration"][which]  # type: ignore[index]
        rows.append([name, f"{r['pairs'] - r['failed']}/{r['pairs']}", r["corner_median_px"],
                     r["corner_max_px"], r["lens_grid_median_px"], r["lens_grid_max_px"],
                     r["seconds_median"]])
    lines += _table(["registration", "pairs ok", "corner median", "corner max",
                     "lens grid median", "lens grid max", "s (median)"], rows)
    lines += ["", "(`monitor`'s time is inside `register` of the stage table below.)", "",
              "### Median stage times per pair (s)", ""]
    stage_names: list[str] = []
    for o in acc["overall"].values():  # type: ignore[union-attr]
        for k in o["stages_median_s"]:
            if k not in stage_names:
                stage_names.append(k)
    rows = [[label, *[o["stages_median_s"].get(k) for k in stage_names], o["seconds_median"]]
            for label, o in acc["overall"].items() if o["stages_median_s"]]  # type: ignore[union-attr]
    lines += _table(["configuration", *stage_names, "total"], rows)
    lines += ["", f"### Per pair, default configuration (`{acc['default']}`)", ""]
    rows = []
    for p in acc["pairs"]:  # type: ignore[union-attr]
        res = p["results"].get(acc["default"]) or {}
        s = res.get("score") or {}
        reg = p["registration"].get("monitor") or {}
        sreg = p["registration"].get("sift") or {}
        rows.append([
            p["name"], p["format"], f"{p['lens_k1_corner_px']:.1f}", p["n_truth"],
            s.get("n_pred", "error" if res and not res.get("ok") else None),
            s.get("matched"), s.get("wrong_polarity"), s.get("false_alarms"),
            res.get("correlation"), reg.get("error_px"), sreg.get("error_px"),
        ])
    lines += _table(["pair", "file", "lens px", "truth", "pred", "found", "wrong pol.", "FA",
                     "corr.", "reg. err px", "SIFT err px"], rows)
    return lines


def _speed_markdown(speed: dict[str, object]) -> list[str]:
    lines = ["## Speed and memory", ""]
    lines += _run_header(speed)
    upscaled = "upscaled" in str(speed["source"])
    lines += [
        f"- pair: {speed['source']}"
        + (", upscaled with cv2.resize INTER_CUBIC and written once as " if upscaled
           else ", written as ")
        + f"{speed['format']}; configuration: {speed['configuration']}",
        "- each run in a fresh Python process; `end to end` = compare + write_outputs inside",
        "  the process, `process` adds interpreter start and imports; peak RSS is the",
        "  process's peak resident memory after each stage (`VmHWM` from /proc: `ru_maxrss`,",
        "  which `Comparison.timings` carry, survives `execve` on Linux and would report",
        "  the parent's size in a child); medians where repeated (all end-to-end times",
        "  of repeated sizes are in the JSON).",
    ]
    lines += [
        "- upscaled pairs are smoother than real scans of that many pixels (no new detail),",
        "  so full-resolution registration refinement may do less work than on a real",
        "  100 MP scan; `found / truth` and the corner error check that the pipeline still",
        "  works at each size (truth scaled from the sample pair).",
    ] if upscaled else [
        "- native renders carry fine detail at every size (blisters, tenting, cupping of",
        "  1.5-5 mm); `found / truth` uses bench/finescale.py's matching; a size whose",
        "  render does not fit in this machine's memory is listed with the reason.",
    ]
    lines += [""]
    stage_names: list[str] = []
    for s in speed["sizes"]:  # type: ignore[union-attr]
        prev = -1  # a stage only one size has (a deeper level) goes after its predecessor
        for k in s.get("stages_s_median", {}):
            if k not in stage_names:
                stage_names.insert(prev + 1, k)
            prev = stage_names.index(k)
    rows = []
    for s in speed["sizes"]:  # type: ignore[union-attr]
        if s.get("error"):
            rows.append([s["label"], f"{s['width']}x{s['height']}", s["error"]]
                        + [None] * (len(stage_names) + 4))
            continue
        rows.append([
            s["label"], f"{s['width']}x{s['height']} ({s['megapixels']:.1f} MP)", s["repeats"],
            *[s["stages_s_median"].get(k) for k in stage_names],
            s["end_to_end_s_median"], s["process_s_median"], _mb(s["peak_rss_mb_max"]),
            s.get("regions_found"), s.get("corner_error_px"),
        ])
    lines += _table(["size", "pixels", "runs", *[f"{k} s" for k in stage_names], "end to end s",
                     "process s", "peak RSS MB", "found / truth", "corner err px"], rows)
    lines += ["", "Peak RSS (MB) of the process after importing `monitor` and after each stage:",
              ""]
    rows = [[s["label"], _mb(s.get("import_rss_mb")),
             *[_mb(s.get("stages_rss_mb", {}).get(k)) for k in stage_names]]
            for s in speed["sizes"] if not s.get("error")]  # type: ignore[union-attr]
    lines += _table(["size", "imports", *stage_names], rows)
    if speed.get("gpu_note"):
        lines += ["", str(speed["gpu_note"])]
    return lines


def _compact(accuracy: dict[str, object]) -> dict[str, object]:
    """The accuracy document without each run's list of predicted regions.

    The lists (thousands of regions for the depth configurations) stay in the
    run's own ``benchmark.json``; the docs copy keeps every figure.
    """
    out = dict(accuracy)
    pairs = []
    for pair in accuracy.get("pairs", []):  # type: ignore[attr-defined]
        pair = dict(pair)
        pair["results"] = {
            label: {k: v for k, v in res.items() if k != "regions"}
            for label, res in pair.get("results", {}).items()
        }
        pairs.append(pair)
    out["pairs"] = pairs
    return out


def update_docs(docs: Path, key: str, payload: dict[str, object]) -> tuple[Path, Path]:
    """Replace ``key`` in ``docs/benchmarks.json`` and re-render ``docs/benchmarks.md``.

    Parameters
    ----------
    docs
        The docs folder.
    key
        ``accuracy`` or ``speed``.
    payload
        The new figures.

    Returns
    -------
    tuple of Path
        The JSON and markdown files written.
    """
    docs.mkdir(parents=True, exist_ok=True)
    jpath, mpath = docs / "benchmarks.json", docs / "benchmarks.md"
    data: dict[str, object] = {}
    if jpath.is_file():
        try:
            data = json.loads(jpath.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            data = {}
    data[key] = _compact(payload) if key == "accuracy" else payload
    data["targets"] = check_targets(data)
    jpath.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    mpath.write_text(render_markdown(data), encoding="utf-8")
    return jpath, mpath


def run_benchmark(
    pairs: Sequence[BenchPair],
    configs: Sequence[Config],
    out: Path,
    *,
    command: str = "",
    log: Callable[[str], None] = print,
    auto_light: bool = True,
) -> dict[str, object]:
    """Score every configuration on every pair; return the ``accuracy`` document.

    Parameters
    ----------
    pairs
        From :func:`bench_pairs`.
    configs
        From :func:`configurations`.
    out
        Output folder (pairs are written under ``out / "pairs"``;
        ``out / "benchmark.json"`` is written at the end).
    command
        The command line, for the record.
    log
        Progress lines.
    auto_light
        Also run every configuration without the light (see :func:`run_pair`).

    Returns
    -------
    dict
        JSON-ready: run facts, per-pair results, overall figures per
        configuration (light given, and light not given), subsets of the
        default configuration, registration, the light estimator's errors.
    """
    if not pairs:
        raise MonitorError("run_benchmark: no pairs")
    start = time.perf_counter()
    load_start = [round(v, 2) for v in os.getloadavg()]
    commit = git_commit()  # the code that runs: a checkout may move while the benchmark runs
    work = out / "pairs"
    done: list[dict[str, object]] = []
    for i, bp in enumerate(pairs, start=1):
        log(f"[{i}/{len(pairs)}] {bp.name}")
        done.append(run_pair(bp, configs, work, log, auto_light=auto_light))
    default = next((c.label for c in configs if c.default), None)
    ran = [c for c in configs if not c.skipped]
    overall = {c.label: aggregate(done, c.label) for c in ran}
    if auto_light:
        overall.update({c.label + AUTO: aggregate(done, c.label + AUTO)
                        for c in ran if c.settings is not None})
    subsets = {
        "all": lambda p: True,
        "normal light": lambda p: not p["raking"],
        "raking light": lambda p: p["raking"],
        "plain": lambda p: not p["realism"],
        "realism": lambda p: p["realism"],
        "paintings": lambda p: p["canvas"] != "procedural",
        "procedural": lambda p: p["canvas"] == "procedural",
        "no deformation": lambda p: p["no_change"],
    }
    sub = {}
    sub_auto = {}
    if default is not None:
        for name, pred in subsets.items():
            chosen = [p for p in done if pred(p)]
            if chosen:
                sub[name] = aggregate(chosen, default)
                if auto_light:
                    sub_auto[name] = aggregate(chosen, default + AUTO)
    first = pairs[0].spec.size
    doc: dict[str, object] = {
        "command": command,
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "machine": machine_info(),
        "load_start": load_start,
        "load_end": [round(v, 2) for v in os.getloadavg()],
        "wall_s": round(time.perf_counter() - start, 1),
        "size": list(first),
        "n_pairs": len(done),
        "n_realism": sum(1 for bp in pairs if bp.realism),
        "n_no_change": sum(1 for bp in pairs if bp.no_change),
        "n_truth": sum(int(p["n_truth"]) for p in done),  # type: ignore[arg-type]
        "canvases": sorted({bp.canvas for bp in pairs}),
        "n_canvases": len({bp.canvas if bp.canvas != "procedural" else bp.spec.seed
                           for bp in pairs}),
        "default": default,
        "configurations": [c.label for c in configs],
        "skipped": [{"label": c.label, "reason": c.skipped} for c in configs if c.skipped],
        "overall": overall,
        "subsets": sub,
        "subsets_auto_light": sub_auto,
        "registration": {
            "monitor": aggregate_registration(done, "monitor"),
            "sift": aggregate_registration(done, "sift"),
        },
        "targets": TARGETS,
        "light_estimator": aggregate_light(done),
        "pairs": done,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmark.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return doc


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, got {text!r}") from exc
    return w, h


def main(argv: list[str] | None = None) -> int:
    """Command line of the accuracy benchmark; returns the exit status.

    Parameters
    ----------
    argv
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 when the run completed (whether or not targets are met), 1 on a MonitorError.
    """
    parser = argparse.ArgumentParser(description="monitor accuracy benchmark")
    parser.add_argument("--size", type=_parse_size, default=DEFAULT_SIZE,
                        help="baseline WIDTHxHEIGHT (default 960x720)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--docs", type=Path, default=None,
                        help="write benchmarks.json / benchmarks.md into this folder")
    parser.add_argument("--max-pairs", type=int, default=None, help="first N pairs only")
    parser.add_argument("--configs", default="", help="comma-separated labels (default all)")
    parser.add_argument("--hf-model", action="append", default=None,
                        help="hf: depth model (hub id in the local cache, or folder); repeatable")
    parser.add_argument("--split", default="test", choices=sorted(SPLIT_SEEDS),
                        help="pairs of this split (default test, the benchmark; choose "
                             "settings on train or validation)")
    parser.add_argument("--no-auto-light", action="store_true",
                        help="run each configuration with the true light only (not also 'auto')")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download weights or data
    command = "python bench/benchmark.py " + " ".join(argv if argv is not None else sys.argv[1:])
    try:
        pairs = bench_pairs(args.size, split=args.split)
        if args.max_pairs:
            pairs = pairs[: args.max_pairs]
        only = [c for c in args.configs.split(",") if c]
        configs = configurations(only or None, args.hf_model)
        doc = run_benchmark(pairs, configs, args.out, command=command.strip(),
                            auto_light=not args.no_auto_light)
    except MonitorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out / 'benchmark.json'}")
    if args.docs:
        jpath, mpath = update_docs(args.docs, "accuracy", doc)
        print(f"wrote {jpath} and {mpath}")
        for t in check_targets(json.loads(jpath.read_text())):
            status = "not measured" if t["met"] is None else ("met" if t["met"] else "NOT met")
            print(f"  {t['name']}: {t['value']} ({t['target']}) {status}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
