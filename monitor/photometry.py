"""The physics of light, shared by ``change/`` and ``depth/``.

One room for what both the change estimators and the per-scan depth
estimators need to know about light and how it reaches the sensor:

- the lamp's geometry: :func:`in_plane_direction` (unit in-plane direction
  towards the lamp and the elevation gain ``l_z / |l_xy|``),
  :func:`canonical_turns` / :func:`turn_light` (quarter turns that bring the
  lamp to the left, as the shipped networks were trained);
- the sRGB transfer curve, once: :func:`srgb_to_linear`,
  :func:`linear_to_srgb` (numpy; defined in :mod:`monitor.io`, which decodes
  files and must stay free of torch, and re-exported here) and
  :func:`linear_to_srgb_torch` (kornia's ``linear_rgb_to_rgb``);
- shading helpers: :func:`luminance`, :func:`log_luminance`, :func:`blur`,
  :func:`smooth_background` (normalised-convolution low pass);
- integration along the light: :func:`integrate_two_sided` and its batched,
  unpadded form for tiles, :func:`integrate_two_sided_batch` (FIELD-NOTES.md:
  a small height field ``h`` changes the log shading by about
  ``-(l_xy . grad h) / l_z``, so ``h`` follows by integrating the observed
  slope along the light, with and against it);
- trusted pixels: :func:`trusted_mask` (torch, square erosion, the networks'
  inputs) and :func:`trusted_pixels` (numpy, cross-shaped erosion, the
  physics methods). The two erosions differ on purpose: the networks were
  trained on the first, the benchmark figures of the photometric method were
  measured on the second (the square one also keeps the image border, the
  cross one erodes it); unifying them changes either the trained inputs or
  the change maps, and is left to a retraining;
- robust statistics: :func:`robust_sigma`, :func:`local_noise`;
- integration of a slope field into height (both axes, multi-light):
  :func:`frankot_chellappa` (FFT on a mirrored extension, torch),
  :func:`poisson` (confidence-weighted sparse least squares) and
  :func:`integrate_normals` (unit normals -> height);
- multi-light: :func:`irradiance_fields` (each lamp's fall-off across the picture).
- tiles with halos: :func:`iter_tiles` / :class:`TileBox` (the filters above
  run on tiles whose halo is their padding).

Nothing here imports from ``change/`` or ``depth/``; both import from here.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import kornia
import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage, sparse
from scipy.sparse import linalg as splinalg

from monitor.errors import MonitorError

# the numpy sRGB curve lives with image reading (below this room, torch-free);
# it is part of the physics of light and re-exported here
from monitor.io import linear_to_srgb, srgb_to_linear
from monitor.results import Light

__all__ = [
    "BRIGHT",
    "POISSON_MAX_PX",
    "DARK",
    "EPS",
    "MIN_IN_PLANE",
    "TileBox",
    "blur",
    "canonical_turns",
    "frankot_chellappa",
    "integrate_normals",
    "in_plane_direction",
    "integrate_two_sided",
    "irradiance_fields",
    "integrate_two_sided_batch",
    "iter_tiles",
    "light_xy",
    "linear_to_srgb",
    "linear_to_srgb_torch",
    "local_noise",
    "log_luminance",
    "luminance",
    "poisson",
    "robust_sigma",
    "smooth_background",
    "srgb_to_linear",
    "trusted_mask",
    "trusted_pixels",
    "turn_light",
]

#: Added before logs: keeps dark paint from dominating a log ratio.
EPS = 2e-3
#: Pixels darker than ``DARK`` or brighter than ``BRIGHT`` in any channel are
#: not trusted (sensor noise floor, clipping).
DARK, BRIGHT = 0.004, 0.985
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

    Examples
    --------
    A constant stays constant; a pixel of weight 0 does not pull the mean, and the
    scale may be wider than the image:

    >>> x = torch.ones(16, 16); x[4, 4] = 100.0
    >>> w = torch.ones(16, 16); w[4, 4] = 0.0
    >>> round(float(smooth_background(x, w, 32.0).max()), 4)
    1.0
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
        # mirrored borders where the level is wider than the kernel's radius; along
        # a side that is not (a small image, a wide sigma) a mirror would count the
        # far pixels several times, so the border is zeros in both the weighted
        # values and the weights -- pixels that carry no weight: the mean is then
        # over the image itself
        ph = radius if v.shape[-2] > radius else 0
        pw = radius if v.shape[-1] > radius else 0
        if ph or pw:
            v = F.pad(v, (pw, pw, ph, ph), mode="reflect")
        if ph < radius or pw < radius:
            v = F.pad(v, (radius - pw, radius - pw, radius - ph, radius - ph))
        kx = kernel.view(1, 1, 1, -1).expand(ch, 1, 1, -1)
        ky = kernel.view(1, 1, -1, 1).expand(ch, 1, -1, 1)
        v = F.conv2d(v, kx, groups=ch)
        return F.conv2d(v, ky, groups=ch)

    mean = blur(num) / blur(den).clamp_min(1e-6)
    if factor > 1:
        mean = F.interpolate(mean, size=(h, w), mode="bilinear", align_corners=False)
    out = mean[0]
    return out[0] if squeeze else out


def in_plane_direction(light: Light) -> tuple[float, float, float]:
    """Unit in-plane direction towards the lamp (ux, uy) and the gain ``l_z / |l_xy|``.

    Parameters
    ----------
    light
        The lamp (azimuth, elevation).

    Returns
    -------
    ux, uy : float
        Unit direction towards the lamp in image axes (x right, y down).
    gain : float
        ``l_z / |l_xy|``: how much brighter a slope towards the lamp reads.

    Raises
    ------
    MonitorError
        When the light is (nearly) frontal: no shading cue to integrate.

    Examples
    --------
    >>> ux, uy, gain = in_plane_direction(Light(180, 45))
    >>> round(ux, 6), round(abs(uy), 6), round(gain, 6)
    (-1.0, 0.0, 1.0)
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

    Examples
    --------
    A bump's slope along x integrates back to a bump centred where it was:

    >>> yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    >>> bump = torch.exp(-((xx - 32) ** 2 + (yy - 32) ** 2) / 50)
    >>> slope = torch.gradient(bump, dim=1)[0]
    >>> height, linear = integrate_two_sided(slope, (1.0, 0.0))
    >>> divmod(int(height.argmax()), 64)
    (32, 32)
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


