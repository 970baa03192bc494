"""Where the deformation-dipole cue's thresholds come from (:mod:`monitor.light.blobs`).

Usage::

    .venv/bin/python bench/light_blobs.py [--cache DIR] [--size 960x720]

Renders (or loads from ``--cache``) the TRAIN and VALIDATION pairs the light
thresholds are chosen on, never the test split: 24 train pairs (train
paintings + procedural, normal elevation 35-60 deg, realism knobs, a point
lamp on two in three, no relief change on every fourth) and 24 validation
pairs (Turner + procedural, 18 normal / 6 raking), CURRENT warped onto
BASELINE with the true mapping. Prints

* the candidate peaks of the smoothed log ratio (|grad| >= 6 robust sigma at
  ``BLOB_SCALE``), split by whether they lie on a true deformation: their
  z, dipole R^2 and chroma ratio quantiles and per-peak axis error;
* per pair: the tiles' axis error (the estimator without the blob cue), the
  blobs' and the estimator's, and the checks of a given lamp 90 / 180 deg off;
* the summary rows: axis error median / p90 / worst on the relief pairs,
  how often a lamp 90 / 180 deg off is flagged, the true lamp flagged, ends
  read and wrong ends, blobs present on pairs without relief.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import monitor.light.estimate as light_estimate  # noqa: E402
from monitor import synth  # noqa: E402
from monitor.io import to_linear  # noqa: E402
from monitor.light import angular_difference, compare_light, estimate_pair_light  # noqa: E402
from monitor.light.blobs import _blob_axis, _dipole_r2  # noqa: E402
from monitor.light.cues import _azimuth_of  # noqa: E402
from monitor.light.grid import _fill, _gauss, _prepare  # noqa: E402
from monitor.light.params import BLOB_SCALE  # noqa: E402
from monitor.results import Light  # noqa: E402


def specs(size: tuple[int, int]) -> list[tuple[str, synth.PairSpec]]:
    """The train and validation pairs (names t00-t23, v00-v23)."""
    jobs: list[tuple[str, synth.PairSpec]] = []
    canv: list[Path | None] = [*synth.paintings_for("train"), None]
    for k in range(24):
        seed = synth.TRAIN_SEEDS.start + 50000 + k
        rng = np.random.default_rng([seed, 17])
        az, el = float(rng.uniform(0, 360)), float(rng.uniform(35, 60))
        spec = synth.sample_spec(seed, painting=canv[k % len(canv)], raking=False,
                                 realism=True, no_change=k % 4 == 3, size=size)
        lamp = float(rng.uniform(1.5, 4.0)) if k % 3 != 2 else None
        spec = dataclasses.replace(
            spec, light_baseline=Light(az, el),
            light_current=Light((az + rng.uniform(-3, 3)) % 360, el), point_lamp=lamp)
        jobs.append((f"t{k:02d}", spec))
    canv = [*synth.paintings_for("validation"), None]
    k = 0
    for ci, c in enumerate(canv):
        for cls, (lo, hi), n in (("normal", (35, 60), 9), ("raking", (10, 30), 3)):
            for j in range(n):
                seed = synth.VALIDATION_SEEDS.start + 30000 + k
                rng = np.random.default_rng([seed, 17])
                az = (360.0 * j / n + 23.0 * ci + rng.uniform(-5, 5)) % 360.0
                el = float(rng.uniform(lo, hi))
                spec = synth.sample_spec(seed, painting=c, raking=cls == "raking",
                                         realism=k % 3 == 2, no_change=k % 4 == 3, size=size)
                spec = dataclasses.replace(
                    spec, light_baseline=Light(az, el),
                    light_current=Light((az + rng.uniform(-3, 3)) % 360, el))
                jobs.append((f"v{k:02d}", spec))
                k += 1
    return jobs


def load(name: str, spec: synth.PairSpec, cache: Path | None) -> dict[str, np.ndarray]:
    """Baseline, warped current, height change and discoloration mask of one pair."""
    path = None if cache is None else cache / f"{name}.npz"
    if path is not None and path.is_file():
        z = np.load(path)
        return {k: z[k] for k in z.files}
    pair = synth.render_pair(spec)
    out = {
        "base": to_linear(pair.baseline).astype(np.float16),
        "cur": synth.warp_current_to_baseline(
            to_linear(pair.current), pair.homography, pair.lens_k1, spec.size
        ).astype(np.float16),
        "dh": pair.height_change,
        "discol": (pair.discoloration.mask if pair.discoloration is not None
                   else np.zeros(pair.height_change.shape, bool)),
    }
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **out)
    return out


def peaks(base: np.ndarray, cur: np.ndarray) -> list[tuple[int, int, float, float, float, float]]:
    """Candidate peaks (y, x, z, dipole R^2, chroma ratio, gradient angle)."""
    pb, pc = _prepare(base, None), _prepare(cur, None)
    ok = pb.ok & pc.ok
    r = pc.loglum - pb.loglum
    r = r - float(np.median(r[ok]))
    s = BLOB_SCALE * max(ok.shape)
    hp, _ = _fill(r, ok, 4 * s)
    sm, gx, gy = _gauss(hp, s), _gauss(hp, s, (0, 1)), _gauss(hp, s, (1, 0))
    inner = ndimage.binary_erosion(ok, iterations=int(3 * s) + 1)
    mag = np.hypot(gx, gy)
    sig = 1.4826 * float(np.median(np.abs(np.concatenate([gx[inner], gy[inner]]))))
    chroma = np.zeros_like(mag)
    for ch in range(3):
        d, _ = _fill(np.where(ok, (pc.chroma - pb.chroma)[..., ch], 0), ok, 4 * s)
        chroma += _gauss(d, s) ** 2
    pk = (mag == ndimage.maximum_filter(mag, size=int(4 * s) | 1)) & inner & (mag > 6 * sig)
    out = []
    for y, x in zip(*np.nonzero(pk), strict=True):
        th = math.atan2(float(gy[y, x]), float(gx[y, x]))
        achro = abs(float(sm[y, x])) + float(mag[y, x]) * s
        out.append((int(y), int(x), float(mag[y, x] / sig),
                    _dipole_r2(sm, inner, int(y), int(x), th, s),
                    math.sqrt(float(chroma[y, x])) / achro, th))
    return out


def axis_error(axis_deg: float, az: float) -> float:
    d = angular_difference(axis_deg, az % 180.0)
    return min(d, 180.0 - d)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=None, help="npz cache of the renders")
    ap.add_argument("--size", default="960x720")
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))
    on_def: list[tuple[float, ...]] = []
    off_def: list[tuple[float, ...]] = []
    rows = []
    for name, spec in specs((w, h)):
        d = load(name, spec, args.cache)
        base, cur = d["base"].astype(np.float32), d["cur"].astype(np.float32)
        az = spec.light_baseline.azimuth_deg
        relief = bool(np.abs(d["dh"]).max() > 0)
        sup = (ndimage.binary_dilation(np.abs(d["dh"]) > 1e-3 * np.abs(d["dh"]).max(),
                                       iterations=3) if relief else np.zeros((h, w), bool))
        for y, x, z, r2, chro, th in peaks(base, cur):
            rec = (z, r2, chro, axis_error(_azimuth_of(th), az))
            (on_def if sup[y, x] else off_def).append(rec)
        est = estimate_pair_light(base, cur)
        orig = light_estimate._blob_axis
        light_estimate._blob_axis = lambda *a: None  # type: ignore[assignment]
        try:
            tiles = estimate_pair_light(base, cur)
        finally:
            light_estimate._blob_axis = orig
        pb, pc = _prepare(base, None), _prepare(cur, None)
        ok = pb.ok & pc.ok
        ratio = pc.loglum - pb.loglum
        blobs = _blob_axis(ratio - float(np.median(ratio[ok])), pc.chroma - pb.chroma, ok)
        flags = {o: compare_light(Light((az + o) % 360.0, 45.0), est).disagrees
                 for o in (0.0, 90.0, 180.0, 270.0)}
        end = est.azimuth_uncertainty_deg < 180.0
        row = {
            "name": name, "relief": relief,
            "tiles": axis_error(tiles.axis_deg, az) if tiles.axis_uncertainty_deg < 90 else 90.0,
            "blobs": None if blobs is None else axis_error(_azimuth_of(blobs.phi), az),
            "est": axis_error(est.axis_deg, az) if est.axis_uncertainty_deg < 90 else 90.0,
            "end": end, "wrong_end": end and angular_difference(est.azimuth_deg, az) > 90.0,
            "f90": flags[90.0] and flags[270.0], "f180": flags[180.0], "ftrue": flags[0.0],
        }
        rows.append(row)
        b = "-" if row["blobs"] is None else f"{row['blobs']:.1f}"
        print(f"{name} relief {int(relief)} axis error tiles {row['tiles']:5.1f} blobs {b:>5s} "
              f"estimate {row['est']:5.1f} end {int(end)} wrong end {int(row['wrong_end'])} "
              f"f90 {int(row['f90'])} f180 {int(row['f180'])} ftrue {int(row['ftrue'])}",
              flush=True)
    dn, nn = np.asarray(on_def), np.asarray(off_def)
    print(f"peaks on a deformation: {len(dn)}, elsewhere: {len(nn)}")
    for i, label in enumerate(("z", "dipole R^2", "chroma ratio", "axis error")):
        q = (5, 25, 50, 75, 95)
        print(f"  {label:12s} on {np.round(np.percentile(dn[:, i], q), 2)} "
              f"elsewhere {np.round(np.percentile(nn[:, i], q), 2)}")
    for split in "tv":
        sub = [r for r in rows if r["name"][0] == split]
        rel = [r for r in sub if r["relief"]]
        for key in ("tiles", "est"):
            e = np.asarray([r[key] for r in rel], float)
            print(f"{split} relief {key:5s} axis error median {np.median(e):5.1f} "
                  f"p90 {np.percentile(e, 90):5.1f} worst {e.max():5.1f}")
        print(f"{split}: f90 {sum(r['f90'] for r in sub)}/{len(sub)} "
              f"f180 {sum(r['f180'] for r in sub)}/{len(sub)} "
              f"ftrue {sum(r['ftrue'] for r in sub)}/{len(sub)} "
              f"ends {sum(r['end'] for r in sub)} wrong ends {sum(r['wrong_end'] for r in sub)}; "
              f"blobs on pairs without relief "
              f"{sum(r['blobs'] is not None for r in sub if not r['relief'])}/"
              f"{sum(not r['relief'] for r in sub)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
