"""Time the viewer's Deep Zoom pyramid of one scan: the sample (1280 x 960) and a 24 MP upscale.

Usage::

    python bench/web_tiles.py [--sample DIR]

The 24 MP image is the sample baseline upscaled (Lanczos) to 5657 x 4243 and
written as PNG into a temporary folder; each pyramid is built into a fresh
temporary home (the first, uncached call), then asked for again (cached).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from monitor.web import tiles

ROOT = Path(__file__).resolve().parents[1]


def time_pyramid(path: Path) -> tuple[float, float, int]:
    """(seconds to build, seconds when cached, number of tiles) for one image file."""
    with tempfile.TemporaryDirectory() as home:
        key = tiles.recipe_key({"kind": "bench", "path": str(path)})
        t0 = time.perf_counter()
        tiles.ensure_pyramid(Path(home), key, lambda: tiles.scan_image(path))
        built = time.perf_counter() - t0
        t0 = time.perf_counter()
        tiles.ensure_pyramid(Path(home), key, lambda: tiles.scan_image(path))
        again = time.perf_counter() - t0
        n = sum(1 for _ in (tiles.cache_dir(Path(home)) / key).rglob("*.jpeg"))
    return built, again, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=Path, help="folder with baseline.png (else rendered)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sample = args.sample
        if sample is None:
            sample = Path(tmp) / "sample"
            subprocess.run([sys.executable, str(ROOT / "sample_data" / "generate.py"), "--out",
                            str(sample)], check=True, capture_output=True)
        base = sample / "baseline.png"
        big = Path(tmp) / "big.png"
        Image.open(base).convert("RGB").resize((5657, 4243), Image.Resampling.LANCZOS).save(big)
        for name, path in (("sample", base), ("24 MP", big)):
            w, h = Image.open(path).size
            built, again, n = time_pyramid(path)
            print(f"{name:7s} {w} x {h} ({w * h / 1e6:.1f} MP): built in {built:.2f} s "
                  f"({n} tiles), cached {1000 * again:.1f} ms")


if __name__ == "__main__":
    main()
