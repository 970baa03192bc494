"""Render THE sample pair of ``monitor`` (see README.md in this folder).

Usage::

    .venv/bin/python sample_data/generate.py [--out DIR] [--seed N]

Writes ``baseline.png``, ``current.png``, ``truth.json``,
``truth_height_change.tif`` and ``truth_labels.png`` into ``DIR`` (default: the
folder this script lives in). The pair is a pure function of the seed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

try:
    from monitor.errors import MonitorError
    from monitor.synth import demo_spec, render_pair, write_pair
except ImportError:  # run from a checkout without the package installed
    sys.path.insert(0, str(HERE.parent))
    from monitor.errors import MonitorError
    from monitor.synth import demo_spec, render_pair, write_pair


def main(argv: list[str] | None = None) -> int:
    """Render and write the sample pair; returns the process exit status.

    Parameters
    ----------
    argv
        Command-line arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 1 on a :class:`~monitor.errors.MonitorError`.
    """
    parser = argparse.ArgumentParser(description="Render the monitor sample pair.")
    parser.add_argument(
        "--out", type=Path, default=HERE, help="output folder (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=1, help="render seed (default: %(default)s)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        pair = render_pair(demo_spec(seed=args.seed))
        paths = write_pair(pair, args.out, fmt="png")
    except MonitorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - start
    h, w = pair.baseline.shape[:2]
    print(f"sample pair {w}x{h}, seed {args.seed}, {elapsed:.1f} s")
    for key, path in paths.items():
        print(f"  {key:14s} {path}  ({path.stat().st_size / 1e6:.2f} MB)")
    for r in pair.regions:
        print(
            f"  region {r.id}: {r.kind:9s} centroid ({r.centroid[0]:.0f}, {r.centroid[1]:.0f})"
            f"  peak {r.peak:+.2f} px  max slope {r.max_slope:.3f}"
        )
    if pair.discoloration is not None:
        d = pair.discoloration
        print(
            f"  discoloration: {d.kind} centroid ({d.centroid[0]:.0f}, {d.centroid[1]:.0f})"
            f"  factors {tuple(round(f, 2) for f in d.factors)} (not a relief change)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
