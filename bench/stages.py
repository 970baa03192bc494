"""Per-stage wall time and peak memory of one comparison at several sizes (``make bench-speed``).

Usage::

    .venv/bin/python bench/stages.py [--sizes 24MP,100MP] [--repeats 1]
                                     [--source native|upscaled] [--scale auto|grid]
                                     [--out bench/out] [--docs docs]

By default (``--source native``) each size is a fine-damage pair (blisters,
tenting and cupping of 1.5-5 mm on a 60 cm canvas) rendered at that size by
:func:`monitor.synth.small.small_damage_spec` -- never upscaled -- and cached
with ``bench/finescale.py``'s pairs; the runs use ``--scale auto`` (every
pixel analysed) unless ``--scale grid``. The pairs are rendered strip by strip
(:func:`monitor.synth.strips.render_pair_files`: within one code value of the
whole-image render on a few pixels in a million, the same truth; about 1 GB at
24 MP, 3.7 GB at 100 MP); a render that would not fit in the machine's
available memory is refused and reported.
``--source upscaled`` keeps the former set: the sample pair
(``synth.demo_spec()``, 1280 x 960) upscaled with ``cv2.resize(INTER_CUBIC)``
to about 6, 24 and 100 megapixels, written once as PNG into ``<out>/cache``. Every run is a fresh
Python process (``--child``), so its peak RSS is that run's alone; the child
runs ``monitor.pipeline.compare`` with ``Settings(scale=...)``, the pair's
true light (and px/mm for the native pairs), then ``write_outputs``, and prints its stage timings
(``Comparison.timings``: seconds and process peak RSS after each stage) as
JSON. The 6 MP size is run three times (the machine is shared), the others
``--repeats`` times; medians are reported. Results go to
``<out>/stages.json`` and, with ``--docs``, to ``docs/benchmarks.json`` (key
``speed``) and ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from monitor.errors import MonitorError  # noqa: E402


@dataclass(frozen=True)
class Size:
    """One benchmark size: a label and the upscaling factor of the sample pair."""

    label: str
    factor: float
    repeats: int = 1


#: Sample pair 1280 x 960 = 1.2 MP; factors give 2880 x 2160 (6.2 MP),
#: 5760 x 4320 (24.9 MP) and 11520 x 8640 (99.5 MP).
SIZES = {
    "sample": Size("sample", 1.0),
    "6MP": Size("6MP", 2.25, repeats=3),
    "24MP": Size("24MP", 4.5, repeats=3),
    "100MP": Size("100MP", 9.0),
}
CHILD_TIMEOUT_S = 1800
GPU_NOTE_NONE = (
    "No GPU was available to this run, so GPU figures were not measured "
    "(`monitor` selects CUDA automatically when torch sees one)."
)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def prepare_pairs(cache: Path, labels: list[str]) -> dict[str, dict[str, Any]]:
    """Render the sample pair and write its upscaled copies (once; reused while unchanged).

    Parameters
    ----------
    cache
        Folder for the pairs (``cache / label / {baseline,current}.png``).
    labels
        Keys of :data:`SIZES`.

    Returns
    -------
    dict
        Label -> ``{"baseline", "current", "width", "height", "factor"}``; the
        ``sample`` entry also has ``truth`` and ``labels`` (truth files).
    """
    from monitor import synth

    sample_dir = cache / "sample"
    pair = synth.render_pair(synth.demo_spec())
    paths = synth.write_pair(pair, sample_dir, fmt="png")
    digest = _sha256(paths["baseline"])[:16] + _sha256(paths["current"])[:16]
    h0, w0 = pair.baseline.shape[:2]
    out: dict[str, dict[str, Any]] = {}
    for label in labels:
        size = SIZES[label]
        w, h = round(w0 * size.factor), round(h0 * size.factor)
        entry: dict[str, Any] = {"width": w, "height": h, "factor": size.factor}
        if label == "sample":
            entry.update(baseline=paths["baseline"], current=paths["current"])
        else:
            folder = cache / label
            stamp = folder / "source.txt"
            files = {k: folder / f"{k}.png" for k in ("baseline", "current")}
            fresh = stamp.is_file() and stamp.read_text().strip() == digest
            if not (fresh and all(p.is_file() for p in files.values())):
                folder.mkdir(parents=True, exist_ok=True)
                for key in files:
                    small = cv2.imread(str(paths[key]), cv2.IMREAD_UNCHANGED)
                    if small is None:
                        raise MonitorError(f"cannot read {paths[key]}")
                    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
                    del small
                    if not cv2.imwrite(str(files[key]), big, [cv2.IMWRITE_PNG_COMPRESSION, 1]):
                        raise MonitorError(f"cannot write {files[key]}")
                    del big
                stamp.write_text(digest + "\n")
            entry.update(files)
        out[label] = entry
    out.setdefault("sample", {})
    out["sample"].update(truth=paths["truth"], labels=paths["labels"], width=w0, height=h0)
    return out


#: Native render sizes (width, height) of ``--source native``: rendered at this size by
#: :func:`monitor.synth.small.small_damage_spec` (fine damage: blisters, tenting, cupping
#: of 1.5-5 mm on a 60 cm canvas), never upscaled; strip by strip (bounded memory,
#: :data:`RENDER_GB_PER_MP`), so the 100 MP pair renders on a 16 GB machine.
NATIVE = {"6MP": (3000, 2000), "24MP": (6000, 4000), "100MP": (12000, 8000)}
NATIVE_SEED_OFFSET = 4242  # TEST_SEEDS[0] + this: the first pair of bench/finescale.py


#: Peak memory of the strip renderer per megapixel, rounded up (24 MP: 0.97 GB, 96 MP:
#: 3.67 GB, measured with /usr/bin/time; the whole-image renderer took 11.3 GB at 24 MP).
RENDER_GB_PER_MP = 0.05


def _available_gb() -> float | None:
    """``MemAvailable`` of /proc/meminfo in GB, None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1e6
    except (OSError, ValueError):
        return None
    return None


