"""Choose multiscale thresholds on the fine-scale pairs of one split (never tune on test).

Usage::

    python bench/finescale_sweep.py [--split train] [--size 6MP]
                                    [--configs '{"z": 7}' '{"z": 10}' ...]

Uses the pairs ``bench/finescale.py`` rendered for that split and size (run it
first); each pair is registered and warped once (cached as ``.npz`` beside the
pair), then :func:`monitor.change.multiscale.multiscale_change` runs with each
configuration's keyword arguments and is scored as ``bench/finescale.py``
scores (per size class). Prints one line per pair and configuration, then the
totals.

``--method pair`` sweeps :func:`monitor.change.pair_multiscale.pair_multiscale_change`
instead (the shipped pair weights): each pair's level maps from the net are
computed once and reused by every configuration; a configuration's
``"regions"`` entry holds :class:`monitor.change.multiscale.RegionParams` fields.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

DEFAULT_CONFIGS = ['{"z": 7.0}', '{"z": 9.0}', '{"z": 10.0}', '{"z": 11.0}',
                   '{"z": 7.0, "false_alarms": 1.0}']


def _pair_sweeper():  # type: ignore[no-untyped-def]
    """``pair_multiscale_change`` with the shipped net whose level maps are memoised.

    The net's maps of a level depend on the pair and the level only, not on the
    detection settings swept, so each is computed once.
    """
    from monitor.change import pair_multiscale as pms
    from monitor.change.multiscale import RegionParams
    from monitor.change.pair import load_pair_model

    net = load_pair_model()
    original = pms.pair_level
    memo: dict[tuple[int, tuple[int, int], float], tuple] = {}

    def cached(model, pair, light, **kw):  # type: ignore[no-untyped-def]
        key = (int(pair.baseline[::97, ::89].sum() * 1e3),
               pair.shape, light.azimuth_deg)
        if key not in memo:
            if len(memo) > 8:  # one pair's levels at a time
                memo.clear()
            memo[key] = original(model, pair, light, **kw)
        return tuple(m.copy() for m in memo[key])

    pms.pair_level = cached  # type: ignore[assignment]

    def run(b, w, v, light, *, px_per_mm, **cfg):  # type: ignore[no-untyped-def]
        cfg = dict(cfg)
        if "regions" in cfg:
            cfg["regions"] = RegionParams(**cfg["regions"])
        return pms.pair_multiscale_change(b, w, v, light, model=net, px_per_mm=px_per_mm, **cfg)

    return run


def main(argv: list[str] | None = None) -> int:
    import numpy as np
    from finescale import _match, _scores

    from monitor.change.multiscale import multiscale_change
    from monitor.config import Settings
    from monitor.io import read_image, to_linear
    from monitor.registration import register, warp_to_baseline
    from monitor.results import Light

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="train", choices=("train", "test"))
    ap.add_argument("--size", default="6MP")
    ap.add_argument("--cache", type=Path, default=ROOT / "bench" / "out" / "finescale" / "cache")
    ap.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS)
    ap.add_argument("--method", default="photometric", choices=("photometric", "pair"))
    args = ap.parse_args(argv)
    change = multiscale_change if args.method == "photometric" else _pair_sweeper()
    configs = [json.loads(c) for c in args.configs]
    pairs = sorted((args.cache / args.size).glob(f"{args.split}-*"))
    if not pairs:
        print(f"no {args.split} pairs in {args.cache / args.size}: run bench/finescale.py first",
              file=sys.stderr)
        return 1
    zero = {"tp": 0, "fn": 0, "fp": 0, "pol_ok": 0}
    totals: list[dict[str, dict[str, int]]] = [
        {c: dict(zero) for c in ("small", "large")} for _ in configs
    ]
    s = Settings()
    for d in pairs:
        npz = d / "registered.npz"
        if not npz.exists():
            bi, ci = read_image(d / "baseline.png"), read_image(d / "current.png")
            reg = register(bi.pixels, ci.pixels, max_px=s.registration_max_px,
                           min_inliers=s.registration_min_inliers, residual_grid=s.residual_grid)
            base = to_linear(bi.pixels)
            warped, valid = warp_to_baseline(to_linear(ci.pixels), reg, out_shape=base.shape[:2])
            np.savez(npz, b=base, w=warped, v=valid)
        data = np.load(npz)
        truth = json.loads((d / "truth.json").read_text())
        lb = truth["light_baseline"]
        ppm = json.loads((d / "canvas.json").read_text())["px_per_mm"]
        for k, cfg in enumerate(configs):
            out = change(data["b"], data["w"], data["v"],
                         Light(lb["azimuth_deg"], lb["elevation_deg"]), px_per_mm=ppm, **cfg)
            counts = _match(truth["regions"], [r.to_dict() for r in out.regions], ppm)
            for c in counts:
                for key in counts[c]:
                    totals[k][c][key] += counts[c][key]
            print(d.name, json.dumps(cfg), json.dumps(counts), flush=True)
    print(f"\n{args.size} {args.split}, {len(pairs)} pairs")
    print("| configuration | class | recall | precision | F1 | tp/fp/fn |")
    print("|---|---|---|---|---|---|")
    for cfg, tot in zip(configs, totals, strict=True):
        for c, tally in tot.items():
            sc = _scores(tally)
            print(f"| {json.dumps(cfg)} | {c} | {sc['recall']:.2f} | {sc['precision']:.2f} | "
                  f"{sc['f1']:.2f} | {sc['tp']}/{sc['fp']}/{sc['fn']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
