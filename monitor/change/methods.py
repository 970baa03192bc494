"""Change estimators: two registered linear scans -> signed height change.

``photometric``
    The log ratio of the two scans cancels the paint. Its chromatic part
    (channels changing unequally) is appearance change -- stains, yellowing --
    and is masked out; its achromatic part, with low frequencies (exposure,
    light drift, vignetting) removed, is shading change, integrated along the
    light direction into height change. Units: baseline pixel pitch (exact
    for a Lambertian surface lit from the stated elevation).
``depth``
    Relative height of each scan from a per-scan estimator (``--depth``),
    current mapped onto baseline by a robust scale/shift fit, then
    differenced. Units: those of the baseline's estimate.
"""

from __future__ import annotations

import math

import kornia
import numpy as np
import torch
from scipy import ndimage
from skimage.color import deltaE_ciede2000, xyz2lab
from skimage.color.colorconv import xyz_from_rgb

from monitor.change.alignment import apply_alignment, fit_scale_shift
from monitor.depth.base import DepthEstimator
from monitor.depth.shading import (
    in_plane_direction,
    integrate_two_sided,
    smooth_background,
)
from monitor.errors import MonitorError
from monitor.results import ChangeMap, Light

METHODS = ("photometric", "depth", "pair")

_EPS = 2e-3  # added before logs: keeps dark paint from dominating the ratio
_DARK, _BRIGHT = 0.004, 0.985  # pixels outside are not trusted (noise floor, clipping)


def robust_sigma(values: np.ndarray) -> float:
    """Normal-consistent MAD of the finite values (0 when there are none)."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(v - np.median(v))))


def local_noise(values: np.ndarray, mask: np.ndarray, *, blocks: int = 8) -> np.ndarray:
    """Local robust spread of a map, as a smooth map of the same shape.

    The map is cut into about ``blocks`` blocks along its long side; each
    block's MAD (over ``mask``) is replaced by the median of its 3 x 3
    neighbourhood -- so a block filled by a large deformation does not raise
    its own level -- and the result is interpolated bilinearly. Blocks without
    data take the global value, and no block goes below half the global value.

    Parameters
    ----------
    values
        H x W map.
    mask
        H x W bool, pixels to measure.
    blocks
        Number of blocks along the long side.

    Returns
    -------
    np.ndarray
        H x W float32, positive.
    """
    h, w = values.shape
    size = max(8, int(math.ceil(max(h, w) / blocks)))
    ny, nx = int(math.ceil(h / size)), int(math.ceil(w / size))
    overall = robust_sigma(values[mask]) or 1e-6
    grid = np.full((ny, nx), np.nan, dtype=np.float64)
    for i in range(ny):
        for j in range(nx):
            sl = (slice(i * size, (i + 1) * size), slice(j * size, (j + 1) * size))
            m = mask[sl]
            if m.sum() >= 0.2 * m.size:
                grid[i, j] = robust_sigma(values[sl][m])
    grid = np.where(np.isfinite(grid), grid, overall)
    padded = np.pad(grid, 1, mode="edge")
    stack = np.stack([padded[a : a + ny, b : b + nx] for a in range(3) for b in range(3)])
    grid = np.maximum(np.median(stack, axis=0), 0.5 * overall)
    # bilinear, block centres at the centres of the blocks
    ys = np.clip((np.arange(h) + 0.5) / size - 0.5, 0, ny - 1)
    xs = np.clip((np.arange(w) + 0.5) / size - 0.5, 0, nx - 1)
    y0 = np.minimum(ys.astype(int), ny - 2) if ny > 1 else np.zeros(h, int)
    x0 = np.minimum(xs.astype(int), nx - 2) if nx > 1 else np.zeros(w, int)
    fy = (ys - y0)[:, None] if ny > 1 else np.zeros((h, 1))
    fx = (xs - x0)[None, :] if nx > 1 else np.zeros((1, w))
    y1 = np.minimum(y0 + 1, ny - 1)
    x1 = np.minimum(x0 + 1, nx - 1)
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x1] * fx
    bottom = grid[y1][:, x0] * (1 - fx) + grid[y1][:, x1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    k = 2 * int(math.ceil(3 * sigma)) + 1
    return kornia.filters.gaussian_blur2d(x[None], (k, k), (sigma, sigma), border_type="reflect")[0]


def _check_pair(baseline: np.ndarray, current: np.ndarray, valid: np.ndarray) -> None:
    if baseline.ndim != 3 or baseline.shape[2] != 3:
        raise MonitorError(f"change: baseline must be H x W x 3, got {baseline.shape}")
    if current.shape != baseline.shape or valid.shape != baseline.shape[:2]:
        raise MonitorError(
            f"change: shapes differ (baseline {baseline.shape}, current {current.shape}, "
            f"valid {valid.shape})"
        )
    if not valid.any():
        raise MonitorError("change: the two scans do not overlap")


def _trusted(valid: np.ndarray, *images: np.ndarray, erode: int = 3) -> np.ndarray:
    ok = ndimage.binary_erosion(valid, iterations=erode) if erode else valid.copy()
    for img in images:
        ok &= (img.min(axis=2) > _DARK) & (img.max(axis=2) < _BRIGHT)
    return ok


def colour_difference(
    baseline: np.ndarray, current: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CIEDE2000 colour difference, lightness and chroma change of two linear sRGB images.

    Parameters
    ----------
    baseline, current
        H x W x 3 float linear-light sRGB (D65), same shape.

    Returns
    -------
    delta_e, delta_l, delta_c
        H x W float32: ``deltaE_ciede2000``, ``L*`` change and ``C*ab``
        change from baseline to current.

    Examples
    --------
    >>> a = np.full((2, 2, 3), 0.2, np.float32)
    >>> de, dl, dc = colour_difference(a, a * np.array([1.0, 0.8, 0.6], np.float32))
    >>> bool(de.min() > 5 and dl.max() < 0)
    True
    """
    if baseline.shape != current.shape or baseline.ndim != 3 or baseline.shape[2] != 3:
        raise MonitorError(
            f"colour difference: need two H x W x 3 images, got {baseline.shape}, {current.shape}"
        )
    lab_b = xyz2lab(np.clip(baseline, 0, None) @ xyz_from_rgb.T.astype(np.float32))
    lab_c = xyz2lab(np.clip(current, 0, None) @ xyz_from_rgb.T.astype(np.float32))
    delta_e = deltaE_ciede2000(lab_b, lab_c)
    delta_l = lab_c[..., 0] - lab_b[..., 0]
    delta_c = np.hypot(lab_c[..., 1], lab_c[..., 2]) - np.hypot(lab_b[..., 1], lab_b[..., 2])
    return (delta_e.astype(np.float32), delta_l.astype(np.float32), delta_c.astype(np.float32))


