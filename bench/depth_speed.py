"""Speed and memory of tiled depth inference vs a naive ``transformers`` pipeline call.

Usage::

    OMP_NUM_THREADS=2 .venv/bin/python bench/depth_speed.py [--sizes 1,4,24,100]
        [--arch tiny|small] [--device cpu|cuda|auto] [--naive-max-mp 100] [--relief]

For each image size (megapixels, 4:3) and mode, a fresh subprocess builds the
model (random weights, seed 0: speed does not depend on the weights), makes
a synthetic scan and times one call:

``tiled``
    :class:`monitor.depth.hf.HFDepthEstimator` -- full-resolution output from
    overlapping native-size tiles, harmonised (one scale and shift per tile),
    plus one low-resolution anchor run.
``naive``
    ``transformers.pipeline("depth-estimation")`` on the whole image: the
    processor shrinks it to the model's size and the output is upsampled
    back (one forward pass; no detail beyond ~518 px survives).
``relief``
    The shipped per-scan relief network (:class:`monitor.depth.relief.ReliefEstimator`).

Reported: seconds, megapixels per second, peak resident memory of the
subprocess (and peak CUDA memory on a GPU). The input arrays themselves are
part of the peak (uint8 scan + float32 linear copy = 15 bytes per pixel).

``--arch tiny`` is a Depth Anything with a 4-layer, 32-wide Dinov2 backbone
(fast enough on a CPU); ``--arch small`` is the Depth Anything V2 Small
architecture (24.8 M parameters), for a GPU.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build_model(arch: str, folder: Path) -> None:
    """Save a randomly initialised Depth Anything of ``arch`` with its processor."""
    import torch
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config
    from transformers.models.dpt import DPTImageProcessorPil

    if arch == "tiny":
        backbone = Dinov2Config(
            image_size=518, patch_size=14, hidden_size=32, num_hidden_layers=4,
            num_attention_heads=2, intermediate_size=64, out_indices=[1, 2, 3, 4],
            reshape_hidden_states=False,
        )
        config = DepthAnythingConfig(
            backbone_config=backbone, reassemble_hidden_size=32,
            neck_hidden_sizes=[16, 32, 64, 64], fusion_hidden_size=32, head_hidden_size=16,
        )
    elif arch == "small":  # Depth Anything V2 Small
        backbone = Dinov2Config(
            image_size=518, patch_size=14, hidden_size=384, num_hidden_layers=12,
            num_attention_heads=6, intermediate_size=1536, out_indices=[3, 6, 9, 12],
            reshape_hidden_states=False,
        )
        config = DepthAnythingConfig(
            backbone_config=backbone, reassemble_hidden_size=384,
            neck_hidden_sizes=[48, 96, 192, 384], fusion_hidden_size=64, head_hidden_size=32,
        )
    else:
        raise SystemExit(f"unknown arch {arch}")
    torch.manual_seed(0)
    DepthAnythingForDepthEstimation(config).eval().save_pretrained(folder)
    DPTImageProcessorPil(
        size={"height": 518, "width": 518}, keep_aspect_ratio=True, ensure_multiple_of=14,
        do_resize=True, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
    ).save_pretrained(folder)


def synthetic_scan(mp: float, seed: int = 0):
    """A 4:3 uint8 'scan' of about ``mp`` megapixels (tiled noise pattern, cheap to make)."""
    import numpy as np

    w = int(round((mp * 1e6 * 4 / 3) ** 0.5))
    h = int(round(w * 3 / 4))
    rng = np.random.default_rng(seed)
    patch = (rng.random((1021, 1031, 3)) * 200 + 30).astype(np.uint8)
    reps = (h // 1021 + 1, w // 1031 + 1, 1)
    return np.ascontiguousarray(np.tile(patch, reps)[:h, :w])


def _peak_rss_mb() -> float:
    """This process's own peak resident memory (VmHWM; ru_maxrss would include the
    parent's peak at fork time)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(mode: str, mp: float, folder: str, device_name: str) -> dict[str, object]:
    """One timed call in this process; returns the measurements."""
    import numpy as np
    import torch

    from monitor.depth.base import select_device
    from monitor.io import to_linear
    from monitor.results import Light

    torch.set_num_threads(max(1, torch.get_num_threads()))
    device = select_device(device_name)
    scan = synthetic_scan(mp)
    h, w = scan.shape[:2]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    if mode == "naive":
        from PIL import Image
        from transformers import pipeline

        pipe = pipeline("depth-estimation", model=folder, device=device)
        pipe(Image.fromarray(scan[:256, :256]))  # warm-up: one-time initialisation
        image = Image.fromarray(scan)
        start = time.perf_counter()
        out = pipe(image)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        shape = tuple(out["predicted_depth"].shape)
    else:
        if mode == "tiled":
            from monitor.depth.hf import HFDepthEstimator

            est = HFDepthEstimator(folder, device)
        else:
            from monitor.depth.relief import ReliefEstimator

            est = ReliefEstimator(device)
        est.estimate(to_linear(scan[:256, :256]), Light(180.0, 25.0))  # warm-up
        lin = to_linear(scan)
        start = time.perf_counter()
        res = est.estimate(lin, Light(180.0, 25.0))
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        shape = res.height.shape
        assert np.isfinite(res.height).all()
    peak = _peak_rss_mb()
    return {
        "mode": mode,
        "megapixels": round(h * w / 1e6, 2),
        "size": f"{w}x{h}",
        "seconds": round(seconds, 2),
        "mp_per_s": round(h * w / 1e6 / seconds, 3),
        "peak_rss_mb": round(peak),
        "peak_cuda_mb": round(torch.cuda.max_memory_allocated() / 2**20)
        if device.type == "cuda" else None,
        "output": list(shape),
        "device": str(device),
        "threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the table; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1,4,24,100", help="megapixels, comma separated")
    parser.add_argument("--arch", default="tiny", choices=["tiny", "small"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--naive-max-mp", type=float, default=100.0)
    parser.add_argument("--relief", action="store_true", help="also time the relief network")
    parser.add_argument("--one", nargs=3, metavar=("MODE", "MP", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        mode, mp, folder = args.one
        print(json.dumps(run_one(mode, float(mp), folder, args.device)))
        return 0
    sizes = [float(s) for s in args.sizes.split(",") if s]
    rows = []
    with tempfile.TemporaryDirectory(prefix="depth-speed-") as tmp:
        build_model(args.arch, Path(tmp))
        for mp in sizes:
            modes = ["tiled"] + (["naive"] if mp <= args.naive_max_mp else [])
            modes += ["relief"] if args.relief else []
            for mode in modes:
                cmd = [sys.executable, __file__, "--device", args.device, "--one", mode, str(mp),
                       tmp]
                done = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    tail = (done.stderr.strip().splitlines() or ["?"])[-1]
                    rows.append({"mode": mode, "megapixels": mp, "error": tail})
                else:
                    rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    head = (f"{'arch':6} {'mode':7} {'MP':>7} {'size':>12} {'s':>8} {'MP/s':>8} "
            f"{'RSS MB':>8} {'CUDA MB':>8}")
    print(head)
    for r in rows:
        if "error" in r:
            print(f"{args.arch:6} {r['mode']:7} {r['megapixels']:>7} error: {r['error']}")
            continue
        print(f"{args.arch:6} {r['mode']:7} {r['megapixels']:>7} {r['size']:>12} "
              f"{r['seconds']:>8} {r['mp_per_s']:>8} {r['peak_rss_mb']:>8} "
              f"{r['peak_cuda_mb'] if r['peak_cuda_mb'] is not None else '-':>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
