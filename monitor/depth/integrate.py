"""Surface slopes -> height: Frankot-Chellappa (FFT) and confidence-weighted Poisson.

``frankot_chellappa`` projects the slope field onto the nearest integrable one
in the Fourier domain. The field is first mirrored into a 2H x 2W even
extension (slopes change sign across the mirror), so the periodic FFT sees no
seam at the image border. It runs on torch (GPU when asked) and costs two FFTs.

``poisson`` solves the weighted least-squares problem
``min sum w (D_x z - p)^2 + w (D_y z - q)^2`` with forward differences on the
pixel grid (scipy.sparse, direct solve): pixels of low confidence (shadowed,
glossy) pull little, so their errors do not spread. It is exact on the grid
but slower (a sparse factorisation) and is meant for analysis resolution.

Heights are in the units of the slopes times pixels (pixel pitch when the
slopes are dimensionless), mean zero over the weighted pixels.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import sparse
from scipy.sparse import linalg as splinalg

from monitor.errors import MonitorError

#: Poisson is refused above this many pixels (direct sparse solve).
POISSON_MAX_PX = 4_000_000


def _check(p: np.ndarray, q: np.ndarray) -> None:
    if p.ndim != 2 or p.shape != q.shape:
        raise MonitorError(f"integrate: slopes must be two H x W maps, got {p.shape}, {q.shape}")
    if min(p.shape) < 2:
        raise MonitorError(f"integrate: slope maps too small ({p.shape})")


def frankot_chellappa(
    p: np.ndarray, q: np.ndarray, *, device: torch.device | str | None = None
) -> np.ndarray:
    """Height whose gradient is nearest to ``(p, q)`` = ``(dh/dx, dh/dy)`` (Fourier projection).

    Parameters
    ----------
    p, q
        H x W slopes along x (right) and y (down). Non-finite values count as 0.
    device
        Torch device for the FFTs.

    Returns
    -------
    numpy.ndarray
        H x W float32 height, mean zero.

    Examples
    --------
    >>> import numpy as np
    >>> y, x = np.mgrid[0:32, 0:48].astype(float)
    >>> h = frankot_chellappa(np.full((32, 48), 0.5), np.zeros((32, 48)))
    >>> bool(abs(np.polyfit(x[0], h[0], 1)[0] - 0.5) < 0.05)
    True
    """
    p = np.asarray(p, np.float32)
    q = np.asarray(q, np.float32)
    _check(p, q)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    with torch.inference_mode():
        pt = torch.nan_to_num(torch.from_numpy(p).to(dev))
        qt = torch.nan_to_num(torch.from_numpy(q).to(dev))
        # even extension of h: p is odd across the x mirror, q across the y mirror
        pe = torch.cat([pt, -pt.flip(1)], dim=1)
        pe = torch.cat([pe, pe.flip(0)], dim=0)
        qe = torch.cat([qt, qt.flip(1)], dim=1)
        qe = torch.cat([qe, -qe.flip(0)], dim=0)
        hh, ww = pe.shape
        wy = 2 * math.pi * torch.fft.fftfreq(hh, device=dev).view(-1, 1)
        wx = 2 * math.pi * torch.fft.rfftfreq(ww, device=dev).view(1, -1)
        # symbols of the centred difference the slopes are usually measured with
        sx, sy = torch.sin(wx), torch.sin(wy)
        den = sx * sx + sy * sy
        den[0, 0] = 1.0
        z = (-1j * sx * torch.fft.rfft2(pe) - 1j * sy * torch.fft.rfft2(qe)) / den
        z[0, 0] = 0.0
        # sin symbols vanish at Nyquist: drop those rows/columns (no information)
        z[:, -1] = 0.0 if ww % 2 == 0 else z[:, -1]
        if hh % 2 == 0:
            z[hh // 2, :] = 0.0
        height = torch.fft.irfft2(z, s=(hh, ww))[: p.shape[0], : p.shape[1]]
        height = height - height.mean()
    return height.cpu().numpy().astype(np.float32)


def _diff_ops(h: int, w: int) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    def d1(n: int) -> sparse.csr_matrix:
        return sparse.diags([-np.ones(n - 1), np.ones(n - 1)], [0, 1], shape=(n - 1, n))

    dx = sparse.kron(sparse.identity(h), d1(w), format="csr")  # (h*(w-1), h*w)
    dy = sparse.kron(d1(h), sparse.identity(w), format="csr")  # ((h-1)*w, h*w)
    return dx, dy


def poisson(
    p: np.ndarray, q: np.ndarray, weight: np.ndarray | None = None, *, floor: float = 1e-3
) -> np.ndarray:
    """Confidence-weighted least-squares integration of ``(dh/dx, dh/dy)`` (sparse solve).

    Parameters
    ----------
    p, q
        H x W slopes along x (right) and y (down).
    weight
        H x W non-negative confidence; a difference between two pixels is
        weighted by the smaller of theirs (plus ``floor``, so the system stays
        connected). Non-finite slopes get weight ``floor``.
    floor
        Smallest weight of a difference.

    Returns
    -------
    numpy.ndarray
        H x W float32 height, weighted mean zero.

    Raises
    ------
    MonitorError
        On shape mismatch or more than ``POISSON_MAX_PX`` pixels (use
        :func:`frankot_chellappa`, or downsample).

    Examples
    --------
    >>> import numpy as np
    >>> h = poisson(np.full((16, 16), 0.25), np.zeros((16, 16)))
    >>> bool(abs((h[0, -1] - h[0, 0]) / 15 - 0.25) < 1e-3)
    True
    """
    p = np.asarray(p, np.float64)
    q = np.asarray(q, np.float64)
    _check(p, q)
    h, w = p.shape
    if h * w > POISSON_MAX_PX:
        raise MonitorError(
            f"integrate: Poisson solve refused at {h}x{w} (> {POISSON_MAX_PX} px); "
            "use Frankot-Chellappa or a lower resolution"
        )
    wt = np.ones((h, w)) if weight is None else np.asarray(weight, np.float64)
    if wt.shape != p.shape:
        raise MonitorError("integrate: weight and slopes differ in shape")
    bad = ~(np.isfinite(p) & np.isfinite(q))
    wt = np.where(bad | ~np.isfinite(wt), 0.0, np.clip(wt, 0.0, None))
    p = np.where(bad, 0.0, p)
    q = np.where(bad, 0.0, q)
    # slopes at the midpoints between neighbours
    gx = 0.5 * (p[:, :-1] + p[:, 1:])
    gy = 0.5 * (q[:-1, :] + q[1:, :])
    wx = np.minimum(wt[:, :-1], wt[:, 1:]) + floor
    wy = np.minimum(wt[:-1, :], wt[1:, :]) + floor
    dx, dy = _diff_ops(h, w)
    wxs = sparse.diags(wx.ravel())
    wys = sparse.diags(wy.ravel())
    a = (dx.T @ wxs @ dx + dy.T @ wys @ dy).tocsr()
    b = dx.T @ (wx.ravel() * gx.ravel()) + dy.T @ (wy.ravel() * gy.ravel())
    # fix the free constant: a tiny pull of every pixel towards 0
    a = a + sparse.identity(h * w) * 1e-9 * float(a.diagonal().mean())
    z = splinalg.spsolve(a.tocsc(), b).reshape(h, w)
    wsum = wt.sum()
    z -= (z * wt).sum() / wsum if wsum > 0 else z.mean()
    return z.astype(np.float32)


def integrate_normals(
    normals: np.ndarray,
    confidence: np.ndarray | None = None,
    *,
    method: str = "fc",
    device: torch.device | str | None = None,
    max_slope: float = 5.0,
) -> np.ndarray:
    """Height map from unit normals (x right, y down, z towards the viewer).

    Parameters
    ----------
    normals
        H x W x 3 unit normals.
    confidence
        H x W weights in [0, 1]; pixels at 0 take the slope 0 under ``"fc"``
        and no weight under ``"poisson"``.
    method
        ``"fc"`` (Frankot-Chellappa, FFT) or ``"poisson"`` (weighted sparse solve).
    device
        Torch device for ``"fc"``.
    max_slope
        Slopes are clipped to +-this (grazing normals).

    Returns
    -------
    numpy.ndarray
        H x W float32 height in pixel-pitch units, mean zero.

    Examples
    --------
    >>> import numpy as np
    >>> n = np.zeros((8, 8, 3), np.float32); n[..., 2] = 1
    >>> float(np.abs(integrate_normals(n)).max())
    0.0
    """
    if normals.ndim != 3 or normals.shape[2] != 3:
        raise MonitorError(f"integrate: normals must be H x W x 3, got {normals.shape}")
    nz = np.maximum(normals[..., 2], 1e-3)
    p = np.clip(-normals[..., 0] / nz, -max_slope, max_slope)
    q = np.clip(-normals[..., 1] / nz, -max_slope, max_slope)
    if method == "fc":
        if confidence is not None:
            ok = confidence > 0
            p, q = np.where(ok, p, 0.0), np.where(ok, q, 0.0)
        return frankot_chellappa(p, q, device=device)
    if method == "poisson":
        return poisson(p, q, confidence)
    raise MonitorError(f"integrate: unknown method {method!r} (fc, poisson)")
