"""Multi-light captures (RTI / photometric stereo sets): the light file and its images.

Two light-file formats are read:

``.lp`` (RTIBuilder, Relight)
    First line: the number of images. Then one line per image:
    ``filename x y z``, the direction *to* the lamp. As in RTIBuilder and
    Relight, x points right and y points *up* in the image, z towards the
    camera; ``monitor`` works with y down, so y is negated on reading
    (``y_up=False`` keeps it). Vectors are normalised (a dome's light
    positions need not be unit length).
``.csv``
    A header with ``file``, ``azimuth_deg``, ``elevation_deg`` (other columns
    are ignored), in the convention of :class:`monitor.results.Light`
    (azimuth counter-clockwise from the right, elevation above the picture
    plane).

File names are relative to the light file's folder. Every problem is one
:class:`~monitor.errors.MonitorError` line naming the file and the line.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from monitor.errors import MonitorError
from monitor.io import downsample, read_image, to_linear
from monitor.results import Capture, Light

#: A lamp must stand at least this high above the picture plane (degrees).
MIN_ELEVATION_DEG = 2.0
#: Fewest lamps for photometric stereo (three unknowns per pixel).
MIN_LIGHTS = 3
LIGHT_FILE_NAMES = ("lights.lp", "lights.csv")


def _find_light_file(folder: Path) -> Path:
    candidates = sorted(folder.glob("*.lp")) + sorted(folder.glob("*.csv"))
    if not candidates:
        raise MonitorError(f"{folder}: no light file (.lp or .csv) in the capture folder")
    named = [c for c in candidates if c.name in LIGHT_FILE_NAMES]
    if len(candidates) > 1 and len(named) != 1:
        names = ", ".join(c.name for c in candidates)
        raise MonitorError(f"{folder}: several light files ({names}); pass the one to use")
    return named[0] if named else candidates[0]


def _read_lp(path: Path, y_up: bool) -> list[tuple[str, np.ndarray]]:
    lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if not lines:
        raise MonitorError(f"{path.name}: empty light file")
    try:
        count = int(lines[0].split()[0])
    except ValueError:
        raise MonitorError(
            f"{path.name}: first line must be the number of images, got {lines[0][:40]!r}"
        ) from None
    rows = lines[1:]
    if count != len(rows):
        raise MonitorError(f"{path.name}: header says {count} images, file lists {len(rows)}")
    out = []
    for i, row in enumerate(rows, start=2):
        parts = row.split()
        if len(parts) < 4:
            raise MonitorError(f"{path.name} line {i}: expected 'filename x y z', got {row[:60]!r}")
        try:
            x, y, z = (float(v) for v in parts[-3:])
        except ValueError:
            raise MonitorError(f"{path.name} line {i}: light vector is not numeric") from None
        name = " ".join(parts[:-3])
        out.append((name, np.array([x, -y if y_up else y, z], np.float64)))
    return out


def _read_csv(path: Path) -> list[tuple[str, np.ndarray]]:
    with path.open(newline="", errors="replace") as fh:
        reader = csv.DictReader(fh)
        fields = set(reader.fieldnames or ())
        need = {"file", "azimuth_deg", "elevation_deg"}
        if not need <= fields:
            missing = ", ".join(sorted(need - fields))
            raise MonitorError(f"{path.name}: missing column(s) {missing}")
        out = []
        for i, row in enumerate(reader, start=2):
            try:
                az, el = float(row["azimuth_deg"]), float(row["elevation_deg"])
            except (TypeError, ValueError):
                raise MonitorError(f"{path.name} line {i}: azimuth/elevation not numeric") from None
            if not (math.isfinite(az) and math.isfinite(el)):
                raise MonitorError(f"{path.name} line {i}: azimuth/elevation not finite")
            out.append(((row["file"] or "").strip(), Light(az, el).vector()))
    if not out:
        raise MonitorError(f"{path.name}: no lamps listed")
    return out


def read_capture(path: str | Path, *, y_up: bool = True) -> Capture:
    """Read a multi-light capture: a folder with one light file, or the light file itself.

    Parameters
    ----------
    path
        A folder holding the images and exactly one ``.lp`` or ``.csv`` light
        file (or one named ``lights.lp`` / ``lights.csv``), or the light file.
    y_up
        ``.lp`` only: the file's y axis points up in the image (RTIBuilder,
        Relight); it is negated into ``monitor``'s y-down frame.

    Returns
    -------
    Capture
        Image paths in file order, unit light vectors (N x 3), the common size.

    Raises
    ------
    MonitorError
        Missing folder, light file or image; count mismatch; a light vector
        that is zero, not finite or below the horizon (elevation under
        ``MIN_ELEVATION_DEG``); duplicate files; fewer than ``MIN_LIGHTS``
        lamps; images of different sizes.

    Examples
    --------
    >>> cap = read_capture("../shared/real/leaves12")  # doctest: +SKIP
    >>> cap.n_lights, cap.size  # doctest: +SKIP
    (12, (500, 333))
    """
    p = Path(path)
    if not p.exists():
        raise MonitorError(f"{p}: no such capture folder or light file")
    light_file = _find_light_file(p) if p.is_dir() else p
    suffix = light_file.suffix.lower()
    if suffix == ".lp":
        entries = _read_lp(light_file, y_up)
    elif suffix == ".csv":
        entries = _read_csv(light_file)
    else:
        raise MonitorError(f"{light_file.name}: light file must be .lp or .csv")
    if len(entries) < MIN_LIGHTS:
        raise MonitorError(
            f"{light_file.name}: {len(entries)} lamp(s); photometric stereo needs {MIN_LIGHTS}"
        )
    folder = light_file.parent
    paths: list[str] = []
    vectors = np.zeros((len(entries), 3), np.float64)
    seen: set[str] = set()
    for i, (name, vec) in enumerate(entries):
        if not name:
            raise MonitorError(f"{light_file.name}: entry {i + 1} has no file name")
        norm = float(np.linalg.norm(vec))
        if not np.isfinite(vec).all() or norm < 1e-9:
            raise MonitorError(f"{light_file.name}: {name}: zero or non-finite light vector")
        vec = vec / norm
        if math.degrees(math.asin(max(-1.0, min(1.0, vec[2])))) < MIN_ELEVATION_DEG:
            raise MonitorError(
                f"{light_file.name}: {name}: lamp at or below the horizon "
                f"(elevation {math.degrees(math.asin(max(-1.0, min(1.0, vec[2])))):.1f} deg)"
            )
        f = (folder / name).resolve()
        if str(f) in seen:
            raise MonitorError(f"{light_file.name}: {name} is listed twice")
        seen.add(str(f))
        if not f.is_file():
            raise MonitorError(f"{light_file.name}: image {name} not found in {folder}")
        paths.append(str(f))
        vectors[i] = vec
    size = _common_size(paths)
    return Capture(paths=tuple(paths), lights=vectors, source=str(light_file.resolve()), size=size)


def _common_size(paths: list[str]) -> tuple[int, int]:
    from PIL import Image

    sizes = {}
    for f in paths:
        try:
            with Image.open(f) as im:
                sizes[f] = im.size
        except Exception:  # noqa: BLE001 - decoded properly (with its own error) later
            sizes[f] = read_image(f).pixels.shape[1::-1]
    first = sizes[paths[0]]
    for f, s in sizes.items():
        if s != first:
            raise MonitorError(
                f"capture: mixed image sizes ({Path(paths[0]).name} is {first[0]}x{first[1]}, "
                f"{Path(f).name} is {s[0]}x{s[1]})"
            )
    return (int(first[0]), int(first[1]))


def load_capture(capture: Capture, *, max_px: int | None = None) -> np.ndarray:
    """Decode a capture's images into linear light.

    Parameters
    ----------
    capture
        From :func:`read_capture`.
    max_px
        When given, area-downsample so that the long side is at most this.

    Returns
    -------
    numpy.ndarray
        N x H x W x 3 float32, linear light in [0, 1].

    Examples
    --------
    >>> images = load_capture(read_capture("capture/"), max_px=1000)  # doctest: +SKIP
    """
    out: list[np.ndarray] = []
    for f in capture.paths:
        px = read_image(f).pixels
        if px.shape[1::-1] != capture.size:
            raise MonitorError(f"capture: {Path(f).name} changed size since it was listed")
        if max_px is not None and max(px.shape[:2]) > max_px:
            px = downsample(px, max_px / max(px.shape[:2]))
        out.append(to_linear(px))
    return np.stack(out)
