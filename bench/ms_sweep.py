"""Choose ``multiscale_change`` settings on the accuracy benchmark's train / validation pairs.

Usage::

    python bench/ms_sweep.py [--split validation] [--out /tmp/ms_sweep]
                             [--configs '{}' '{"false_alarms": 3}' ...]

Renders the pairs of :func:`bench.benchmark.bench_pairs` for ``--split``
(``train`` or ``validation``: never ``test``, which is what is reported) once,
then runs ``monitor.pipeline.compare`` with ``scale = "auto"`` and the true
light once per configuration, each configuration's keyword arguments given to
:func:`monitor.change.multiscale.multiscale_change` (``"_no_merge": true``: without
the cross-level merge, an ablation), and prints the figures
``bench/benchmark.py`` reports (:func:`bench.benchmark.aggregate`).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from dataclasses import asdict
from pathlib import Path

import cv2
import tifffile

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import benchmark as bm  # noqa: E402
from monitor import synth  # noqa: E402
from monitor.change import multiscale  # noqa: E402
from monitor.config import Settings  # noqa: E402
from monitor.pipeline import compare  # noqa: E402

DEFAULT_CONFIGS = ['{}']


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="validation", choices=("train", "validation"))
    ap.add_argument("--out", type=Path, default=Path("/tmp/ms_sweep"))
    ap.add_argument("--max-pairs", type=int, default=None)
    ap.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS)
    args = ap.parse_args(argv)
    configs = [json.loads(c) for c in args.configs]
    pairs = bm.bench_pairs(bm.DEFAULT_SIZE, split=args.split)[: args.max_pairs or None]
    original, near = multiscale.multiscale_change, multiscale._near
    settings = Settings(method="photometric", scale="auto")
    done: list[dict[str, object]] = []
    for bp in pairs:
        d = args.out / args.split / bp.name
        fmt = "jpg" if bp.spec.jpeg_quality else "png"
        if not (d / "truth.json").exists():
            synth.write_pair(synth.render_pair(bp.spec), d, fmt=fmt)
        truth = json.loads((d / "truth.json").read_text(encoding="utf-8"))
        labels = cv2.imread(str(d / "truth_labels.png"), cv2.IMREAD_UNCHANGED)
        height = tifffile.imread(d / "truth_height_change.tif")
        base, cur = d / f"baseline.{fmt}", d / f"current.{fmt}"
        info: dict[str, object] = {"name": bp.name, "no_change": bp.no_change,
                                   "n_truth": len(truth["regions"]), "results": {}}
        for k, cfg in enumerate(configs):
            kwargs = {key: v for key, v in cfg.items() if not key.startswith("_")}
            multiscale.multiscale_change = functools.partial(original, **kwargs)  # type: ignore[assignment]
            if cfg.get("_no_merge"):  # ablation: no cross-level merge (overlap rule only)
                multiscale._near = lambda *a, **k: False  # type: ignore[assignment]
            try:
                comp = compare(base, cur, settings, light=bp.spec.light_baseline)
            finally:
                multiscale.multiscale_change = original  # type: ignore[assignment]
                multiscale._near = near  # type: ignore[assignment]
            score, corr, listed = bm._score_config(comp.regions, comp.change, labels, truth,
                                                   height)
            info["results"][str(k)] = asdict(bm.ConfigResult(  # type: ignore[index]
                ok=True, regions=listed, score=score, correlation=corr))
            print(f"{bp.name} {json.dumps(cfg)}: found {score['matched']}/{score['n_truth']} "
                  f"pred {score['n_pred']} FA {score['false_alarms']} dup {score['duplicates']} "
                  f"r={corr}", flush=True)
        done.append(info)
    print(f"\n{args.split}, {len(done)} pairs")
    print("| configuration | F1 | recall | precision | false alarms | duplicates | polarity "
          "| r (mean) | peak / true (median) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for k, cfg in enumerate(configs):
        a = bm.aggregate(done, str(k))
        print(f"| {json.dumps(cfg)} | {a['f1']} | {a['recall']} | {a['precision']} | "
              f"{a['false_alarms']} | {a['duplicates']} | {a['polarity_accuracy']} | "
              f"{a['correlation_mean']} | {a['peak_ratio_median']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