def photometric_change(
    baseline: np.ndarray,
    current: np.ndarray,
    valid: np.ndarray,
    light: Light,
    *,
    scale: float = 1.0,
    device: torch.device | None = None,
    background_frac: float = 0.03,
    chroma_z: float = 6.0,
    chroma_floor: float = 0.03,
    presmooth_px: float = 1.5,
) -> ChangeMap:
    """Height change from the log ratio of two registered linear scans.

    Parameters
    ----------
    baseline, current
        H x W x 3 float32 linear light, current already warped onto the baseline grid.
    valid
        H x W bool, where the warped current has data.
    light
        Direction of the lamp (both scans).
    scale
        Analysis pixels per baseline pixel (recorded in the result).
    device
        Torch device for the filtering and the FFT integration.
    background_frac
        Sigma of the low-frequency removal as a fraction of the long side.
    presmooth_px
        Gaussian smoothing of both scans before the ratio, in analysis pixels.
    chroma_z, chroma_floor
        A pixel is appearance change when its smoothed chromatic log-ratio
        exceeds ``max(chroma_floor, median + chroma_z * sigma)``.

    Returns
    -------
    ChangeMap
        Height change in units of the analysis pixel pitch divided by ``scale``
        (i.e. baseline pixels), NaN outside the overlap.
    """
    _check_pair(baseline, current, valid)
    ux, uy, gain = in_plane_direction(light)
    device = device or torch.device("cpu")
    ok = _trusted(valid, baseline, current)
    long_side = max(baseline.shape[:2])
    with torch.inference_mode():
        # bicubic resampling overshoots slightly below 0: clamp before the log
        b = torch.from_numpy(np.ascontiguousarray(baseline.transpose(2, 0, 1))).to(device)
        c = torch.from_numpy(np.ascontiguousarray(current.transpose(2, 0, 1))).to(device)
        b, c = b.clamp_min(0), c.clamp_min(0)
        if presmooth_px > 0:
            # residual sub-pixel misregistration of fine texture (weave, impasto
            # edges) is the largest noise in the ratio; deformations are far wider
            b = _blur(b, presmooth_px)
            c = _blur(c, presmooth_px)
        w = torch.from_numpy(ok).to(device=device, dtype=torch.float32)
        ratio = (torch.log(c + _EPS) - torch.log(b + _EPS)) * w
        del c
        # low frequencies (exposure, white balance, light drift, vignetting) go;
        # strong local changes are left out of that estimate, or their blurred
        # copy would come back as broad halos and integrate into long smears
        sigma_bg = background_frac * long_side
        first = ratio - smooth_background(ratio, w, sigma_bg)
        mean_first = smooth_background(first.mean(dim=0), w, 2.0)
        spread = robust_sigma(mean_first.cpu().numpy()[ok])
        quiet = (mean_first.abs() < 3 * spread).cpu().numpy()
        quiet = ~ndimage.binary_dilation(~quiet, iterations=max(2, int(0.01 * long_side)))
        w_bg = w * torch.from_numpy(quiet).to(device=device, dtype=torch.float32)
        ratio = (ratio - smooth_background(ratio, w_bg, sigma_bg)) * w
        achromatic = ratio.mean(dim=0)
        chroma = torch.sqrt(((ratio - achromatic) ** 2).mean(dim=0))
        # noise in a log ratio grows as 1 / brightness: weigh dark pixels down so
        # that sensor noise in dark paint is not taken for a chromatic change
        lum = baseline.mean(axis=2)
        brightness = torch.from_numpy(
            np.clip(lum / max(float(np.median(lum[ok])), 1e-3), 0, 1).astype(np.float32)
        ).to(device)
        chroma_s = smooth_background(chroma * brightness, w, 2.0)
        cs = chroma_s.cpu().numpy()
        threshold = max(chroma_floor, float(np.median(cs[ok])) + chroma_z * robust_sigma(cs[ok]))
        appearance = ndimage.binary_dilation(
            cs > threshold, iterations=max(2, int(0.006 * long_side))
        ) & valid
        # colour difference of the change alone: the baseline against itself times the
        # local (exposure- and white-balance-free) ratio, so lamp and camera drift drop out
        delta_e, delta_l, delta_c = colour_difference(
            b.cpu().numpy().transpose(1, 2, 0),
            (b * torch.exp(ratio)).cpu().numpy().transpose(1, 2, 0),
        )
        del b
        keep = torch.from_numpy(~appearance).to(device=device, dtype=torch.float32) * w
        # shading change relative to the baseline's shading: the first-order model
        # is linear in s2/s1 - 1, not in log(s2/s1), which is lopsided under raking
        # light (a bump's lit side brightens less in log than its far side darkens)
        slope = -torch.expm1(achromatic) * gain
        # masked pixels (stains, clipped or dark paint) take the slope of their
        # surroundings: a zero there would unbalance the line integrals
        # through a deformation and leave tails
        fill = smooth_background(slope, keep, 0.01 * long_side)
        slope = torch.where(keep > 0, slope, fill) * w
        height_t, linear_t = integrate_two_sided(slope, (ux, uy))
        height, linear = height_t.cpu().numpy(), linear_t.cpu().numpy()
    # level of detection: the robust spread of the linearly integrated field --
    # sensor noise, misregistration and light-drift clutter integrated exactly
    # like the signal -- measured locally, since dark paint is noisier
    noise_map = local_noise(linear, ok & ~appearance) / scale
    sigma = float(np.median(noise_map))
    # the estimate is in analysis pixels; express it in baseline pixels
    height = (height / scale).astype(np.float32)
    height[~valid] = np.nan
    return ChangeMap(
        height=height,
        scale=scale,
        method="photometric",
        noise_sigma=sigma,
        noise_map=noise_map,
        appearance=appearance,
        delta_e=np.where(valid, delta_e, np.nan).astype(np.float32),
        delta_l=np.where(valid, delta_l, np.nan).astype(np.float32),
        delta_c=np.where(valid, delta_c, np.nan).astype(np.float32),
        model_id="monitor/photometric-v1",
        weights_sha256=None,
        integration_direction=(ux, uy),
    )


