"""Calibrated photometric stereo: N images under N known lamps -> albedo, normals, confidence.

Model (Lambertian, distant lamps of equal intensity): ``I_k = rho * max(n . l_k, 0)``.
At every pixel the scaled normal ``g = rho * n`` is the weighted least-squares
solution of ``L g = I`` over the lamps that are kept:

1. lamps that leave the pixel dark (cast or attached shadow: below
   ``shadow_frac`` of the pixel's median over the lamps, or under an absolute
   floor) or clipped (at or above ``saturation``) are dropped, and the first
   fit uses only the darker ``trim`` fraction of the rest (a glossy
   highlight spans the brightest few);
2. after a fit, lamps the fit says face away from the surface
   (``n . l < min_cos``) are shadow, and lamps whose residual exceeds
   ``reject_z`` robust sigmas of the tile's relative residuals (and at least
   ``min_reject`` of the albedo) are highlight (positive residual, gloss) or
   shadow (negative). With ``soft`` (the default) lamps are down-weighted
   smoothly, ``w = 1 / (1 + (r / t)^2)`` with ``t`` that threshold (a lamp
   counts as rejected below ``w = 1/2``): hard cuts flip on noise between two
   captures of one surface and read as change. Every usable lamp is weighed
   again against each new fit, which is repeated ``iterations`` times.

Confidence in [0, 1] is the product of a conditioning term (smallest
eigenvalue of the weighted ``L^T W L`` of the kept lamps over that of all
lamps: the inverse of the growth of the normals' noise variance) and a
residual term ``exp(-0.5 (rms / residual_scale)^2)`` of the kept lamps'
relative RMS residual; it is 0 where fewer than three lamps
are left or the pixel is black (could not tell). Pixels are processed in
tiles of ``tile_px`` pixels on ``device`` (CPU or GPU).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from monitor.errors import MonitorError
from monitor.results import NormalMap

_FLOOR = 2e-3  # linear light below this is not signal (sensor floor)


def _as_tensor(x: torch.Tensor | np.ndarray, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        if not np.issubdtype(x.dtype, np.floating):
            raise MonitorError(f"photometric stereo: {name} must be float (linear light)")
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if isinstance(x, torch.Tensor):
        if not x.is_floating_point():
            raise MonitorError(f"photometric stereo: {name} must be float (linear light)")
        return x.float()
    raise MonitorError(f"photometric stereo: {name} must be a numpy array or torch tensor")


def _check(images: torch.Tensor, lights: np.ndarray) -> None:
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[3] != 3):
        raise MonitorError(
            f"photometric stereo: images must be N x H x W or N x H x W x 3, got "
            f"{tuple(images.shape)}"
        )
    n = images.shape[0]
    if lights.shape != (n, 3):
        raise MonitorError(
            f"photometric stereo: lights must be {n} x 3 (one per image), got {lights.shape}"
        )
    if n < 3:
        raise MonitorError(f"photometric stereo needs at least 3 lamps, got {n}")
    if not np.isfinite(lights).all() or (np.linalg.norm(lights, axis=1) < 1e-9).any():
        raise MonitorError("photometric stereo: zero or non-finite light vector")
    if (lights[:, 2] / np.linalg.norm(lights, axis=1) <= 0).any():
        raise MonitorError("photometric stereo: a lamp lies at or below the horizon")
    if np.linalg.matrix_rank(lights, tol=1e-6) < 3:
        raise MonitorError("photometric stereo: the lamps are coplanar with the camera axis "
                           "(rank < 3); normals cannot be recovered")


def _solve(l_mat: torch.Tensor, grey: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Weighted LS per pixel. l_mat (N,3), grey (P,N), w (P,N) -> g (P,3), A (P,3,3)."""
    lw = w[:, :, None] * l_mat[None]  # (P,N,3)
    a = torch.einsum("pni,nj->pij", lw, l_mat)
    b = torch.einsum("pni,pn->pi", lw, grey)
    eye = torch.eye(3, device=a.device, dtype=a.dtype)
    trace = a.diagonal(dim1=1, dim2=2).sum(-1).clamp_min(1e-12)
    g = torch.linalg.solve(a + 1e-6 * trace[:, None, None] * eye, b[..., None])[..., 0]
    return g, a


