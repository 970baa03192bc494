"""Same-session before / after timing of one ``--scale auto`` comparison, with the outputs compared.

Usage::

    python bench/speed_ab.py PAIR_DIR --old OLD_CHECKOUT [--new NEW_CHECKOUT] [--runs 2]
                             [--out /tmp/speed_ab]

``PAIR_DIR`` holds ``baseline.png``, ``current.png``, ``truth.json`` and
``canvas.json`` as ``bench/finescale.py`` (and ``bench/stages.py --source
native``) render them; ``OLD_CHECKOUT`` is a source tree of the code to compare
against (e.g. ``git archive <commit> | tar -x -C /tmp/old``), ``NEW_CHECKOUT``
defaults to this one. The two versions run alternately (old, new, old, new,
...), each in a fresh process that imports ``monitor`` from its own tree, runs
:func:`monitor.pipeline.compare` with ``Settings(scale="auto")`` and the pair's
true light and px/mm, then :func:`monitor.pipeline.write_outputs`. Printed per
run: wall seconds, the process's CPU seconds (user + sys, ``os.times``), CPU
seconds per top-level stage and the peak RSS; then the medians, and whether the
two versions' outputs agree: JSON files equal (timings and version left out),
``change.tif`` values equal (NaN = NaN), PNG pixels equal. On a shared machine
the CPU figures are the ones to compare: wall time follows the load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def child(tree: Path, pair: Path, out: Path) -> dict[str, Any]:
    """One comparison with ``monitor`` imported from ``tree`` (the ``--child`` mode)."""
    sys.path.insert(0, str(tree))
    import monitor

    if not Path(monitor.__file__).resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"monitor imported from {monitor.__file__}, not from {tree}")
    from monitor.config import Settings
    from monitor.pipeline import compare, peak_rss_mb, write_outputs
    from monitor.results import Light

    lb = json.loads((pair / "truth.json").read_text())["light_baseline"]
    ppm = float(json.loads((pair / "canvas.json").read_text())["px_per_mm"])
    marks: list[tuple[str, float]] = []

    def cpu() -> float:
        t = os.times()
        return t.user + t.system

    def progress(name: str, _frac: float) -> None:
        marks.append((name, cpu()))

    c0, w0 = cpu(), time.perf_counter()
    comp = compare(pair / "baseline.png", pair / "current.png", Settings().replace(scale="auto"),
                   light=Light(lb["azimuth_deg"], lb["elevation_deg"]), px_per_mm=ppm,
                   progress=progress)
    marks.append(("write", cpu()))
    write_outputs(comp, out)
    c1, w1 = cpu(), time.perf_counter()
    marks.append(("end", c1))
    stages: dict[str, float] = {}
    for (name, a), (_, b) in zip(marks, marks[1:], strict=False):
        if name == "done":
            continue
        key = name if name not in stages else f"{name} 2"
        stages[key] = round(b - a, 2)
    return {"wall_s": round(w1 - w0, 2), "cpu_s": round(c1 - c0, 2), "cpu_stages": stages,
            "peak_rss_mb": round(peak_rss_mb()), "regions": len(comp.regions)}


def same_outputs(a: Path, b: Path) -> list[str]:
    """Names of the output files whose content differs (empty: the same results)."""
    import cv2
    import numpy as np
    import tifffile

    diff = []
    for pa in sorted(a.iterdir()):
        pb = b / pa.name
        if not pb.is_file():
            diff.append(pa.name)
            continue
        if pa.suffix == ".json":
            ja, jb = (json.loads(p.read_text()) for p in (pa, pb))
            for j in (ja, jb):
                if isinstance(j, dict):
                    for key in ("software_version", "timings", "created"):
                        j.pop(key, None)
            same = ja == jb
        elif pa.suffix == ".tif":
            same = bool(np.array_equal(tifffile.imread(pa), tifffile.imread(pb), equal_nan=True))
        else:
            xa, xb = (cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in (pa, pb))
            same = xa is not None and xb is not None and np.array_equal(xa, xb)
        if not same:
            diff.append(pa.name)
    return diff


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pair", type=Path)
    ap.add_argument("--old", type=Path, required=False)
    ap.add_argument("--new", type=Path, default=ROOT)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("/tmp/speed_ab"))
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.pair, args.child_out)))
        return 0
    if args.old is None:
        ap.error("--old is required")
    results: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
    for i in range(args.runs):
        for label, tree in (("old", args.old), ("new", args.new)):
            out = args.out / label
            if out.exists():
                subprocess.run(["rm", "-rf", str(out)], check=True)
            load = os.getloadavg()[0]
            proc = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), str(args.pair), "--child",
                 str(tree), "--child-out", str(out)],
                capture_output=True, text=True, check=False,
                env={**os.environ, "PYTHONPATH": str(tree)},
            )
            if proc.returncode != 0:
                print(proc.stderr[-2000:], file=sys.stderr)
                return 1
            run = json.loads(proc.stdout.strip().splitlines()[-1])
            run["load"] = round(load, 1)
            results[label].append(run)
            print(f"{label} run {i + 1} (load {load:.1f}): wall {run['wall_s']} s, "
                  f"CPU {run['cpu_s']} s, peak RSS {run['peak_rss_mb']} MB, "
                  f"{run['regions']} regions, CPU by stage {run['cpu_stages']}", flush=True)
    for label, runs in results.items():
        stages = {k: statistics.median(r["cpu_stages"].get(k, 0.0) for r in runs)
                  for k in runs[0]["cpu_stages"]}
        print(f"{label}: median wall {statistics.median(r['wall_s'] for r in runs):.1f} s, "
              f"median CPU {statistics.median(r['cpu_s'] for r in runs):.2f} s, "
              f"CPU by stage {json.dumps({k: round(v, 2) for k, v in stages.items()})}")
    diff = same_outputs(args.out / "old", args.out / "new")
    print("outputs: the same" if not diff else f"outputs DIFFER: {', '.join(diff)}")
    return 0 if not diff else 2


if __name__ == "__main__":
    raise SystemExit(main())
