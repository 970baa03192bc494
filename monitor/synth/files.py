"""Writing a rendered pair and its truth to a folder."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import tifffile

from monitor.errors import MonitorError
from monitor.synth.specs import SynthPair


def _write_rgb(path: Path, rgb: np.ndarray, fmt: str, quality: int) -> None:
    if fmt == "tif":
        tifffile.imwrite(path, rgb, photometric="rgb")
        return
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if fmt == "jpg" else []
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params):
        raise MonitorError(f"cannot write {path}")


def write_pair(pair: SynthPair, out_dir: Path, *, fmt: str = "png") -> dict[str, Path]:
    """Write a pair and its truth to a folder.

    Parameters
    ----------
    pair
        From :func:`render_pair`.
    out_dir
        Created if missing.
    fmt
        ``"png"``, ``"tif"`` or ``"jpg"``. For ``"jpg"`` the pair's own JPEG bytes
        are written when it has them (then the files decode to ``pair.baseline``
        / ``pair.current`` exactly), else the arrays are encoded at quality 92.

    Returns
    -------
    dict of str to Path
        ``baseline``, ``current``, ``truth`` (truth.json), ``height_change``
        (truth_height_change.tif, float32) and ``labels`` (truth_labels.png,
        uint8: region id, 255 = discoloration, 0 = nothing).
    """
    fmt = fmt.lower().lstrip(".")
    fmt = {"jpeg": "jpg", "tiff": "tif"}.get(fmt, fmt)
    if fmt not in {"png", "tif", "jpg"}:
        raise MonitorError(f"fmt must be png, tif or jpg, got {fmt!r}")
    if fmt == "jpg" and pair.baseline.dtype != np.uint8:
        raise MonitorError("JPEG holds 8-bit samples; write a 16-bit pair as png or tif")
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MonitorError(f"cannot create {out_dir}: {exc}") from exc
    paths = {
        "baseline": out_dir / f"baseline.{fmt}",
        "current": out_dir / f"current.{fmt}",
        "truth": out_dir / "truth.json",
        "height_change": out_dir / "truth_height_change.tif",
        "labels": out_dir / "truth_labels.png",
    }
    if fmt == "jpg" and pair.jpeg is not None:
        paths["baseline"].write_bytes(pair.jpeg[0])
        paths["current"].write_bytes(pair.jpeg[1])
    else:
        quality = pair.spec.jpeg_quality or 92
        _write_rgb(paths["baseline"], pair.baseline, fmt, quality)
        _write_rgb(paths["current"], pair.current, fmt, quality)
    paths["truth"].write_text(json.dumps(pair.truth_dict(), indent=2) + "\n", encoding="utf-8")
    tifffile.imwrite(
        paths["height_change"], pair.height_change.astype(np.float32), compression="zlib"
    )
    labels = np.zeros(pair.height_change.shape, np.uint8)
    for r in pair.regions:
        labels[r.mask] = min(r.id, 254)
    if pair.discoloration is not None:
        labels[pair.discoloration.mask] = 255
    if not cv2.imwrite(str(paths["labels"]), labels):
        raise MonitorError(f"cannot write {paths['labels']}")
    return paths
