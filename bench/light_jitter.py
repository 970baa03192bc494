"""How the change methods degrade when told a wrong lamp (issue #10 item 4).

Usage::

    .venv/bin/python bench/light_jitter.py [--size 960x720] [--offsets 0,10,-10,20,-20]
        [--models v1=PATH,v2=PATH] [--max-pairs N] [--json out.json]

Renders the accuracy benchmark's pairs (:func:`bench.benchmark.bench_pairs`:
TEST split only, lamps spread over all azimuths, normal and raking light,
realism and no-change pairs), warps CURRENT onto BASELINE with the true
mapping (registration is not what is measured here), and runs the
``photometric`` method and each given pair network with the TRUE baseline
light rotated by every offset (degrees; ``0`` is the exact light). Regions are
cut as :func:`monitor.pipeline.compare` cuts them (default
:class:`monitor.config.Settings`) and scored with the benchmark's
:func:`bench.benchmark.score_regions` / :func:`bench.benchmark.aggregate`
(recall, precision, F1, polarity accuracy, false alarms).

``--models`` defaults to the shipped weights (``shipped=monitor/weights/pair.safetensors``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.benchmark import (  # noqa: E402
    DEFAULT_SIZE,
    DISCOLORATION_LABEL,
    aggregate,
    bench_pairs,
    score_regions,
)
from monitor import synth  # noqa: E402
from monitor.change.methods import photometric_change  # noqa: E402
from monitor.change.pair import PAIR_WEIGHTS, load_pair_model, pair_change  # noqa: E402
from monitor.config import Settings  # noqa: E402
from monitor.errors import MonitorError  # noqa: E402
from monitor.io import to_linear  # noqa: E402
from monitor.regions import find_regions  # noqa: E402
from monitor.results import ChangeMap, Light, height_units  # noqa: E402


def _registered(pair: synth.SynthPair) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    base = to_linear(pair.baseline)
    cur = to_linear(pair.current)
    h, w = base.shape[:2]
    warped = synth.warp_current_to_baseline(
        cur, pair.homography, pair.lens_k1, (w, h), interpolation=cv2.INTER_CUBIC
    )
    valid = np.isfinite(warped).all(axis=2)
    return base, np.nan_to_num(warped).astype(np.float32), valid


def _labels(pair: synth.SynthPair) -> tuple[np.ndarray, dict[int, str]]:
    labels = np.zeros(pair.height_change.shape, np.int32)
    if pair.discoloration is not None:
        labels[pair.discoloration.mask] = DISCOLORATION_LABEL
    for r in pair.regions:
        labels[r.mask] = r.id
    return labels, {r.id: r.polarity for r in pair.regions}


def _score(change: ChangeMap, labels: np.ndarray, pol: dict[int, str], settings: Settings,
           seconds: float) -> dict[str, object]:
    in_px = height_units(change.method, change.model_id) == "px"
    regions = find_regions(
        change, z=settings.significance_z, min_diameter_frac=settings.min_region_frac,
        min_height=settings.min_height_change if in_px else 0.0,
    )
    score = score_regions([(r.polarity, r.centroid) for r in regions], labels, pol)
    return {"ok": True, "score": score.to_dict(), "correlation": None, "seconds": seconds,
            "stages": {}}


def run(size: tuple[int, int], offsets: list[float], models: dict[str, Path],
        max_pairs: int | None, log=print) -> dict[str, object]:  # noqa: ANN001
    """Render, run and score; returns JSON-ready per-pair results and the aggregates."""
    settings = Settings()
    nets = {name: load_pair_model(path=path) for name, path in models.items()}
    methods = ["photometric", *[f"pair {n}" for n in nets]]
    pairs = bench_pairs(size)[: max_pairs or None]
    scored: list[dict[str, object]] = []
    for bp in pairs:
        t0 = time.perf_counter()
        pair = synth.render_pair(bp.spec)
        base, cur, valid = _registered(pair)
        labels, pol = _labels(pair)
        true = bp.spec.light_baseline
        results: dict[str, object] = {}
        for off in offsets:
            told = Light((true.azimuth_deg + off) % 360.0, true.elevation_deg)
            for m in methods:
                start = time.perf_counter()
                if m == "photometric":
                    change = photometric_change(base, cur, valid, told)
                else:
                    change = pair_change(base, cur, valid, told, model=nets[m.split(" ", 1)[1]])
                results[f"{m} @ {off:+g}"] = _score(
                    change, labels, pol, settings, time.perf_counter() - start
                )
        scored.append({"name": bp.name, "no_change": bp.no_change, "n_truth": len(pol),
                       "results": results})
        log(f"{bp.name}: {time.perf_counter() - t0:.1f} s")
    table = {}
    for m in methods:
        for off in offsets:
            label = f"{m} @ {off:+g}"
            a = aggregate(scored, label)
            table[label] = {k: a[k] for k in ("pairs", "n_truth", "n_pred", "matched", "recall",
                                               "precision", "f1", "polarity_accuracy",
                                               "false_alarms", "appearance_false_alarms")}
    return {"size": list(size), "offsets_deg": offsets,
            "models": {k: str(v) for k, v in models.items()},
            "model_sha256": {k: n.sha256 for k, n in nets.items()}, "table": table,
            "pairs": scored}


def markdown(data: dict[str, object]) -> str:
    """The table as markdown (one row per method and offset)."""
    rows = ["| method | light offset (deg) | F1 | precision | recall | polarity | false alarms |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for label, a in data["table"].items():  # type: ignore[union-attr]
        m, off = label.split(" @ ")
        rows.append(f"| {m} | {off} | {a['f1']} | {a['precision']} | {a['recall']} | "
                    f"{a['polarity_accuracy']} | {a['false_alarms']} |")
    return "\n".join(rows)


def _size(text: str) -> tuple[int, int]:
    w, h = (int(v) for v in text.lower().split("x"))
    return w, h


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--size", type=_size, default=DEFAULT_SIZE)
    p.add_argument("--offsets", default="0,10,-10,20,-20")
    p.add_argument("--models", default=f"shipped={PAIR_WEIGHTS}")
    p.add_argument("--max-pairs", type=int, default=None)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    try:
        offsets = [float(v) for v in args.offsets.split(",")]
        models = {k: Path(v) for k, v in (item.split("=", 1) for item in args.models.split(","))}
        data = run(args.size, offsets, models, args.max_pairs)
    except (MonitorError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        args.json.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(markdown(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