def prepare_native(cache: Path, labels: list[str], log=print) -> dict[str, dict[str, Any]]:
    """Render (once, each in a fresh process) the native fine-damage pair of every size.

    The pairs share ``bench/finescale.py``'s cache layout
    (``cache / label / test-<seed>-fine``), so a pair rendered by either is reused.

    Returns
    -------
    dict
        Label -> ``{"baseline", "current", "width", "height", "factor": 1.0, "truth",
        "px_per_mm"}``, or ``{"error": ...}`` when the render failed.
    """
    from monitor.synth import TEST_SEEDS

    seed = TEST_SEEDS[0] + NATIVE_SEED_OFFSET
    out: dict[str, dict[str, Any]] = {}
    for label in labels:
        if label not in NATIVE:
            raise MonitorError(f"no native size for {label!r}; choose from {list(NATIVE)}")
        w, h = NATIVE[label]
        folder = cache / label / f"test-{seed}-fine"
        entry: dict[str, Any] = {"width": w, "height": h, "factor": 1.0}
        need_gb = RENDER_GB_PER_MP * w * h / 1e6
        have_gb = _available_gb()
        if not (folder / "canvas.json").is_file() and have_gb is not None and have_gb < need_gb:
            # refuse rather than drive a shared machine out of memory
            entry["error"] = (f"the native {label} render needs about {need_gb:.0f} GB of "
                              f"memory; {have_gb:.0f} GB available")
            out[label] = entry
            continue
        if not (folder / "canvas.json").is_file():
            log(f"rendering {label} ({w} x {h}) natively ...")
            cmd = [sys.executable, str(ROOT / "bench" / "finescale.py"), "--child-render",
                   str(seed), "fine", str(w), str(h), str(folder), "--strips"]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
            if proc.returncode != 0:
                tail = (proc.stderr or proc.stdout).strip().splitlines()
                entry["error"] = (f"native render failed ({proc.returncode}, e.g. out of "
                                  f"memory): {tail[-1] if tail else ''}")
                out[label] = entry
                continue
        canvas = json.loads((folder / "canvas.json").read_text(encoding="utf-8"))
        entry.update(baseline=folder / "baseline.png", current=folder / "current.png",
                     truth=folder / "truth.json", px_per_mm=float(canvas["px_per_mm"]))
        out[label] = entry
    return out