def integrate_two_sided_batch(
    slope: torch.Tensor, direction: tuple[float, float], *, decay_px: float, blur_px: float = 0.5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched two-sided leaky integration along the light, decay given in pixels.

    The filters and the agreement rule of
    :func:`integrate_two_sided`, for a batch of equally
    sized tiles and without padding (the caller's halo is the padding).

    Parameters
    ----------
    slope
        (B, H, W) derivative of the height along ``direction``; 0 where unknown.
    direction
        Unit vector (ux, uy) in image axes.
    decay_px
        Memory length of the leaky integrators, in pixels of ``slope``.
    blur_px
        Gaussian smoothing (all directions) in pixels.

    Returns
    -------
    height, linear : torch.Tensor
        (B, H, W): tails removed, and the mean of the two integrators.

    Examples
    --------
    >>> s = torch.zeros(2, 32, 32)
    >>> h, lin = integrate_two_sided_batch(s, (1.0, 0.0), decay_px=8.0)
    >>> tuple(h.shape), float(lin.abs().max())
    ((2, 32, 32), 0.0)
    """
    if slope.dim() != 3:
        raise MonitorError(
            f"integrate_two_sided_batch: expected (B, H, W), got {tuple(slope.shape)}"
        )
    if not decay_px > 0:
        raise MonitorError(f"integrate_two_sided_batch: decay_px must be > 0, got {decay_px}")
    _, hp, wp = slope.shape
    fwd, bwd = _two_sided_filters(hp, wp, direction, decay_px, max(blur_px, 1e-3), slope.device)
    spec = torch.fft.rfft2(slope.to(torch.float32))
    a = torch.fft.irfft2(spec * fwd, s=(hp, wp))
    b = torch.fft.irfft2(spec * bwd, s=(hp, wp))
    del spec
    small = torch.minimum(a.abs(), b.abs())
    large = torch.maximum(a.abs(), b.abs()).clamp_min(1e-12)
    agreement = torch.where((a * b) > 0, small / large, 0.0)
    weight = ((agreement - 0.2) / 0.3).clamp(0.0, 1.0)
    return torch.sign(a) * small * weight, 0.5 * (a + b)


@dataclass(frozen=True)
class TileBox:
    """Core rows ``y0:y1`` / columns ``x0:x1`` of a tile; ``halo`` pixels are read around it.

    Examples
    --------
    >>> box = TileBox(0, 32, 32, 64, halo=4)
    >>> box.y1 - box.y0, box.x1 - box.x0, box.halo
    (32, 32, 4)
    """

    y0: int
    y1: int
    x0: int
    x1: int
    halo: int


def iter_tiles(shape: tuple[int, int], tile: int, halo: int) -> Iterator[TileBox]:
    """Cut an image into non-overlapping cores of at most ``tile`` pixels, each with a halo.

    Parameters
    ----------
    shape
        (rows, cols) of the image.
    tile
        Core size in pixels (> 0).
    halo
        Pixels of context read on every side of the core (>= 0).

    Yields
    ------
    TileBox
        Row-major order; the cores cover the image exactly once.

    Examples
    --------
    >>> [(t.y0, t.y1, t.x0, t.x1) for t in iter_tiles((3, 5), 4, 1)]
    [(0, 3, 0, 4), (0, 3, 4, 5)]
    """
    if tile <= 0 or halo < 0:
        raise MonitorError(f"tiles: tile must be > 0 and halo >= 0, got {tile}, {halo}")
    h, w = shape
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            yield TileBox(y0, min(y0 + tile, h), x0, min(x0 + tile, w), halo)


def luminance(rgb_linear: torch.Tensor) -> torch.Tensor:
    """Rec. 709 luminance of a (3, H, W) linear tensor.

    Parameters
    ----------
    rgb_linear
        (3, H, W) linear light.

    Returns
    -------
    torch.Tensor
        (H, W).

    Examples
    --------
    >>> float(luminance(torch.ones(3, 2, 2))[0, 0])
    1.0
    """
    return 0.2126 * rgb_linear[0] + 0.7152 * rgb_linear[1] + 0.0722 * rgb_linear[2]


def log_luminance(rgb_linear: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Log of Rec. 709 luminance of a (3, H, W) linear tensor, ``log(Y + eps)``.

    Parameters
    ----------
    rgb_linear
        (3, H, W) linear RGB.
    eps
        Added before the log, so that black stays finite.

    Returns
    -------
    torch.Tensor
        (H, W) ``log(Y + eps)``.

    Examples
    --------
    >>> round(float(log_luminance(torch.ones(3, 1, 1), eps=0.0)[0, 0]), 6)
    0.0
    """
    return torch.log(luminance(rgb_linear) + eps)


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of a (C, H, W) tensor, reflecting borders, kernel ``2 ceil(3 sigma) + 1``.

    Parameters
    ----------
    x
        (C, H, W) tensor.
    sigma
        Standard deviation in pixels.

    Returns
    -------
    torch.Tensor
        Same shape as ``x``.

    Examples
    --------
    >>> blur(torch.ones(3, 8, 8), 1.0).shape
    torch.Size([3, 8, 8])
    """
    k = 2 * int(math.ceil(3 * sigma)) + 1
    return kornia.filters.gaussian_blur2d(x[None], (k, k), (sigma, sigma), border_type="reflect")[0]


def light_xy(light: Light) -> tuple[float, float]:
    """Unit in-plane direction towards the lamp, ``(ux, uy)`` in image axes.

    Parameters
    ----------
    light
        The lamp; it must not be (nearly) frontal.

    Returns
    -------
    tuple of float
        ``(ux, uy)``, x right and y down.

    Examples
    --------
    >>> ux, uy = light_xy(Light(180, 30))
    >>> round(ux, 6), round(abs(uy), 6)
    (-1.0, 0.0)
    """
    ux, uy, _ = in_plane_direction(light)
    return ux, uy


def canonical_turns(light: Light) -> int:
    """Quarter turns (counter-clockwise on screen) that bring the lamp closest to the left.

    Turning an image counter-clockwise by ``k`` quarter turns (``numpy.rot90``
    with ``k``) adds ``90 k`` degrees to the light azimuth.

    Parameters
    ----------
    light
        The lamp as seen in the image.

    Returns
    -------
    int
        ``k`` in 0..3 for ``numpy.rot90`` / ``torch.rot90``.

    Examples
    --------
    >>> canonical_turns(Light(180, 30)), canonical_turns(Light(90, 30))
    (0, 1)
    """
    return int(round((180.0 - light.azimuth_deg) / 90.0)) % 4


def turn_light(light: Light, k: int) -> Light:
    """The light as seen in the image turned by ``k`` counter-clockwise quarter turns.

    Parameters
    ----------
    light
        The lamp as seen in the image.
    k
        Counter-clockwise quarter turns of the image.

    Returns
    -------
    Light
        The same elevation, azimuth ``+ 90 k`` degrees (mod 360).

    Examples
    --------
    >>> turn_light(Light(90, 30), 1).azimuth_deg
    180.0
    """
    return Light((light.azimuth_deg + 90.0 * k) % 360.0, light.elevation_deg)


# --------------------------------------------------------------------------- sRGB


def linear_to_srgb_torch(linear: torch.Tensor) -> torch.Tensor:
    """The sRGB encoding curve on a tensor (kornia's ``linear_rgb_to_rgb``), clipped to [0, 1].

    Parameters
    ----------
    linear
        (3, H, W) or (B, 3, H, W) linear light.

    Returns
    -------
    torch.Tensor
        Same shape, encoded.

    Examples
    --------
    >>> round(float(linear_to_srgb_torch(torch.ones(3, 1, 1))[0, 0, 0]), 6)
    1.0
    """
    return kornia.color.linear_rgb_to_rgb(linear.clamp(0.0, 1.0))


# --------------------------------------------------------------------------- trusted pixels


def _erode(mask: torch.Tensor, px: int) -> torch.Tensor:
    if px <= 0:
        return mask
    bad = (~mask).float()[None, None]
    return ~(F.max_pool2d(bad, 2 * px + 1, stride=1, padding=px)[0, 0] > 0)


def trusted_mask(valid: torch.Tensor, *images: torch.Tensor, erode: int = 2) -> torch.Tensor:
    """Valid pixels (square erosion) that are neither near black nor clipped in any image.

    Parameters
    ----------
    valid
        (H, W) bool.
    *images
        (3, H, W) linear light.
    erode
        Erosion of ``valid`` in pixels (a square of side ``2 erode + 1``).

    Returns
    -------
    torch.Tensor
        (H, W) bool.

    Examples
    --------
    >>> int(trusted_mask(torch.ones(8, 8, dtype=torch.bool), 0.5 * torch.ones(3, 8, 8)).sum())
    64
    """
    ok = _erode(valid, erode)
    for img in images:
        ok = ok & (img.amin(dim=0) > DARK) & (img.amax(dim=0) < BRIGHT)
    return ok


def trusted_pixels(valid: np.ndarray, *images: np.ndarray, erode: int = 3) -> np.ndarray:
    """Valid pixels (cross-shaped erosion) that are neither near black nor clipped in any image.

    The numpy counterpart of :func:`trusted_mask` used by the physics methods;
    its erosion is ``scipy.ndimage.binary_erosion`` with ``erode`` iterations
    of the 4-neighbour cross (see the module note on why the two differ).

    Parameters
    ----------
    valid
        H x W bool.
    *images
        H x W x 3 linear light.
    erode
        Iterations of the erosion (0: none).

    Returns
    -------
    numpy.ndarray
        H x W bool.

    Examples
    --------
    >>> int(trusted_pixels(np.ones((9, 9), bool), np.full((9, 9, 3), 0.5)).sum())
    9
    """
    ok = ndimage.binary_erosion(valid, iterations=erode) if erode else valid.copy()
    for img in images:
        ok &= (img.min(axis=2) > DARK) & (img.max(axis=2) < BRIGHT)
    return ok


# --------------------------------------------------------------------------- robust statistics


def robust_sigma(values: np.ndarray) -> float:
    """Normal-consistent MAD of the finite values (0 when there are none).

    Parameters
    ----------
    values
        Any array; NaN and infinite values are left out.

    Returns
    -------
    float
        ``1.4826 * median(|v - median(v)|)``: the standard deviation for
        Gaussian values, unmoved by a minority of outliers.

    Examples
    --------
    >>> robust_sigma(np.array([np.nan]))
    0.0
    """
    v = values[np.isfinite(values)]
    if v.size == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(v - np.median(v))))


def local_noise(
    values: np.ndarray, mask: np.ndarray, *, blocks: int = 8, sample: int = 1
) -> np.ndarray:
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
    sample
        Measure the spreads on every ``sample``-th row and column only (a
        full-resolution level has millions of pixels a block; a quarter of them
        gives the same MAD to a fraction of a percent, in a quarter of the time).

    Returns
    -------
    np.ndarray
        H x W float32, positive.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> noise = local_noise(rng.normal(0, 2.0, (64, 64)), np.ones((64, 64), bool))
    >>> noise.shape, bool(1.5 < float(np.median(noise)) < 2.5)
    ((64, 64), True)
    """
    h, w = values.shape
    size = max(8, int(math.ceil(max(h, w) / blocks)))
    ny, nx = int(math.ceil(h / size)), int(math.ceil(w / size))
    if sample < 1:
        raise MonitorError(f"local_noise: sample must be >= 1, got {sample}")
    step = slice(None, None, sample)
    overall = robust_sigma(values[step, step][mask[step, step]]) or 1e-6
    grid = np.full((ny, nx), np.nan, dtype=np.float64)
    for i in range(ny):
        for j in range(nx):
            sl = (slice(i * size, (i + 1) * size, sample), slice(j * size, (j + 1) * size, sample))
            m = mask[sl]
            if m.sum() >= 0.2 * m.size:
                grid[i, j] = robust_sigma(values[sl][m])
    grid = np.where(np.isfinite(grid), grid, overall)
    padded = np.pad(grid, 1, mode="edge")
    stack = np.stack([padded[a : a + ny, b : b + nx] for a in range(3) for b in range(3)])
    grid = np.maximum(np.median(stack, axis=0), 0.5 * overall)
    # bilinear, block centres at the centres of the blocks; separable, so it is two
    # small matrix products (rows, then columns) and no full-size float64 temporaries
    def weights(n: int, cells: int) -> np.ndarray:
        pos = np.clip((np.arange(n) + 0.5) / size - 0.5, 0, cells - 1)
        lo = np.minimum(pos.astype(int), cells - 2) if cells > 1 else np.zeros(n, int)
        frac = pos - lo if cells > 1 else np.zeros(n)
        out = np.zeros((n, cells))
        np.add.at(out, (np.arange(n), lo), 1 - frac)
        np.add.at(out, (np.arange(n), np.minimum(lo + 1, cells - 1)), frac)
        return out

    rows = (weights(h, ny) @ grid).astype(np.float32)
    return rows @ weights(w, nx).T.astype(np.float32)


# ---------------------------------------------------------------------------
# integration of a slope field (both axes): Frankot-Chellappa and weighted Poisson
#
# ``frankot_chellappa`` projects the slope field onto the nearest integrable one
# in the Fourier domain. The field is first mirrored into a 2H x 2W even
# extension (slopes change sign across the mirror), so the periodic FFT sees no
# seam at the image border. It runs on torch (GPU when asked) and costs two FFTs.
#
# ``poisson`` solves the weighted least-squares problem
# ``min sum w (D_x z - p)^2 + w (D_y z - q)^2`` with forward differences on the
# pixel grid (scipy.sparse, direct solve): pixels of low confidence (shadowed,
# glossy) pull little, so their errors do not spread. Heights are in the units
# of the slopes times pixels, mean zero over the weighted pixels.

#: Poisson is refused above this many pixels (direct sparse solve).
POISSON_MAX_PX = 4_000_000


def _check_slopes(p: np.ndarray, q: np.ndarray) -> None:
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
    _check_slopes(p, q)
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
    _check_slopes(p, q)
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


# ---------------------------------------------------------------------------
# multi-light: the irradiance field of each lamp (near lamps, spot beams)


def irradiance_fields(
    images: np.ndarray,
    lights: np.ndarray,
    *,
    degree: int = 3,
    saturation: float = 0.98,
    shadow_frac: float = 0.2,
    max_samples: int = 200_000,
) -> np.ndarray:
    """Each lamp's smooth irradiance across the picture, relative to the lamps' common field.

    Photometric stereo assumes every lamp lights the whole picture evenly. A
    lamp at a finite distance, or a spot beam, does not: its fall-off across
    the picture is read as a tilt and, integrated, bends the relief (on
    leaves12 the paper's left border rises ~24 px). The ratio of one image to
    the mean of all cancels the albedo; on a surface that is flat at large
    scales its smooth part is that lamp's irradiance relative to the others
    (times ``l_z`` over the mean ``l_z``, divided out). It is fitted as a
    ``degree`` polynomial in x, y to the log ratio, robustly (Cauchy weights,
    three rounds) over pixels no lamp clips or shadows. Dividing each image
    by its field leaves the common field (it changes the albedo, not the
    normals). What is removed is shape at the scale of the picture: that is
    not claimed either way.

    Parameters
    ----------
    images
        N x H x W (x 3) linear light.
    lights
        N x 3 vectors at the lamps.
    degree
        Polynomial degree (>= 1).
    saturation, shadow_frac
        Pixels at or above ``saturation`` under any lamp, or below
        ``shadow_frac`` of their median over the lamps, do not count.
    max_samples
        Pixels used for the fit (a regular subsample above this).

    Returns
    -------
    numpy.ndarray
        N x H x W float32 fields, geometric mean 1 over the lamps at each pixel.

    Raises
    ------
    MonitorError
        Shapes disagree, degree < 1, or too few usable pixels.

    Examples
    --------
    >>> import numpy as np
    >>> lights = np.array([[0.5, 0, 0.87], [-0.5, 0, 0.87], [0, 0.5, 0.87]])
    >>> ramp = np.linspace(0.6, 1.0, 64)[None, :].repeat(48, 0)
    >>> imgs = np.stack([0.5 * ramp, 0.5 * ramp[:, ::-1], np.full((48, 64), 0.4)])
    >>> f = irradiance_fields(imgs.astype(np.float32), lights)
    >>> even = imgs / f  # every lamp now lights the picture alike: ratios are constant
    >>> bool(np.ptp(even[0] / even[2]) < 0.01 and np.ptp(even[1] / even[2]) < 0.01)
    True
    """
    x = np.asarray(images, np.float32)
    grey = x.mean(axis=-1) if x.ndim == 4 else x
    if grey.ndim != 3 or len(grey) != len(lights) or len(lights) < 2:
        raise MonitorError(f"irradiance fields: need N x H x W images and N lamps, got "
                           f"{x.shape} and {np.shape(lights)}")
    if degree < 1:
        raise MonitorError(f"irradiance fields: degree must be >= 1, got {degree}")
    n, h, w = grey.shape
    top = x.max(axis=-1) if x.ndim == 4 else x
    med = np.median(grey, axis=0)
    ok = (top < saturation).all(axis=0) & (grey > np.maximum(shadow_frac * med, 2e-3)).all(axis=0)
    stride = max(1, int(math.ceil(math.sqrt(h * w / max_samples))))
    sub = np.zeros_like(ok)
    sub[::stride, ::stride] = True
    sel = (ok & sub).ravel()
    n_terms = (degree + 1) * (degree + 2) // 2
    if sel.sum() < 10 * n_terms:
        raise MonitorError(
            f"irradiance fields: only {int(sel.sum())} pixels unclipped and unshadowed under "
            "every lamp; cannot fit the lamps' fall-off (--lamp-falloff 0 turns it off)"
        )
    yy, xx = np.mgrid[0:h, 0:w]
    u = (2.0 * (xx + 0.5) / w - 1.0).ravel()
    v = (2.0 * (yy + 0.5) / h - 1.0).ravel()
    design = np.stack([u**i * v**j for i in range(degree + 1) for j in range(degree + 1 - i)], 1)
    a_sel = design[sel]
    mean = grey.mean(axis=0)
    lz = np.asarray(lights, np.float64)[:, 2]
    lz = lz / np.linalg.norm(np.asarray(lights, np.float64), axis=1)
    lz = lz / lz.mean()
    logs = np.empty((n, h * w))
    for k in range(n):
        r = np.log(np.maximum(grey[k] / np.maximum(mean, 1e-6), 1e-4)).ravel()
        wt = np.ones(int(sel.sum()))
        for _ in range(3):
            coef, *_ = np.linalg.lstsq(a_sel * wt[:, None], r[sel] * wt, rcond=None)
            res = r[sel] - a_sel @ coef
            s = 1.4826 * float(np.median(np.abs(res))) + 1e-6
            wt = 1.0 / (1.0 + (res / (2.0 * s)) ** 2)
        logs[k] = design @ coef - math.log(lz[k])
    logs -= logs.mean(axis=0, keepdims=True)
    return np.exp(logs).reshape(n, h, w).astype(np.float32)
