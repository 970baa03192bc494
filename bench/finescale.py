"""Fine-scale benchmark: small and large damage at native size, multiscale vs the 1600-px grid.

Usage::

    python bench/finescale.py [--size 6MP|24MP] [--pairs 4] [--split test|train]
                              [--out bench/out/finescale]
                              [--methods grid1600,multiscale,pair-multiscale]

Pairs come from :func:`monitor.synth.small.small_damage_spec` rendered at
native size (6000 x 4000 for 24 MP, 3000 x 2000 for 6 MP; never upscaled),
alternating ``fine`` damage (8 blisters / tentings / cuppings, 1.5-5 mm) and
``large`` damage (4 deformations of 1-5 % of the long side) on a 60 cm canvas,
albedo alternating procedural and the split's paintings (when
``../shared/paintings`` is present). Seeds: ``TEST_SEEDS`` (evaluation) or
``TRAIN_SEEDS`` (tuning). Each render and each run is a fresh Python process,
so peak RSS (``VmHWM``) is that run's alone. Both methods run end to end from
the PNG files with the true light through :func:`monitor.pipeline.compare`:
``grid1600`` with ``scale = "grid"``, ``multiscale`` with ``scale = "auto"`` (the default)
(the grid's stages, then the current scan warped at full resolution and
:func:`monitor.change.multiscale.multiscale_change`, whose own stages are
listed as ``ms_*``); ``pair-multiscale`` with ``method = "pair"`` and
``scale = "auto"`` (:func:`monitor.change.pair_multiscale.pair_multiscale_change`,
stages ``pms_*``).

Scoring: a detection matches a truth region when its centroid lies in the
truth's box (grown by a quarter of its size, at least 3 px) or the truth's
centroid in the detection's box; one-to-one, most significant first. Size
class by equivalent diameter of the truth mask (detections: of their area):
``small`` <= 8 mm < ``large``. Polarity = matched with the right sign / matched.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SIZES = {"6MP": (3000, 2000), "24MP": (6000, 4000), "2MP": (1800, 1200)}
CANVAS_MM = 600.0
SMALL_MM = 8.0


def _render(seed: int, damage: str, size: tuple[int, int], painting: str | None, out: Path,
            strips: bool = False) -> None:
    """Render one pair into ``out``: whole (``render_pair``) or strip by strip.

    ``strips`` uses :func:`monitor.synth.strips.render_pair_files` (bounded memory,
    sides up to 16000; within one code value of the whole render on a few pixels
    in a million, identical truth).
    """
    from monitor.synth import render_pair, write_pair
    from monitor.synth.small import small_damage_spec
    from monitor.synth.strips import render_pair_files

    cs = small_damage_spec(seed, size=size, canvas_mm=CANVAS_MM, damage=damage,  # type: ignore[arg-type]
                           painting=painting)
    if strips:
        render_pair_files(cs.spec, out)
    else:
        write_pair(render_pair(cs.spec), out)
    (out / "canvas.json").write_text(json.dumps({"px_per_mm": cs.px_per_mm, "damage": damage}))


def _run(method: str, pair_dir: Path) -> dict[str, object]:
    from monitor.pipeline import compare, peak_rss_mb
    from monitor.results import Light

    truth = json.loads((pair_dir / "truth.json").read_text())
    px_per_mm = json.loads((pair_dir / "canvas.json").read_text())["px_per_mm"]
    lb = truth["light_baseline"]
    light = Light(lb["azimuth_deg"], lb["elevation_deg"])
    base, cur = pair_dir / "baseline.png", pair_dir / "current.png"
    t_all = time.perf_counter()
    # both run the pipeline end to end from the files: the grid or scale = "auto"
    # (the default; its timings include the multi-scale stages, ms_* / pms_*)
    from monitor.config import Settings

    settings = {
        "grid1600": Settings().replace(scale="grid"),
        "multiscale": Settings().replace(scale="auto"),
        # the pair net at every scale (monitor.change.pair_multiscale)
        "pair-multiscale": Settings().replace(method="pair", scale="auto"),
    }[method]
    comp = compare(base, cur, settings, light=light, px_per_mm=px_per_mm)
    regions = [r.to_dict() for r in comp.regions]
    stages = [{"name": t.name, "seconds": t.seconds, "peak_rss_mb": t.peak_rss_mb}
              for t in comp.timings]
    levels = list(comp.params.get("levels", []))  # type: ignore[call-overload]
    return {"method": method, "pair": pair_dir.name, "seconds": time.perf_counter() - t_all,
            "peak_rss_mb": peak_rss_mb(), "stages": stages, "regions": regions, "levels": levels}


def _match(truth: list[dict], found: list[dict], px_per_mm: float) -> dict[str, dict[str, int]]:
    def diam_mm(area_px: float) -> float:
        return 2 * math.sqrt(max(area_px, 0.0) / math.pi) / px_per_mm

    counts = {c: {"tp": 0, "fn": 0, "fp": 0, "pol_ok": 0} for c in ("small", "large")}
    used: set[int] = set()
    order = sorted(range(len(found)), key=lambda i: -float(found[i]["significance"]))
    for t in truth:
        cls = "small" if diam_mm(t["area_px"]) <= SMALL_MM else "large"
        x0, y0, x1, y1 = t["bbox"]
        grow = max(3.0, 0.25 * max(x1 - x0, y1 - y0))
        tx, ty = t["centroid"]
        hit = None
        for i in order:
            if i in used:
                continue
            fx, fy = found[i]["centroid"]
            bx0, by0, bx1, by1 = found[i]["bbox"]
            inside = x0 - grow <= fx <= x1 + grow and y0 - grow <= fy <= y1 + grow
            if inside or (bx0 <= tx <= bx1 and by0 <= ty <= by1):
                hit = i
                break
        if hit is None:
            counts[cls]["fn"] += 1
            continue
        used.add(hit)
        counts[cls]["tp"] += 1
        counts[cls]["pol_ok"] += int(found[hit]["polarity"] == t["polarity"])
    for i, f in enumerate(found):
        if i not in used:
            cls = "small" if diam_mm(float(f["area_px"])) <= SMALL_MM else "large"
            counts[cls]["fp"] += 1
    return counts


def _scores(c: dict[str, int]) -> dict[str, float]:
    tp, fp, fn = c["tp"], c["fp"], c["fn"]
    rec = tp / (tp + fn) if tp + fn else float("nan")
    prec = tp / (tp + fp) if tp + fp else float("nan")
    f1 = 2 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0
    pol = c["pol_ok"] / tp if tp else float("nan")
    return {"recall": rec, "precision": prec, "f1": f1, "polarity": pol, **c}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="6MP", choices=sorted(SIZES))
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--split", default="test", choices=("test", "train"))
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "finescale")
    ap.add_argument("--methods", default="grid1600,multiscale")
    ap.add_argument("--child-render", nargs=5, metavar=("SEED", "DAMAGE", "W", "H", "DIR"))
    ap.add_argument("--painting", default=None)
    ap.add_argument("--strips", action="store_true",
                    help="with --child-render: render strip by strip (bounded memory)")
    ap.add_argument("--child-run", nargs=2, metavar=("METHOD", "DIR"))
    args = ap.parse_args(argv)
    if args.child_render:
        seed, damage, w, h, d = args.child_render
        _render(int(seed), damage, (int(w), int(h)), args.painting, Path(d), args.strips)
        return 0
    if args.child_run:
        print(json.dumps(_run(args.child_run[0], Path(args.child_run[1]))))
        return 0

    from monitor.synth import TEST_SEEDS, TRAIN_SEEDS, paintings_for

    size = SIZES[args.size]
    seeds = TEST_SEEDS if args.split == "test" else TRAIN_SEEDS
    paintings = paintings_for(args.split)
    cache = args.out / "cache" / args.size
    results: list[dict[str, object]] = []
    methods = args.methods.split(",")
    totals = {m: {c: {"tp": 0, "fn": 0, "fp": 0, "pol_ok": 0} for c in ("small", "large")}
              for m in methods}
    for i in range(args.pairs):
        seed = seeds[0] + 4242 + i
        damage = "fine" if i % 2 == 0 else "large"
        painting = str(paintings[(i // 2) % len(paintings)]) if paintings and i % 4 >= 2 else None
        d = cache / f"{args.split}-{seed}-{damage}"
        if not (d / "canvas.json").exists():
            cmd = [sys.executable, __file__, "--child-render", str(seed), damage,
                   str(size[0]), str(size[1]), str(d)]
            if painting:
                cmd += ["--painting", painting]
            t = time.perf_counter()
            subprocess.run(cmd, check=True)
            print(f"rendered {d.name} in {time.perf_counter() - t:.0f} s", flush=True)
        truth = json.loads((d / "truth.json").read_text())["regions"]
        px_per_mm = json.loads((d / "canvas.json").read_text())["px_per_mm"]
        for m in methods:
            proc = subprocess.run([sys.executable, __file__, "--child-run", m, str(d)],
                                  check=True, capture_output=True, text=True)
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            counts = _match(truth, res["regions"], px_per_mm)
            for c in counts:
                for k in counts[c]:
                    totals[m][c][k] += counts[c][k]
            res["counts"] = counts
            res["painting"] = painting
            results.append(res)
            print(f"{d.name} {m}: {res['seconds']:.1f} s, {res['peak_rss_mb']:.0f} MB, "
                  f"{json.dumps(counts)}", flush=True)
            print("  stages: " + ", ".join(f"{s['name']} {s['seconds']:.1f} s "
                                           f"{s['peak_rss_mb']:.0f} MB" for s in res["stages"]),
                  flush=True)
    table = {m: {c: _scores(totals[m][c]) for c in totals[m]} for m in methods}
    summary = {"size": args.size, "pixels": size, "split": args.split, "pairs": args.pairs,
               "canvas_mm": CANVAS_MM, "scores": table, "runs": results}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"finescale-{args.size}-{args.split}.json"
    path.write_text(json.dumps(summary, indent=1))
    print(f"\n{args.size} {args.split}, {args.pairs} pairs")
    print("| method | class | recall | precision | F1 | polarity | tp/fp/fn |")
    print("|---|---|---|---|---|---|---|")
    for m in methods:
        for c, s in table[m].items():
            print(f"| {m} | {c} | {s['recall']:.2f} | {s['precision']:.2f} | {s['f1']:.2f} | "
                  f"{s['polarity']:.2f} | {s['tp']}/{s['fp']}/{s['fn']} |")
    print("\n| method | pair | end to end s | peak RSS MB | stages (s) |")
    print("|---|---|---|---|---|")
    for r in results:
        st = ", ".join(f"{s['name']} {s['seconds']:.1f}" for s in r["stages"])  # type: ignore[attr-defined]
        print(f"| {r['method']} | {r['pair']} | {r['seconds']:.1f} | "
              f"{r['peak_rss_mb']:.0f} | {st} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
