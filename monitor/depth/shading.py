"""Relief from shading, physically based, no weights.

Under a lamp of direction ``l`` a small height field ``h`` changes the log
shading by about ``-(l_xy . grad h) / l_z`` (FIELD-NOTES.md). The derivative
of ``h`` along the light's direction in the picture plane is therefore
observed, and ``h`` follows by integrating along that direction
(:func:`integrate_two_sided`, leaky integrators run with and against the
light, in the Fourier domain). The component of ``h`` perpendicular to the
light is invisible to a single lamp and is only smoothed.

The same two operations serve the per-scan estimator here (one scan: its log
luminance, high-passed, taken as shading -- paint is mistaken for relief) and
the photometric change method (two scans: their log ratio cancels the paint).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from monitor.errors import MonitorError
from monitor.results import DepthMap, Light

#: Below this in-plane light component the shading cue is too weak to integrate.
MIN_IN_PLANE = 0.1


def smooth_background(x: torch.Tensor, weight: torch.Tensor, sigma: float) -> torch.Tensor:
    """Weighted (normalised-convolution) Gaussian blur with a large ``sigma``.

    Computed on a pyramid level so that the cost does not grow with ``sigma``.

    Parameters
    ----------
    x
        (C, H, W) or (H, W) tensor.
    weight
        (H, W) non-negative weights; pixels with weight 0 do not contribute.
    sigma
        Standard deviation in pixels of ``x``.

    Returns
    -------
    torch.Tensor
        Same shape as ``x``: the local weighted mean.
    """
    squeeze = x.dim() == 2
    xc = x[None] if squeeze else x
    if xc.dim() != 3 or weight.shape != xc.shape[-2:]:
        raise MonitorError("smooth_background: expected (C,H,W) values and (H,W) weights")
    h, w = xc.shape[-2:]
    factor = max(1, int(sigma // 4))
    num = (xc * weight).unsqueeze(0)
    den = weight[None, None]
    if factor > 1:
        num = F.avg_pool2d(num, factor, ceil_mode=True)
        den = F.avg_pool2d(den, factor, ceil_mode=True)
    s = sigma / factor
    radius = max(1, int(math.ceil(3 * s)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (t / s) ** 2)
    kernel = kernel / kernel.sum()

    def blur(v: torch.Tensor) -> torch.Tensor:
        ch = v.shape[1]
        ph = min(radius, v.shape[-2] - 1)
        pw = min(radius, v.shape[-1] - 1)
        v = F.pad(v, (pw, pw, ph, ph), mode="reflect") if ph > 0 and pw > 0 else v
        kx = kernel.view(1, 1, 1, -1).expand(ch, 1, 1, -1)
        ky = kernel.view(1, 1, -1, 1).expand(ch, 1, -1, 1)
        v = F.conv2d(v, kx, groups=ch)
        return F.conv2d(v, ky, groups=ch)

    num_b = blur(num)
    den_b = blur(den)
    # a reflect pad smaller than the radius (tiny pyramid levels) shrinks the output
    target = num.shape[-2:]
    if num_b.shape[-2:] != target:
        num_b = F.interpolate(num_b, size=target, mode="bilinear", align_corners=False)
        den_b = F.interpolate(den_b, size=target, mode="bilinear", align_corners=False)
    mean = num_b / den_b.clamp_min(1e-6)
    if factor > 1:
        mean = F.interpolate(mean, size=(h, w), mode="bilinear", align_corners=False)
    out = mean[0]
    return out[0] if squeeze else out


def in_plane_direction(light: Light) -> tuple[float, float, float]:
    """Unit in-plane direction towards the lamp (ux, uy) and the gain ``l_z / |l_xy|``.

    Raises
    ------
    MonitorError
        When the light is (nearly) frontal: no shading cue to integrate.
    """
    v = light.vector()
    norm = float(math.hypot(v[0], v[1]))
    if norm < MIN_IN_PLANE:
        raise MonitorError(
            f"light elevation {light.elevation_deg:g} deg is too close to frontal to read relief "
            "from shading; relief needs raking or oblique light"
        )
    return float(v[0] / norm), float(v[1] / norm), float(v[2] / norm)


def _two_sided_filters(
    hp: int, wp: int, direction: tuple[float, float], decay_px: float, blur_px: float,
    device: torch.device | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    ky = 2 * math.pi * torch.fft.fftfreq(hp, device=device).view(-1, 1)
    kx = 2 * math.pi * torch.fft.rfftfreq(wp, device=device).view(1, -1)
    kd = kx * direction[0] + ky * direction[1]
    blur = torch.exp(-0.5 * blur_px**2 * (kx * kx + ky * ky))
    leak = 1.0 / decay_px
    forward = blur / (leak + 1j * kd)
    backward = -blur / (leak - 1j * kd)
    return forward, backward


def integrate_two_sided(
    slope: torch.Tensor, direction: tuple[float, float], *, decay_frac: float = 0.1,
    blur_frac: float = 0.003, pad_frac: float = 0.25,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Integrate a directional derivative from both ends and keep what both agree on.

    A leaky integrator run *with* the light direction and one run *against* it
    (exponential memory of ``decay_frac`` of the long side) agree on a
    deformation, whose slope integrates back to zero past it. Where the slope
    does not balance (the non-linearity of shading, clipped pixels, a masked
    stain), each integrator leaves a tail on its own side; keeping the smaller
    of the two where they agree in sign and size (the smaller at least half
    the larger, fading out below a fifth), and nothing elsewhere, removes the
    tails.
    A Gaussian of ``blur_frac`` of the long side smooths across the light
    direction, which a single lamp cannot observe.

    Parameters
    ----------
    slope
        (H, W) derivative of the height along ``direction``; 0 where unknown.
    direction
        Unit vector (ux, uy) in image axes (x right, y down).
    decay_frac, blur_frac, pad_frac
        Memory length, smoothing and zero padding as fractions of the image size.

    Returns
    -------
    height : torch.Tensor
        (H, W) height, tails removed.
    linear : torch.Tensor
        (H, W) mean of the two integrators: linear in the slope, tails kept.
        Its robust spread over the canvas is an honest level of detection
        (noise and clutter, integrated the same way as the signal).
    """
    if slope.dim() != 2:
        raise MonitorError(f"integrate_two_sided: expected (H, W), got {tuple(slope.shape)}")
    h, w = slope.shape
    long_side = max(h, w)
    ph, pw = int(h * pad_frac) + 1, int(w * pad_frac) + 1
    padded = F.pad(slope.to(torch.float32)[None, None], (pw, pw, ph, ph))[0, 0]
    hp, wp = padded.shape
    fwd, bwd = _two_sided_filters(
        hp, wp, direction, decay_frac * long_side, max(0.5, blur_frac * long_side), slope.device
    )
    spec = torch.fft.rfft2(padded)
    a = torch.fft.irfft2(spec * fwd, s=(hp, wp))[ph : ph + h, pw : pw + w]
    b = torch.fft.irfft2(spec * bwd, s=(hp, wp))[ph : ph + h, pw : pw + w]
    small = torch.minimum(a.abs(), b.abs())
    large = torch.maximum(a.abs(), b.abs()).clamp_min(1e-12)
    # agreement: same sign and comparable size; a tail is large in one, near 0 in the other
    agreement = torch.where((a * b) > 0, small / large, 0.0)
    weight = ((agreement - 0.2) / 0.3).clamp(0.0, 1.0)
    combined = (torch.sign(a) * small * weight).contiguous()
    return combined, (0.5 * (a + b)).contiguous()


