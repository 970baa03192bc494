"""Benchmark-like validation of every change method on VALIDATION-seed pairs (never TEST).

Usage::

    OMP_NUM_THREADS=2 .venv/bin/python scripts/validate_methods.py [--pairs 12] [--size 640]
        [--methods photometric,pair,depth:shading,depth:relief] [--realism both]

Each pair is rendered by :func:`monitor.synth.render_pair` from
``synth.sample_spec`` with a seed from ``synth.VALIDATION_SEEDS`` (offset
50 000, away from the seeds the training's validation uses) and the
validation painting or procedural paint, written to image files and run
through :func:`monitor.pipeline.compare` end to end (registration included)
with each method. Prints one row per method: region F1, precision, recall,
share of matched regions with the right polarity, false alarms on no-change
pairs, mean correlation with the true height change, mean seconds per pair.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor import synth  # noqa: E402
from monitor.config import Settings  # noqa: E402
from monitor.pipeline import compare, full_resolution_change  # noqa: E402
from monitor.training import score_regions  # noqa: E402

OFFSET = 50_000


def _settings(method: str) -> Settings:
    if method.startswith("depth:"):
        return Settings(method="depth", depth=method.split(":", 1)[1], device="cpu")
    return Settings(method=method, device="cpu")


def main(argv: list[str] | None = None) -> int:
    """Run the table; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--size", type=int, default=640)
    parser.add_argument("--methods", default="photometric,pair,depth:shading,depth:relief")
    parser.add_argument("--realism", default="both", choices=["no", "yes", "both"])
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    paintings = synth.paintings_for("validation")
    rows: dict[str, list[dict[str, object]]] = {m: [] for m in methods}
    seconds: dict[str, float] = dict.fromkeys(methods, 0.0)
    size = (args.size, round(args.size * 0.75))
    with tempfile.TemporaryDirectory(prefix="validate-") as tmp:
        for i in range(args.pairs):
            seed = synth.VALIDATION_SEEDS.start + OFFSET + i
            realism = {"no": False, "yes": True, "both": i % 2 == 1}[args.realism]
            no_change = i % 4 == 3
            painting = paintings[0] if paintings and i % 3 == 0 else None
            spec = synth.sample_spec(seed, painting=painting, realism=realism,
                                     no_change=no_change, size=size)
            pair = synth.render_pair(spec)
            fmt = "jpg" if spec.jpeg_quality else "png"
            paths = synth.write_pair(pair, Path(tmp) / f"p{i}", fmt=fmt)
            labels = np.zeros(pair.height_change.shape, np.uint8)
            polarity = np.zeros(len(pair.regions) + 1, np.int8)
            for r in pair.regions:
                labels[r.mask] = r.id
                polarity[r.id] = 1 if r.polarity == "bulge" else -1
            for method in methods:
                start = time.perf_counter()
                result = compare(paths["baseline"], paths["current"], _settings(method),
                                 light=spec.light_baseline)
                seconds[method] += time.perf_counter() - start
                row: dict[str, object] = dict(score_regions(result.regions, labels, polarity))
                row["no_change"] = no_change
                row["realism"] = realism
                dh = full_resolution_change(result)
                ok = np.isfinite(dh)
                row["corr"] = (
                    None if no_change
                    else float(np.corrcoef(dh[ok], pair.height_change[ok])[0, 1])
                )
                rows[method].append(row)
            print(f"pair {i + 1}/{args.pairs} seed {seed} realism {realism} "
                  f"no_change {no_change}: "
                  + ", ".join(f"{m} {rows[m][-1]['tp']}/{rows[m][-1]['fp']}/{rows[m][-1]['fn']}"
                              for m in methods), file=sys.stderr, flush=True)
    print(f"{'method':16} {'F1':>6} {'prec':>6} {'recall':>6} {'polar':>6} {'FA/nochg':>9} "
          f"{'corr':>6} {'s/pair':>7}")
    summary = {}
    for method in methods:
        r = rows[method]
        tp = sum(int(x["tp"]) for x in r)  # type: ignore[call-overload]
        fp = sum(int(x["fp"]) for x in r)  # type: ignore[call-overload]
        fn = sum(int(x["fn"]) for x in r)  # type: ignore[call-overload]
        pol = sum(int(x["polarity_ok"]) for x in r)  # type: ignore[call-overload]
        fa = sum(int(x["fp"]) for x in r if x["no_change"])  # type: ignore[call-overload]
        n_nc = sum(1 for x in r if x["no_change"])
        corr = [float(x["corr"]) for x in r if x["corr"] is not None]  # type: ignore[arg-type]
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
        summary[method] = {
            "f1": f1, "precision": tp / (tp + fp) if tp + fp else None,
            "recall": tp / (tp + fn) if tp + fn else None,
            "polarity": pol / tp if tp else None, "false_alarms_no_change": fa,
            "no_change_pairs": n_nc, "corr": float(np.mean(corr)) if corr else None,
            "seconds_per_pair": seconds[method] / max(1, len(r)),
        }
        s = summary[method]

        def f(v: object) -> str:
            return "-" if v is None else f"{v:.3f}"

        print(f"{method:16} {f(s['f1']):>6} {f(s['precision']):>6} {f(s['recall']):>6} "
              f"{f(s['polarity']):>6} {fa:>4}/{n_nc:<4} {f(s['corr']):>6} "
              f"{s['seconds_per_pair']:>7.1f}")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