def depth_change(
    baseline: np.ndarray,
    current: np.ndarray,
    valid: np.ndarray,
    light: Light,
    *,
    estimator: DepthEstimator,
    scale: float = 1.0,
) -> ChangeMap:
    """Height change as the difference of two per-scan relative height maps.

    The current scan's map is mapped onto the baseline's with a robust
    scale/shift fit over the overlap (changed pixels are outliers of that fit).

    Parameters
    ----------
    baseline, current, valid, light
        As in :func:`photometric_change`.
    estimator
        The per-scan depth estimator (``--depth``).
    scale
        Analysis pixels per baseline pixel (recorded in the result).

    Returns
    -------
    ChangeMap
        Aligned current minus baseline, NaN outside the overlap.
    """
    _check_pair(baseline, current, valid)
    # outside the overlap the warped current is empty; fill it with the
    # baseline so the estimator sees no artificial edge (those pixels are
    # masked from the result anyway)
    filled = np.where(valid[..., None], current, baseline)
    d_base = estimator.estimate(baseline, light)
    d_cur = estimator.estimate(filled, light)
    ok = _trusted(valid, baseline, current)
    alignment = fit_scale_shift(d_base.height, d_cur.height, ok)
    diff = apply_alignment(d_cur.height, alignment) - d_base.height
    # shading and relief heights are in analysis pixels: express them in baseline pixels
    diff = diff / np.float32(scale) if estimator.name in ("shading", "relief") else diff
    sigma = robust_sigma(diff[ok])
    diff[~valid] = np.nan
    return ChangeMap(
        height=diff.astype(np.float32),
        scale=scale,
        method="depth",
        noise_sigma=sigma,
        appearance=None,
        alignment=alignment,
        model_id=d_base.model_id,
        weights_sha256=d_base.weights_sha256,
        integration_direction=_light_xy(light) if estimator.name == "shading" else None,
    )


def _light_xy(light: Light) -> tuple[float, float]:
    ux, uy, _ = in_plane_direction(light)
    return ux, uy
