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

from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy import ndimage
from skimage.color import deltaE_ciede2000, xyz2lab
from skimage.color.colorconv import xyz_from_rgb

from monitor.change.alignment import apply_alignment, fit_scale_shift
from monitor.checks import check_pair
from monitor.errors import MonitorError
from monitor.photometry import (
    EPS,
    blur,
    in_plane_direction,
    integrate_two_sided,
    light_xy,
    local_noise,
    robust_sigma,
    smooth_background,
    trusted_pixels,
)
from monitor.results import ChangeMap, Light

if TYPE_CHECKING:  # the protocol only, for the annotation
    from monitor.depth.base import DepthEstimator

__all__ = [
    "METHODS", "colour_difference", "depth_change", "local_noise", "photometric_change",
    "robust_sigma", "usable_fraction",
]

METHODS = ("photometric", "depth", "pair")

def usable_fraction(usable: np.ndarray, valid: np.ndarray) -> float:
    """Share of the overlap (``valid``) whose pixels an estimate could use.

    Parameters
    ----------
    usable
        H x W bool, pixels the estimate trusted (not clipped, masked or too dark).
    valid
        H x W bool, the overlap of the two scans.

    Returns
    -------
    float
        In [0, 1]; 0 when there is no overlap.

    Examples
    --------
    >>> usable_fraction(np.array([True, False]), np.array([True, True]))
    0.5
    """
    n = int(np.count_nonzero(valid))
    return float(np.count_nonzero(usable & valid)) / n if n else 0.0


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
    length_px: float | None = None,
    median_lum: float | None = None,
    details: bool = True,
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
    length_px, median_lum
        The long side (pixels) that the lengths given as fractions of the long
        side refer to (background, fill, dilation, integration memory and
        blur), and the baseline's median luminance; default: this image's. A
        tile of a larger image passes the whole image's (or a fixed working
        size), so that every tile is processed alike.
    details
        False leaves out the colour differences (``delta_*``) and the local
        noise map (``noise_sigma`` is then the global robust spread of the
        linear integral): for callers that read the height and the
        appearance mask only (the pair network's inputs).

    Returns
    -------
    ChangeMap
        Height change in units of the analysis pixel pitch divided by ``scale``
        (i.e. baseline pixels), NaN outside the overlap.

    Examples
    --------
    A bump of 2 px raised between two scans under a raking lamp from the left
    (rendered Lambertian, flat grey paint) reads as a rise centred on it:

    >>> from monitor.depth.photometric_stereo import normals_from_height
    >>> light = Light(180, 30)
    >>> yy, xx = np.mgrid[0:96, 0:96]
    >>> bump = 2.0 * np.exp(-((xx - 48) ** 2 + (yy - 48) ** 2) / 60.0)
    >>> def render(h):
    ...     s = np.clip(normals_from_height(h) @ light.vector(), 0, 1)
    ...     return np.repeat(0.5 * s[..., None], 3, axis=2).astype(np.float32)
    >>> cm = photometric_change(render(0 * bump), render(bump), np.ones((96, 96), bool), light)
    >>> tuple(int(i) for i in np.unravel_index(np.nanargmax(cm.height), cm.height.shape))
    (48, 48)
    >>> bool(cm.height[48, 48] > 5 * cm.noise_sigma)
    True
    """
    check_pair("change", baseline, current, valid)
    ux, uy, gain = in_plane_direction(light)
    device = device or torch.device("cpu")
    ok = trusted_pixels(valid, baseline, current)
    own_side = max(baseline.shape[:2])
    long_side = own_side if length_px is None else float(length_px)
    if np.count_nonzero(ok) < 16:
        # nothing readable (clipped, too dark): no estimate, and the result says so
        blank = np.where(valid, 0.0, np.nan).astype(np.float32)
        return ChangeMap(
            height=blank, scale=scale, method="photometric", noise_sigma=0.0,
            model_id="monitor/photometric-v1", usable_fraction=usable_fraction(ok, valid),
        )
    with torch.inference_mode():
        # bicubic resampling overshoots slightly below 0: clamp before the log
        b = torch.from_numpy(np.ascontiguousarray(baseline.transpose(2, 0, 1))).to(device)
        c = torch.from_numpy(np.ascontiguousarray(current.transpose(2, 0, 1))).to(device)
        b, c = b.clamp_min(0), c.clamp_min(0)
        if presmooth_px > 0:
            # residual sub-pixel misregistration of fine texture (weave, impasto
            # edges) is the largest noise in the ratio; deformations are far wider
            b = blur(b, presmooth_px)
            c = blur(c, presmooth_px)
        w = torch.from_numpy(ok).to(device=device, dtype=torch.float32)
        ratio = (torch.log(c + EPS) - torch.log(b + EPS)) * w
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
            np.clip(lum / max(float(np.median(lum[ok])) if median_lum is None else median_lum,
                              1e-3), 0, 1).astype(np.float32)
        ).to(device)
        chroma_s = smooth_background(chroma * brightness, w, 2.0)
        cs = chroma_s.cpu().numpy()
        threshold = max(chroma_floor, float(np.median(cs[ok])) + chroma_z * robust_sigma(cs[ok]))
        appearance = ndimage.binary_dilation(
            cs > threshold, iterations=max(2, int(0.006 * long_side))
        ) & valid
        # colour difference of the change alone: the baseline against itself times the
        # local (exposure- and white-balance-free) ratio, so lamp and camera drift drop out
        deltas = colour_difference(
            b.cpu().numpy().transpose(1, 2, 0),
            (b * torch.exp(ratio)).cpu().numpy().transpose(1, 2, 0),
        ) if details else None
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
        rel = long_side / own_side  # integrate_two_sided's fractions are of its own side
        height_t, linear_t = integrate_two_sided(slope, (ux, uy), decay_frac=0.1 * rel,
                                                 blur_frac=0.003 * rel)
        height, linear = height_t.cpu().numpy(), linear_t.cpu().numpy()
    # level of detection: the robust spread of the linearly integrated field --
    # sensor noise, misregistration and light-drift clutter integrated exactly
    # like the signal -- measured locally, since dark paint is noisier
    clean = ok & ~appearance
    noise_map: np.ndarray | None = None
    if details:
        noise_map = local_noise(linear, clean) / scale
        sigma = float(np.median(noise_map))
    else:
        sigma = robust_sigma(linear[clean]) / scale if clean.any() else 0.0
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
        delta_e=None if deltas is None else np.where(valid, deltas[0], np.nan).astype(np.float32),
        delta_l=None if deltas is None else np.where(valid, deltas[1], np.nan).astype(np.float32),
        delta_c=None if deltas is None else np.where(valid, deltas[2], np.nan).astype(np.float32),
        model_id="monitor/photometric-v1",
        weights_sha256=None,
        integration_direction=(ux, uy),
        usable_fraction=usable_fraction(ok & ~appearance, valid),
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

    Raises
    ------
    MonitorError
        If the fitted scale is not positive (it would flip the polarity).

    Examples
    --------
    With a stand-in estimator whose "height" is the brightness (any
    :class:`~monitor.depth.base.DepthEstimator` will do), a patch 0.3 brighter
    in the current scan is a change of 0.3 there and none elsewhere:

    >>> from monitor.results import DepthMap
    >>> class Brightness:
    ...     name, model_id, weights_sha256, device = "brightness", "demo", None, torch.device("cpu")
    ...     def estimate(self, rgb_linear, light):
    ...         return DepthMap(rgb_linear.mean(axis=2), "demo", None, "cpu")
    >>> ramp = np.linspace(0.2, 0.6, 32, dtype=np.float32)
    >>> base = np.repeat(np.tile(ramp, (32, 1))[..., None], 3, axis=2)
    >>> cur = base.copy(); cur[8:16, 8:16] += 0.3
    >>> cm = depth_change(base, cur, np.ones((32, 32), bool), Light(180, 30),
    ...                   estimator=Brightness())
    >>> round(float(cm.height[10, 10]), 3), round(float(cm.height[24, 24]), 3)
    (0.3, 0.0)
    """
    check_pair("change", baseline, current, valid)
    # outside the overlap the warped current is empty; fill it with the
    # baseline so the estimator sees no artificial edge (those pixels are
    # masked from the result anyway)
    filled = np.where(valid[..., None], current, baseline)
    d_base = estimator.estimate(baseline, light)
    d_cur = estimator.estimate(filled, light)
    ok = trusted_pixels(valid, baseline, current)
    alignment = fit_scale_shift(d_base.height, d_cur.height, ok)
    if not alignment.scale > 0:
        # a zero or negative scale would flip (or erase) the polarity of every change:
        # the two estimates disagree about which way is up, nothing can be compared
        raise MonitorError(
            f"depth: the current scan's {d_cur.model_id} estimate maps onto the baseline's "
            f"with scale {alignment.scale:.3g} (must be > 0): the estimates disagree about "
            "which way is up, so no change can be measured"
        )
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
        integration_direction=light_xy(light) if estimator.name == "shading" else None,
        usable_fraction=usable_fraction(ok, valid),
    )