def photometric_stereo(
    images: torch.Tensor | np.ndarray,
    lights: np.ndarray,
    *,
    device: torch.device | str | None = None,
    tile_px: int = 1 << 18,
    shadow_frac: float = 0.2,
    saturation: float = 0.98,
    min_cos: float = 0.02,
    reject_z: float = 4.0,
    min_reject: float = 0.03,
    iterations: int = 3,
    trim: float = 0.6,
    soft: bool = True,
    residual_scale: float = 0.1,
) -> NormalMap:
    """Albedo, unit normals and per-pixel confidence from images under known lamps.

    Parameters
    ----------
    images
        N x H x W (grey) or N x H x W x 3 (RGB) linear light, float, one image
        per lamp, registered (one fixed camera).
    lights
        N x 3 vectors pointing *at* each lamp (x right, y down, z towards the
        viewer); normalised here. At least three, not all in one plane with the
        camera axis.
    device
        Torch device for the per-pixel solves (``"cuda"`` runs on the GPU).
    tile_px
        Pixels per tile (bounds memory: about ``60 * N * tile_px`` bytes).
    shadow_frac, saturation, min_cos, reject_z, min_reject, iterations, trim, soft
        Outlier rejection, see the module docstring.
    residual_scale
        Relative RMS residual at which the residual term of confidence is ``e^-0.5``.

    Returns
    -------
    NormalMap
        Normals (H x W x 3), albedo (H x W or H x W x 3), confidence, lamps
        kept / rejected per pixel, relative RMS residual.

    Raises
    ------
    MonitorError
        Wrong shapes or dtypes, fewer than three lamps, lamps below the
        horizon or degenerate (rank < 3) lamp sets.

    Examples
    --------
    >>> import numpy as np
    >>> from monitor.results import Light
    >>> lights = np.stack([Light(a, 40).vector() for a in (0, 120, 240)])
    >>> flat = np.tile(0.5 * lights[:, 2][:, None, None], (1, 8, 8))
    >>> nm = photometric_stereo(flat.astype(np.float32), lights)
    >>> np.allclose(nm.normals[..., 2], 1.0, atol=1e-4)
    True
    """
    imgs = _as_tensor(images, "images")
    lights = np.asarray(lights, np.float64)
    _check(imgs, lights)
    lights = lights / np.linalg.norm(lights, axis=1, keepdims=True)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    n, h, w = imgs.shape[:3]
    rgb = imgs.ndim == 4
    l_mat = torch.from_numpy(lights.astype(np.float32)).to(dev)
    full_min = float(np.linalg.eigvalsh(lights.T @ lights)[0])

    flat = imgs.reshape(n, h * w, 3) if rgb else imgs.reshape(n, h * w, 1)
    out_n = torch.zeros((h * w, 3), dtype=torch.float32)
    out_rho = torch.zeros((h * w, 3 if rgb else 1), dtype=torch.float32)
    out_conf = torch.zeros(h * w, dtype=torch.float32)
    out_used = torch.zeros(h * w, dtype=torch.int16)
    out_sh = torch.zeros(h * w, dtype=torch.int16)
    out_hl = torch.zeros(h * w, dtype=torch.int16)
    out_res = torch.zeros(h * w, dtype=torch.float32)
    with torch.inference_mode():
        for start in range(0, h * w, tile_px):
            stop = min(start + tile_px, h * w)
            chans = flat[:, start:stop].to(dev).permute(1, 0, 2)  # (P,N,C)
            chans = torch.nan_to_num(chans, nan=0.0).clamp_min(0.0)
            grey = chans.mean(dim=2)
            clipped = (chans.amax(dim=2) >= saturation)
            med = grey.median(dim=1, keepdim=True).values
            dark = (grey < shadow_frac * med) | (grey < _FLOOR)
            base_ok = ~(clipped | dark)
            # first fit on the darker lamps only: a glossy highlight spans the
            # brightest few lamps and would bias every later residual test
            vals = torch.where(base_ok, grey, torch.full_like(grey, math.inf))
            ranks = vals.argsort(dim=1).argsort(dim=1)
            n_ok = base_ok.sum(dim=1, keepdim=True)
            limit = torch.clamp(torch.ceil(trim * n_ok), min=3)
            keep = base_ok & (ranks < limit)
            shadow = dark.clone()
            highlight = clipped.clone()
            g, a = _solve(l_mat, grey, keep.float())
            for _ in range(iterations):
                rho = g.norm(dim=1, keepdim=True).clamp_min(1e-8)
                pred = g @ l_mat.T  # (P,N)
                rel = (grey - pred) / rho
                facing_away = pred / rho < min_cos
                inl = rel[keep & ~facing_away]
                sigma = float(1.4826 * inl.abs().median()) if inl.numel() else 0.0
                thr = max(reject_z * sigma, min_reject)
                if soft:
                    # Cauchy weights: continuous in the data, so two captures of one
                    # surface do not flip a lamp in or out on noise near the threshold
                    wgt = (base_ok & ~facing_away).float() / (1.0 + (rel / thr) ** 2)
                else:
                    wgt = (base_ok & ~facing_away & (rel.abs() <= thr)).float()
                keep = wgt >= 0.5
                hi = base_ok & ~keep & (rel > 0)
                lo = base_ok & ((~keep & (rel <= 0)) | facing_away)
                shadow = dark | lo
                highlight = clipped | hi
                g, a = _solve(l_mat, grey, wgt)
            if iterations == 0:
                wgt = keep.float()
            kept = keep.sum(dim=1)
            rho = g.norm(dim=1).clamp_min(1e-8)
            nrm = g / rho[:, None]
            good = (kept >= 3) & (nrm[:, 2] > 0.05) & (rho > _FLOOR)
            nrm = torch.where(good[:, None], nrm, torch.tensor([0.0, 0.0, 1.0], device=dev))
            shade = (nrm @ l_mat.T).clamp_min(0)  # (P,N)
            kw = wgt
            den = (kw * shade * shade).sum(dim=1).clamp_min(1e-8)
            albedo = torch.einsum("pn,pnc->pc", kw * shade, chans) / den[:, None]
            resid = torch.sqrt(
                (kw * (grey - rho[:, None] * shade) ** 2).sum(1) / kw.sum(1).clamp_min(1)
            ) / rho
            lam = torch.linalg.eigvalsh(a)[:, 0]
            cond = (lam / full_min).clamp(0, 1)
            conf = cond * torch.exp(-0.5 * (resid / residual_scale) ** 2) * good.float()
            out_n[start:stop] = nrm.cpu()
            out_rho[start:stop] = albedo.cpu()
            out_conf[start:stop] = conf.cpu()
            out_used[start:stop] = kept.to(torch.int16).cpu()
            out_sh[start:stop] = shadow.sum(1).to(torch.int16).cpu()
            out_hl[start:stop] = (highlight & ~shadow).sum(1).to(torch.int16).cpu()
            out_res[start:stop] = torch.where(good, resid, torch.tensor(math.nan, device=dev)).cpu()
    albedo_np = out_rho.numpy().reshape(h, w, -1)
    return NormalMap(
        normals=out_n.numpy().reshape(h, w, 3),
        albedo=albedo_np if rgb else albedo_np[..., 0],
        confidence=out_conf.numpy().reshape(h, w),
        n_used=out_used.numpy().reshape(h, w),
        n_shadow=out_sh.numpy().reshape(h, w),
        n_highlight=out_hl.numpy().reshape(h, w),
        residual=out_res.numpy().reshape(h, w),
        lights=lights,
        device=str(dev),
    )