def log_luminance(rgb_linear: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Log of Rec. 709 luminance of a (3, H, W) linear tensor."""
    y = 0.2126 * rgb_linear[0] + 0.7152 * rgb_linear[1] + 0.0722 * rgb_linear[2]
    return torch.log(y + eps)


class ShadingEstimator:
    """Per-scan relief from shading: high-passed log luminance integrated along the light.

    Paint (albedo) variations are read as relief too: this estimator is only
    meaningful in differences of two scans of the same painting, and even
    there a discoloration reads as relief. It has no weights.
    """

    name = "shading"
    model_id = "monitor/shading-v1"
    weights_sha256: str | None = None

    def __init__(self, device: torch.device | None = None, background_frac: float = 0.08) -> None:
        self.device = device or torch.device("cpu")
        self.background_frac = background_frac

    def estimate(self, rgb_linear: np.ndarray, light: Light) -> DepthMap:
        if rgb_linear.ndim != 3 or rgb_linear.shape[2] != 3:
            raise MonitorError(
                f"shading estimator needs H x W x 3 linear RGB, got {rgb_linear.shape}"
            )
        ux, uy, gain = in_plane_direction(light)
        with torch.inference_mode():
            t = torch.from_numpy(np.ascontiguousarray(rgb_linear, dtype=np.float32)).to(self.device)
            t = t.permute(2, 0, 1).clamp_min(0)  # resampling overshoot: no log of negatives
            lum = log_luminance(t)
            weight = torch.ones_like(lum)
            sigma = self.background_frac * max(lum.shape)
            hp = lum - smooth_background(lum, weight, sigma)
            # the linear integral: paint reads as relief everywhere, tails are moot
            _, height = integrate_two_sided(-hp * gain, (ux, uy))
        return DepthMap(
            height=height.cpu().numpy().astype(np.float32),
            model_id=self.model_id,
            weights_sha256=None,
            device=str(self.device),
        )