def _found_native(region_dicts: list[dict[str, Any]], entry: dict[str, Any]) -> str:
    """``found/truth (+other)`` of a native pair (bench/finescale.py's matching)."""
    from bench.finescale import _match

    truth = json.loads(Path(entry["truth"]).read_text(encoding="utf-8"))
    counts = _match(truth["regions"], region_dicts, float(entry["px_per_mm"]))
    tp = sum(c["tp"] for c in counts.values())
    fn = sum(c["fn"] for c in counts.values())
    fp = sum(c["fp"] for c in counts.values())
    return f"{tp}/{tp + fn} (+{fp} other)"


# --------------------------------------------------------------------------- child


def vm_hwm_mb() -> float | None:
    """Peak RSS of this process's address space (``VmHWM``), in MB; None without /proc.

    Unlike ``getrusage().ru_maxrss``, which Linux keeps across ``execve`` (a child
    started from a big parent reports at least the parent's size), ``VmHWM``
    starts afresh with the new program.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        return None
    return None


def child(
    baseline: str, current: str, azimuth: float, elevation: float, *, scale: str = "grid",
    px_per_mm: float | None = None,
) -> dict[str, Any]:
    """Run one comparison in this process and return its timings (the ``--child`` mode).

    Peak RSS after each stage is read from ``VmHWM`` at the start of the next stage
    (through ``compare``'s progress callback); where ``/proc`` is missing, the
    ``ru_maxrss`` figures of ``Comparison.timings`` are used.

    Parameters
    ----------
    baseline, current
        Image files.
    azimuth, elevation
        The baseline light (degrees).
    scale, px_per_mm
        ``Settings.scale`` (``grid`` or ``auto``) and the pair's scale, if known.

    Returns
    -------
    dict
        ``stages`` (name, seconds, peak RSS MB), ``write_s``, ``end_to_end_s``,
        ``import_rss_mb``, ``peak_rss_mb``, ``rss_source``, ``device`` and the
        regions found.
    """
    from monitor.config import Settings
    from monitor.depth import select_device
    from monitor.pipeline import compare, peak_rss_mb, write_outputs
    from monitor.registration import baseline_to_current
    from monitor.results import Light

    use_hwm = vm_hwm_mb() is not None

    def rss() -> float:
        return (vm_hwm_mb() if use_hwm else None) or peak_rss_mb()

    marks: list[float] = []
    import_rss = rss()
    settings = Settings().replace(scale=scale)
    start = time.perf_counter()
    comp = compare(
        baseline, current, settings, light=Light(azimuth, elevation), px_per_mm=px_per_mm,
        progress=lambda _name, _frac: marks.append(rss()),
    )
    t_write = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="monitor-stages-") as tmp:
        write_outputs(comp, Path(tmp) / "out")
    end = time.perf_counter()
    # marks: start of each stage, then "done": the peak after stage i is marks[i + 1]
    after = marks[1:] if use_hwm and len(marks) == len(comp.timings) + 1 else None
    if after:  # a running maximum (the kernel's counters are updated lazily)
        after = [max(after[: i + 1]) for i in range(len(after))]
    # a stage run twice (scale auto resamples on the grid, then warps at full
    # resolution) is listed as "name", "name 2": the medians are taken by name
    names = unique_names([t.name for t in comp.timings])
    stages = [
        {
            "name": names[i],
            "seconds": round(t.seconds, 3),
            "peak_rss_mb": round(after[i] if after else t.peak_rss_mb, 1),
        }
        for i, t in enumerate(comp.timings)
    ]
    peak = round(max(rss(), after[-1] if after else 0.0), 1)
    stages.append({"name": "write", "seconds": round(end - t_write, 3), "peak_rss_mb": peak})
    return {
        "stages": stages,
        "write_s": round(end - t_write, 3),
        "end_to_end_s": round(end - start, 3),
        "import_rss_mb": round(import_rss, 1),
        "peak_rss_mb": peak,
        "rss_source": "VmHWM" if after else "ru_maxrss (Comparison.timings)",
        "device": str(select_device(settings.device)),
        "method": settings.method,
        "regions": [[r.polarity, r.centroid[0], r.centroid[1]] for r in comp.regions],
        "region_dicts": [r.to_dict() for r in comp.regions],
        "scale": scale,
        "baseline_shape": list(comp.baseline_shape),
        "corners_in_current": baseline_to_current(
            _corners(comp.baseline_shape), comp.registration
        ).tolist(),
    }


def unique_names(names: list[str]) -> list[str]:
    """Stage names with repeats numbered: ``["a", "b", "a"]`` -> ``["a", "b", "a 2"]``.

    Examples
    --------
    >>> unique_names(["resample", "light", "resample", "resample"])
    ['resample', 'light', 'resample 2', 'resample 3']
    """
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} {seen[name]}")
    return out


def _corners(shape: tuple[int, int]) -> np.ndarray:
    """The four BASELINE corners (corner-origin) of an image of (rows, cols)."""
    h, w = shape
    return np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)


def corner_error_scaled(
    corners_current: list[list[float]], factor: float, truth: dict[str, Any]
) -> float:
    """Corner error of an upscaled pair's registration against the sample pair's truth.

    Upscaling by ``f`` maps corner-origin points ``p`` to ``f p`` exactly, so the true
    mapping of the big pair is ``f * T(p / f)`` with ``T`` the sample pair's.

    Parameters
    ----------
    corners_current
        The registration's images of the big baseline's corners, in big CURRENT pixels.
    factor
        Upscaling factor.
    truth
        The sample pair's ``truth.json`` content.

    Returns
    -------
    float
        Largest distance in big CURRENT pixels.
    """
    from monitor import synth

    w, h = truth["baseline_size"]
    true = factor * synth.baseline_to_current(
        _corners((h, w)),
        np.asarray(truth["homography"], np.float64),
        float(truth["lens"]["k1"]),
        tuple(truth["current_size"]),
    )
    d = np.hypot(*(np.asarray(corners_current, np.float64) - true).T)
    return float(d.max())


def run_child(
    baseline: Path, current: Path, light: tuple[float, float], *, scale: str = "grid",
    px_per_mm: float | None = None,
) -> dict[str, Any]:
    """Run :func:`child` in a fresh interpreter; adds ``process_s`` (start to exit)."""
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--child", str(baseline), str(current),
        "--light", f"{light[0]},{light[1]}", "--scale", scale,
    ]
    if px_per_mm:
        cmd += ["--px-per-mm", str(px_per_mm)]
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, env=os.environ.copy()
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()
        raise MonitorError(f"child failed ({proc.returncode}): {tail[-1] if tail else ''}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_s"] = round(elapsed, 3)
    return result


# --------------------------------------------------------------------------- parent


def _found(regions: list[list[Any]], factor: float, prepared: dict[str, Any]) -> str:
    """``found/truth`` of the sample pair's regions (centroids scaled back by ``factor``)."""
    from bench.benchmark import score_regions

    truth = json.loads(Path(prepared["truth"]).read_text(encoding="utf-8"))
    labels = cv2.imread(str(prepared["labels"]), cv2.IMREAD_UNCHANGED)
    if labels is None:
        raise MonitorError(f"cannot read {prepared['labels']}")
    pol = {int(r["id"]): str(r["polarity"]) for r in truth["regions"]}
    preds = [(str(p), (float(x) / factor, float(y) / factor)) for p, x, y in regions]
    s = score_regions(preds, labels, pol)
    return f"{s.matched}/{s.n_truth} (+{s.n_pred - s.matched} other)"


def measure(
    labels: list[str], out: Path, *, repeats: int = 1, log=print, source: str = "native",
    scale: str = "auto",
) -> dict[str, Any]:
    """Measure every size; return the ``speed`` document.

    Parameters
    ----------
    labels
        Keys of :data:`SIZES`, in order.
    out
        Output folder (cache and ``stages.json``).
    repeats
        Runs per size (the 6 MP size runs at least 3 times).
    log
        Progress lines.
    source
        ``native`` (fine-damage pairs rendered at each size, :data:`NATIVE`) or
        ``upscaled`` (the sample pair upscaled, the figures before issue #11).
    scale
        ``Settings.scale`` of the runs: ``auto`` (every pixel analysed) or ``grid``.

    Returns
    -------
    dict
        JSON-ready run facts and per-size figures.
    """
    from bench.benchmark import git_commit, machine_info
    from monitor import synth

    unknown = [x for x in labels if x not in SIZES]
    if unknown:
        raise MonitorError(f"unknown size(s) {unknown}; choose from {list(SIZES)}")
    start = time.perf_counter()
    load_start = [round(v, 2) for v in os.getloadavg()]
    if source not in ("native", "upscaled"):
        raise MonitorError(f"unknown source {source!r}; choose native or upscaled")
    log("preparing pairs ...")
    native = source == "native"
    if native:
        prepared = prepare_native(out / "finescale" / "cache", labels, log)
    else:
        prepared = prepare_pairs(out / "cache", labels)
    spec = synth.demo_spec()
    sizes: list[dict[str, Any]] = []
    for label in labels:
        size = SIZES[label]
        entry = prepared[label]
        n = max(repeats, size.repeats)
        if native and "error" not in entry:
            lb = json.loads(Path(entry["truth"]).read_text(encoding="utf-8"))["light_baseline"]
            light = (float(lb["azimuth_deg"]), float(lb["elevation_deg"]))
        else:
            light = (spec.light_baseline.azimuth_deg, spec.light_baseline.elevation_deg)
        record: dict[str, Any] = {
            "label": label,
            "width": entry["width"],
            "height": entry["height"],
            "megapixels": round(int(entry["width"]) * int(entry["height"]) / 1e6, 2),
            "repeats": n,
        }
        runs = []
        if "error" in entry:
            record["error"] = entry["error"]
            log(f"  FAILED {entry['error']}")
            n = 0
        for i in range(n):
            log(f"{label} run {i + 1}/{n} ...")
            try:
                runs.append(run_child(entry["baseline"], entry["current"], light, scale=scale,
                                      px_per_mm=entry.get("px_per_mm")))
            except (MonitorError, subprocess.TimeoutExpired) as exc:
                record["error"] = str(exc)
                log(f"  FAILED {exc}")
                break
            r = runs[-1]
            log(f"  end to end {r['end_to_end_s']} s, process {r['process_s']} s, "
                f"peak RSS {r['peak_rss_mb']} MB")
        if runs:
            names = [s["name"] for s in runs[0]["stages"]]
            record.update(
                stages_s_median={
                    k: round(statistics.median(
                        next(s["seconds"] for s in r["stages"] if s["name"] == k) for r in runs
                    ), 3)
                    for k in names
                },
                stages_rss_mb={
                    k: max(next(s["peak_rss_mb"] for s in r["stages"] if s["name"] == k)
                           for r in runs)
                    for k in names
                },
                end_to_end_s_median=round(statistics.median(r["end_to_end_s"] for r in runs), 2),
                end_to_end_s_all=[r["end_to_end_s"] for r in runs],
                process_s_median=round(statistics.median(r["process_s"] for r in runs), 2),
                import_rss_mb=runs[0]["import_rss_mb"],
                rss_source=runs[0].get("rss_source"),
                peak_rss_mb_max=max(r["peak_rss_mb"] for r in runs),
                device=runs[0]["device"],
                regions_found=(
                    _found_native(runs[0]["region_dicts"], entry) if native
                    else _found(runs[0]["regions"], size.factor, prepared["sample"])
                ),
                corner_error_px=round(corner_error_scaled(
                    runs[0]["corners_in_current"], 1.0 if native else size.factor,
                    json.loads(Path(entry["truth"] if native else prepared["sample"]["truth"])
                               .read_text(encoding="utf-8")),
                ), 4),
            )
        sizes.append(record)
    from monitor.depth import select_device

    gpu = str(select_device("auto")) == "cuda"
    return {
        "command": "python bench/stages.py " + " ".join(sys.argv[1:]),
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git_commit(),
        "machine": machine_info(),
        "load_start": load_start,
        "load_end": [round(v, 2) for v in os.getloadavg()],
        "wall_s": round(time.perf_counter() - start, 1),
        "source": (
            "fine-damage pairs rendered natively at each size (synth.small.small_damage_spec, "
            f"seed TEST_SEEDS[0] + {NATIVE_SEED_OFFSET}, 60 cm canvas)" if native
            else "the sample pair (synth.demo_spec(), 1280x960), upscaled"
        ),
        "format": "PNG (8-bit, synth.write_pair)" if native else "PNG (8-bit, compression 1)",
        "configuration": (f"Settings(scale={scale!r}) (photometric) with the pair's true light"
                          + (" and px/mm" if native else "")),
        "sizes": sizes,
        "gpu_note": None if gpu else GPU_NOTE_NONE,
    }


def main(argv: list[str] | None = None) -> int:
    """Command line; returns the exit status.

    Parameters
    ----------
    argv
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success (targets met or not), 1 on an error.
    """
    parser = argparse.ArgumentParser(description="monitor per-stage time and memory")
    parser.add_argument("--sizes", default="24MP,100MP", help="comma-separated labels")
    parser.add_argument("--repeats", type=int, default=1, help="runs per size (6MP: >= 3)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--docs", type=Path, default=None)
    parser.add_argument("--child", nargs=2, metavar=("BASELINE", "CURRENT"), help=argparse.SUPPRESS)
    parser.add_argument("--light", default="180,25", help=argparse.SUPPRESS)
    parser.add_argument("--px-per-mm", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--source", default="native", choices=("native", "upscaled"),
                        help="native fine-damage renders (default) or the upscaled sample pair")
    parser.add_argument("--scale", default="auto", choices=("auto", "grid"),
                        help="Settings.scale of the runs (auto: every pixel analysed)")
    args = parser.parse_args(argv)
    if args.child:
        az, el = (float(v) for v in args.light.split(","))
        print(json.dumps(child(args.child[0], args.child[1], az, el, scale=args.scale,
                               px_per_mm=args.px_per_mm)))
        return 0
    try:
        doc = measure([s for s in args.sizes.split(",") if s], args.out, repeats=args.repeats,
                      source=args.source, scale=args.scale)
    except MonitorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "stages.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    _print_table(doc)
    if args.docs:
        from bench.benchmark import update_docs

        jpath, mpath = update_docs(args.docs, "speed", doc)
        print(f"wrote {jpath} and {mpath}")
    return 0


def _print_table(doc: dict[str, Any]) -> None:
    for s in doc["sizes"]:
        if s.get("error"):
            print(f"{s['label']:>7s}  {s['width']}x{s['height']}  FAILED: {s['error']}")
            continue
        stages = "  ".join(f"{k} {v:.2f}s" for k, v in s["stages_s_median"].items())
        print(
            f"{s['label']:>7s}  {s['width']}x{s['height']}  {stages}  | end to end "
            f"{s['end_to_end_s_median']:.1f} s  peak RSS {s['peak_rss_mb_max']:.0f} MB  "
            f"found {s['regions_found']}"
        )


if __name__ == "__main__":
    sys.exit(main())