def angular_error_deg(normals: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Angle in degrees between two H x W x 3 normal fields (pixelwise).

    Parameters
    ----------
    normals, truth
        H x W x 3 normal fields (need not be unit length).

    Returns
    -------
    np.ndarray
        H x W angles in degrees, 0..180.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.zeros((2, 2, 3)); z[..., 2] = 1
    >>> float(angular_error_deg(z, z).max())
    0.0
    """
    a = normals / np.linalg.norm(normals, axis=-1, keepdims=True)
    b = truth / np.linalg.norm(truth, axis=-1, keepdims=True)
    return np.degrees(np.arccos(np.clip((a * b).sum(-1), -1.0, 1.0)))


def normals_from_height(height: np.ndarray) -> np.ndarray:
    """Unit normals (x right, y down, z towards the viewer) of a height map, central differences.

    Parameters
    ----------
    height
        H x W height map, in pixel pitch.

    Returns
    -------
    np.ndarray
        H x W x 3 float32 unit normals.

    Examples
    --------
    >>> import numpy as np
    >>> n = normals_from_height(np.zeros((4, 4)))
    >>> float(n[..., 2].min())
    1.0
    """
    gy, gx = np.gradient(np.asarray(height, np.float64))
    nrm = np.stack([-gx, -gy, np.ones_like(gx)], axis=-1)
    return (nrm / np.linalg.norm(nrm, axis=-1, keepdims=True)).astype(np.float32)
