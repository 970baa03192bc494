"""Height map -> triangle mesh (trimesh), written as PLY or binary glTF (GLB).

The height map is area-averaged onto a regular grid coarse enough for the
vertex budget (a stride of ``k`` pixels), and each grid cell becomes two
triangles. Coordinates: x to the right, y *up* (so the mesh stands as the scan
is seen in 3-D viewers), z towards the viewer; in millimetres when
``px_per_mm`` is given, else in baseline pixels (heights in pixel pitch are
then in the same unit as x and y). Colours: per vertex from the scan (PLY and
GLB) and, for GLB, the scan itself as a texture (at most ``texture_px`` on
the long side).
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np
import trimesh

from monitor.errors import MonitorError


def _area(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return cv2.resize(values, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


def _to_uint8(colours: np.ndarray) -> np.ndarray:
    if colours.dtype == np.uint8:
        return colours
    if colours.dtype == np.uint16:
        return (colours // 257).astype(np.uint8)
    c = np.clip(np.nan_to_num(colours.astype(np.float32)), 0.0, 1.0)
    return np.round(c * 255).astype(np.uint8)


def height_to_mesh(
    height: np.ndarray,
    *,
    colours: np.ndarray | None = None,
    max_vertices: int = 250_000,
    px_per_mm: float | None = None,
    z_scale: float = 1.0,
    texture_px: int = 2048,
) -> trimesh.Trimesh:
    """Triangulate a height map on a decimated regular grid.

    Parameters
    ----------
    height
        H x W float height in pixel-pitch units (+ = towards the viewer); NaN
        become the median height.
    colours
        H x W x 3 sRGB-encoded scan (uint8 / uint16, or float in [0, 1]) for
        vertex colours and texture; may differ in size from ``height``.
    max_vertices
        Vertex budget (>= 4): the grid stride is the smallest that fits it.
    px_per_mm
        Pixels per millimetre: coordinates in millimetres when given.
    z_scale
        Vertical exaggeration (1 = true scale).
    texture_px
        Long side of the texture image.

    Returns
    -------
    trimesh.Trimesh
        ``metadata`` holds ``units`` (``"mm"`` or ``"px"``), ``stride_px``, ``z_scale``.

    Raises
    ------
    MonitorError
        Not a 2-D map, too small, no finite value, or a budget under 4 vertices.

    Examples
    --------
    >>> import numpy as np
    >>> m = height_to_mesh(np.zeros((100, 200)), max_vertices=1000)
    >>> len(m.vertices) <= 1000
    True
    """
    h = np.asarray(height, np.float32)
    if h.ndim != 2 or min(h.shape) < 2:
        raise MonitorError(f"mesh: height must be an H x W map (>= 2 x 2), got {h.shape}")
    if max_vertices < 4:
        raise MonitorError(f"mesh: vertex budget must be at least 4, got {max_vertices}")
    finite = np.isfinite(h)
    if not finite.any():
        raise MonitorError("mesh: height map has no finite value")
    if px_per_mm is not None and not (math.isfinite(px_per_mm) and px_per_mm > 0):
        raise MonitorError(f"mesh: px_per_mm must be > 0, got {px_per_mm}")
    rows, cols = h.shape
    stride = 1
    while math.ceil(rows / stride) * math.ceil(cols / stride) > max_vertices:
        stride += 1
    gr, gc = max(2, math.ceil(rows / stride)), max(2, math.ceil(cols / stride))
    filled = np.where(finite, h, float(np.median(h[finite])))
    z = _area(filled, (gr, gc)) if (gr, gc) != h.shape else filled
    # vertex (i, j) sits at the centre of its footprint, in full-resolution pixels
    sy, sx = rows / gr, cols / gc
    xs = (np.arange(gc) + 0.5) * sx
    ys = (np.arange(gr) + 0.5) * sy
    unit = 1.0 / px_per_mm if px_per_mm else 1.0
    xx, yy = np.meshgrid(xs, ys)
    verts = np.stack([xx * unit, (rows - yy) * unit, z * z_scale * unit], axis=-1).reshape(-1, 3)
    idx = np.arange(gr * gc).reshape(gr, gc)
    a, b = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel()
    c, d = idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    # counter-clockwise seen from +z (y up): a (top-left), c (below), b (right)
    faces = np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)])
    visual = None
    if colours is not None:
        if colours.ndim != 3 or colours.shape[2] != 3:
            raise MonitorError(f"mesh: colours must be H x W x 3, got {colours.shape}")
        c8 = _to_uint8(colours)
        vc = _area(c8, (gr, gc)).reshape(-1, 3)
        rgba = np.concatenate([vc, np.full((len(vc), 1), 255, np.uint8)], axis=1)
        visual = trimesh.visual.ColorVisuals(vertex_colors=rgba)
    mesh = trimesh.Trimesh(vertices=verts, faces=faces, visual=visual, process=False)
    mesh.metadata.update(
        {"units": "mm" if px_per_mm else "px", "stride_px": float(max(sx, sy)), "z_scale": z_scale}
    )
    if colours is not None:
        mesh.metadata["texture"] = _texture(_to_uint8(colours), texture_px)
        mesh.metadata["uv"] = np.stack(
            [(xx / cols).ravel(), (1.0 - yy / rows).ravel()], axis=1
        ).astype(np.float32)
    return mesh


def _texture(c8: np.ndarray, texture_px: int) -> np.ndarray:
    s = min(1.0, texture_px / max(c8.shape[:2]))
    if s < 1:
        size = (max(1, round(c8.shape[1] * s)), max(1, round(c8.shape[0] * s)))
        return cv2.resize(c8, size, interpolation=cv2.INTER_AREA)
    return c8


def write_mesh(mesh: trimesh.Trimesh, path: str | Path) -> Path:
    """Write a mesh as ``.ply`` (vertex colours) or ``.glb`` (scan as texture), atomically.

    Parameters
    ----------
    mesh
        From :func:`height_to_mesh`.
    path
        Target file; the format is told by the suffix.

    Returns
    -------
    Path

    Raises
    ------
    MonitorError
        Unknown suffix or a failed write (nothing is left half-written).

    Examples
    --------
    >>> import numpy as np
    >>> write_mesh(height_to_mesh(np.zeros((8, 8))), "/tmp/flat.ply")  # doctest: +SKIP
    """
    p = Path(path)
    kind = p.suffix.lower().lstrip(".")
    if kind not in ("ply", "glb"):
        raise MonitorError(f"mesh: cannot write {p.name} (use .ply or .glb)")
    out = mesh
    if kind == "glb" and "texture" in mesh.metadata:
        from PIL import Image

        material = trimesh.visual.material.PBRMaterial(
            baseColorTexture=Image.fromarray(mesh.metadata["texture"]),
            metallicFactor=0.0,
            roughnessFactor=1.0,
        )
        out = trimesh.Trimesh(
            vertices=mesh.vertices,
            faces=mesh.faces,
            visual=trimesh.visual.TextureVisuals(uv=mesh.metadata["uv"], material=material),
            process=False,
        )
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    os.close(fd)
    try:
        data = out.export(file_type=kind)
        if isinstance(data, str):
            data = data.encode()
        if not isinstance(data, bytes):  # trimesh returns a dict only for file_type="dict"
            raise MonitorError(f"trimesh did not export {kind} as bytes")
        Path(tmp).write_bytes(data)
        os.replace(tmp, p)
    except Exception as exc:
        raise MonitorError(f"mesh: cannot write {p.name}: {exc}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return p
