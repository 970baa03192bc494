"""False alarms on real photographs of an unchanged surface, lamp moved between the scans.

Usage::

    python bench/leaves_false_alarms.py [--scales grid,auto]

``../shared/real/leaves12``: twelve photographs of one real surface (leaves)
under lamps 30 degrees apart; nothing changed between them. Each neighbouring
pair (1 -> 2, ..., 12 -> 1) is compared with the baseline's nominal lamp given,
once per ``--scale``; every region reported is a false alarm. Prints one line a
pair (polarity, peak, z, level of each region, seconds) and the totals.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from monitor.config import Settings  # noqa: E402
from monitor.pipeline import compare  # noqa: E402
from monitor.results import Light  # noqa: E402

LEAVES = ROOT.parent / "shared" / "real" / "leaves12"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", default="grid,auto")
    args = ap.parse_args(argv)
    if not LEAVES.is_dir():
        print(f"{LEAVES} not found: this benchmark needs ../shared/real/leaves12",
              file=sys.stderr)
        return 1
    scales = args.scales.split(",")
    rows = list(csv.DictReader((LEAVES / "lights.csv").open()))
    total = dict.fromkeys(scales, 0)
    for i, a in enumerate(rows):
        b = rows[(i + 1) % len(rows)]
        line = f"{a['file']} -> {b['file']}"
        for scale in scales:
            t = time.perf_counter()
            c = compare(LEAVES / a["file"], LEAVES / b["file"],
                        Settings(device="cpu", scale=scale),
                        light=Light(float(a["azimuth_deg"]), float(a["elevation_deg"])))
            total[scale] += len(c.regions)
            found = [(r.polarity, round(r.peak, 2), round(r.significance, 1),
                      getattr(r, "level", None)) for r in c.regions]
            line += f" | {scale}: {len(c.regions)} {found} {time.perf_counter() - t:.0f} s"
        print(line, flush=True)
    print("false regions over the", len(rows), "pairs:", total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
