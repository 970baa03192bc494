"""Accuracy of the lamp estimator (:mod:`monitor.light`) on test renders and real photos.

Usage::

    .venv/bin/python bench/light_eval.py [--size 400x300] [--per-class 8] [--json out.json]

Renders pairs with :mod:`monitor.synth` over the TEST split only (``--split
validation`` checks the estimator's thresholds on the validation painting and
seeds instead)
(``synth.paintings_for("test")`` plus procedural canvases, seeds from
``synth.TEST_SEEDS``), with the baseline lamp spread over all azimuths
(``--per-class`` evenly spaced azimuths per canvas and elevation class, offset
per canvas) at normal (35-60 deg) and raking (10-30 deg) elevation; every
fourth pair has no deformation and every third is a realism pair (lens,
vignetting, point lamp, gloss, yellowing, JPEG or 16 bit, drawn by
``synth.sample_spec``). CURRENT is warped onto BASELINE with the true mapping.

Prints, per elevation class and estimator (per scan on the baseline, pair):
azimuth error median / 90th percentile / worst (all pairs, and pairs with
relief change), the share of confident estimates, how often a given azimuth
off by 90 or 180 deg is flagged by ``compare_light`` and how often the true
one is wrongly flagged; then the leaves12 photographs (estimate vs nominal vs
shadow-measured) and timings, including one 24 MP scan.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from monitor import synth  # noqa: E402
from monitor.errors import MonitorError  # noqa: E402
from monitor.io import read_image, to_linear  # noqa: E402
from monitor.light import (  # noqa: E402
    angular_difference,
    compare_light,
    estimate_pair_light,
    estimate_scan_light,
)
from monitor.results import Light, LightEstimate  # noqa: E402

SEED0 = 20_000  # every seed used is in synth.TEST_SEEDS
LEAVES = ROOT.parent / "shared" / "real" / "leaves12"
CLASSES = {"normal": (35.0, 60.0), "raking": (10.0, 30.0)}


SPLIT_SEEDS = {"test": synth.TEST_SEEDS, "validation": synth.VALIDATION_SEEDS}


def eval_pairs(
    size: tuple[int, int], per_class: int, n_procedural: int, split: str = "test"
) -> list[dict[str, object]]:
    """Render the eval pairs and run both estimators; one record per pair.

    ``split="validation"`` (Turner + procedural, validation seeds) is where the
    thresholds of :mod:`monitor.light` are checked; ``test`` is what is reported.
    """
    seeds = SPLIT_SEEDS[split]
    canvases: list[Path | None] = [*synth.paintings_for(split), *[None] * n_procedural]
    records: list[dict[str, object]] = []
    k = 0
    for ci, canvas in enumerate(canvases):
        for cls, (lo, hi) in CLASSES.items():
            for j in range(per_class):
                seed = seeds.start + SEED0 + k
                if seed not in seeds:
                    raise MonitorError(f"seed {seed} outside the {split} seeds")
                rng = np.random.default_rng([seed, 17])
                az = (360.0 * j / per_class + 13.0 * ci + rng.uniform(-5, 5)) % 360.0
                el = float(rng.uniform(lo, hi))
                realism = k % 3 == 2
                no_change = k % 4 == 3
                spec = synth.sample_spec(
                    seed,
                    painting=canvas,
                    raking=cls == "raking",
                    realism=realism,
                    no_change=no_change,
                    size=size,
                )
                spec = dataclasses.replace(
                    spec,
                    light_baseline=Light(az, el),
                    light_current=Light(
                        (az + rng.uniform(-3, 3)) % 360.0,
                        float(np.clip(el + rng.uniform(-1.5, 1.5), 5, 89)),
                    ),
                )
                pair = synth.render_pair(spec)
                base = to_linear(pair.baseline)
                cur = synth.warp_current_to_baseline(
                    to_linear(pair.current), pair.homography, pair.lens_k1, size
                )
                t0 = time.perf_counter()
                scan = estimate_scan_light(base)
                t1 = time.perf_counter()
                both = estimate_pair_light(base, cur)
                t2 = time.perf_counter()
                rec: dict[str, object] = {
                    "seed": seed,
                    "canvas": "procedural" if canvas is None else canvas.stem,
                    "class": cls,
                    "azimuth": az,
                    "elevation": el,
                    "realism": realism,
                    "relief": not no_change,
                    "t_scan": t1 - t0,
                    "t_pair": t2 - t1,
                }
                for name, est in (("scan", scan), ("pair", both)):
                    rec[name] = _score(est, Light(az, el))
                records.append(rec)
                k += 1
    return records


def _score(est: LightEstimate, truth: Light) -> dict[str, object]:
    err = angular_difference(est.azimuth_deg, truth.azimuth_deg) if est.known else 180.0
    flags = {}
    for off in (0.0, 90.0, 180.0, 270.0):
        wrong = Light((truth.azimuth_deg + off) % 360.0, truth.elevation_deg)
        flags[int(off)] = compare_light(wrong, est).disagrees
    axis_err = min(err, 180.0 - err)
    return {
        "error": err,
        "axis_error": axis_err,
        "confident": est.confident,
        "confidence": est.confidence,
        "uncertainty": est.azimuth_uncertainty_deg,
        "flag_true": flags[0],
        "flag_90": flags[90] and flags[270],
        "flag_180": flags[180],
        "sign_evidence": est.sign_evidence,
        "axis_uncertainty": est.axis_uncertainty_deg,
    }


def _stats(errors: list[float]) -> str:
    if not errors:
        return f"{'-':>6} {'-':>6} {'-':>6}"
    e = np.asarray(errors)
    return f"{np.median(e):6.1f} {np.percentile(e, 90):6.1f} {e.max():6.1f}"


def print_table(records: list[dict[str, object]]) -> dict[str, object]:
    """Print the error table; return its figures."""
    out: dict[str, object] = {}
    head = (
        f"{'class':7s} {'estimator':9s} {'subset':7s} {'n':>3s} {'median':>6s} {'p90':>6s} "
        f"{'worst':>6s} {'conf%':>5s} {'c.med':>6s} {'c.wst':>6s} "
        f"{'f90%':>5s} {'f180%':>5s} {'fTrue%':>6s} {'ax.med':>6s} {'ax.wst':>6s}"
    )
    print(head)
    for cls in (*CLASSES, "all"):
        for name in ("scan", "pair"):
            for subset in ("relief", "all"):
                rows = [
                    r
                    for r in records
                    if (cls == "all" or r["class"] == cls) and (subset == "all" or r["relief"])
                ]
                if not rows:
                    continue
                s = [r[name] for r in rows]
                errs = [float(x["error"]) for x in s]
                axe = [float(x["axis_error"]) for x in s]
                conf = [float(x["error"]) for x in s if x["confident"]]
                f90 = 100.0 * np.mean([x["flag_90"] for x in s])
                f180 = 100.0 * np.mean([x["flag_180"] for x in s])
                ftrue = 100.0 * np.mean([x["flag_true"] for x in s])
                pc = 100.0 * len(conf) / len(s)
                cm = f"{np.median(conf):6.1f}" if conf else f"{'-':>6}"
                cw = f"{max(conf):6.1f}" if conf else f"{'-':>6}"
                print(
                    f"{cls:7s} {name:9s} {subset:7s} {len(s):3d} {_stats(errs)} {pc:5.0f} "
                    f"{cm} {cw} {f90:5.0f} {f180:5.0f} {ftrue:6.0f} "
                    f"{np.median(axe):6.1f} {max(axe):6.1f}"
                )
                e = np.asarray(errs)
                out[f"{cls}/{name}/{subset}"] = {
                    "n": len(s),
                    "median": float(np.median(e)),
                    "p90": float(np.percentile(e, 90)),
                    "worst": float(e.max()),
                    "confident_share": pc / 100.0,
                    "flag_90": f90 / 100.0,
                    "flag_180": f180 / 100.0,
                    "flag_true": ftrue / 100.0,
                    "axis_median": float(np.median(axe)),
                    "axis_worst": float(max(axe)),
                }
    print(
        "columns: azimuth error (deg) median/p90/worst over all estimates; conf% share "
        "confident; c.med/c.wst error of the confident ones; f90/f180: share of pairs where "
        "a given azimuth off by 90 (both ways) / 180 deg is flagged; fTrue: true azimuth "
        "wrongly flagged; ax.med/ax.wst: error of the axis (mod 180). "
        "Elevation: not estimated (None on every estimate)."
    )
    return out


def leaves_table() -> list[dict[str, object]]:
    """Estimate each leaves12 photo; print against nominal and shadow-measured azimuths."""
    if not (LEAVES / "lights.csv").is_file():
        print("leaves12: ../shared/real/leaves12 absent, skipped")
        return []
    rows = []
    print(
        f"{'photo':10s} {'nominal':>7s} {'shadow':>6s} {'est':>6s} {'+/-':>5s} "
        f"{'conf':>5s} {'err_nom':>7s} {'err_sh':>6s}"
    )
    with (LEAVES / "lights.csv").open() as fh:
        for row in csv.DictReader(fh):
            img = read_image(LEAVES / row["file"])
            est = estimate_scan_light(to_linear(img.pixels))
            nom, sh = float(row["azimuth_deg"]), float(row["azimuth_from_shadows_deg"])
            en = angular_difference(est.azimuth_deg, nom) if est.known else math.nan
            es = angular_difference(est.azimuth_deg, sh) if est.known else math.nan
            print(
                f"{row['file']:10s} {nom:7.0f} {sh:6.0f} {est.azimuth_deg:6.1f} "
                f"{est.azimuth_uncertainty_deg:5.0f} {est.confidence:5.2f} {en:7.1f} {es:6.1f}"
            )
            rows.append(
                {
                    "file": row["file"],
                    "nominal": nom,
                    "shadow": sh,
                    "estimate": est.to_dict(),
                    "err_shadow": es,
                }
            )
    ok = sum(1 for r in rows if r["err_shadow"] == r["err_shadow"] and r["err_shadow"] <= 30)
    print(f"leaves12: within 30 deg of the shadow-measured azimuth on {ok} of {len(rows)}")
    return rows


def time_24mp() -> float:
    """Seconds for one 6000 x 4000 scan (a render upsampled; timing only)."""
    spec = synth.PairSpec(seed=SEED0 - 1, size=(600, 400))
    small = to_linear(synth.render_pair(spec).baseline)
    big = cv2.resize(small, (6000, 4000), interpolation=cv2.INTER_LINEAR)
    t0 = time.perf_counter()
    estimate_scan_light(big)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="400x300")
    ap.add_argument("--per-class", type=int, default=8, help="azimuths per canvas and class")
    ap.add_argument("--procedural", type=int, default=1, help="procedural canvases added")
    ap.add_argument("--split", choices=sorted(SPLIT_SEEDS), default="test")
    ap.add_argument("--no-leaves", action="store_true", help="skip leaves12 and the 24 MP timing")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))
    t0 = time.perf_counter()
    records = eval_pairs((w, h), args.per_class, args.procedural, args.split)
    print(
        f"{len(records)} pairs at {w}x{h} ({args.split} paintings + {args.procedural} procedural, "
        f"{args.per_class} azimuths per canvas and class)"
    )
    table = print_table(records)
    if args.no_leaves:
        return 0
    leaves = leaves_table()
    t24 = time_24mp()
    ts = [float(r["t_scan"]) for r in records]
    tp = [float(r["t_pair"]) for r in records]
    print(
        f"timing: per scan median {np.median(ts):.2f} s, pair median {np.median(tp):.2f} s at "
        f"{w}x{h}; one 24 MP scan {t24:.2f} s; whole eval {time.perf_counter() - t0:.0f} s"
    )
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {"table": table, "leaves12": leaves, "records": records, "t_24mp": t24},
                indent=1,
                default=float,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
