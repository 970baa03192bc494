"""One ``scale = "auto"`` comparison of a rendered pair, end to end, with its stage times.

Usage::

    python bench/profile_auto.py PAIR_DIR [--profile]

``PAIR_DIR`` holds ``baseline.png``, ``current.png``, ``truth.json`` (the true
light) and ``canvas.json`` (``px_per_mm``), as ``bench/finescale.py`` renders
them. Runs :func:`monitor.pipeline.compare` with ``Settings(scale="auto")`` and
:func:`monitor.pipeline.write_outputs`, then prints the end-to-end time, the
process's peak RSS and every stage (seconds / peak RSS MB); ``--profile`` adds
the 30 most expensive functions (cProfile, which slows the run). Wrap it in
``/usr/bin/time -f "%e s %U user %S sys %M KB"`` for CPU time and ``VmHWM``.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    from monitor.config import Settings
    from monitor.pipeline import compare, peak_rss_mb, write_outputs
    from monitor.results import Light

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pair", type=Path)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args(argv)
    lb = json.loads((args.pair / "truth.json").read_text())["light_baseline"]
    ppm = json.loads((args.pair / "canvas.json").read_text())["px_per_mm"]
    prof = cProfile.Profile() if args.profile else None
    start = time.perf_counter()
    if prof:
        prof.enable()
    comp = compare(args.pair / "baseline.png", args.pair / "current.png",
                   Settings().replace(scale="auto"),
                   light=Light(lb["azimuth_deg"], lb["elevation_deg"]), px_per_mm=ppm)
    mid = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        write_outputs(comp, Path(tmp) / "out")
    end = time.perf_counter()
    if prof:
        prof.disable()
    print(f"compare {mid - start:.1f} s, write {end - mid:.1f} s, end to end {end - start:.1f} s, "
          f"peak RSS {peak_rss_mb():.0f} MB, {len(comp.regions)} regions")
    print(" ".join(f"{t.name}:{t.seconds:.1f}/{t.peak_rss_mb:.0f}" for t in comp.timings))
    if prof:
        pstats.Stats(prof).sort_stats("tottime").print_stats(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
