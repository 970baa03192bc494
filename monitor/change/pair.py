"""``--method pair``: a network trained by the project reads height change from two scans.

Inputs to the network (:func:`pair_inputs`), computed on a working grid whose
long side is the one it was trained at (``work_px``, 512), after turning the
pair by a multiple of 90 degrees so that the lamp comes from about the left
(the net then only has to know lamps within 45 degrees of that):

0. achromatic log ratio of current over baseline (the paint cancels; both
   scans smoothed by 1 px first), with its low frequencies (exposure, lamp
   drift and falloff, vignetting) removed;
1-2. its chromatic part (red and blue minus the mean): stains and yellowing
   change the channels unequally, relief does not;
3. the physics estimate: the ``photometric`` method's height change on the
   same grid (:func:`~monitor.change.methods.photometric_change`: robust
   background, appearance masking, shading integrated with and against the
   light), which reaches far beyond the net's receptive field;
4-5. the same slope integrated here without masking (4: two-sided, tails
   removed; 5: linear, tails kept);
6. the photometric method's appearance (chromatic change) mask;
7-8. the baseline's log luminance, high-passed and relative to its median
   (dark paint is noisy, edges of paint reveal misregistration);
9. the trusted-pixel mask; 10-11. the remaining light direction (its ``y``
   component after the turn) and the elevation gain ``l_z / |l_xy|``.

The net predicts ``height change / gain`` in working pixels (times
``TARGET_SCALE``) as a correction added to channel 3, so before any training
it is (twice) the photometric estimate; the result is turned back, brought to
the analysis grid and expressed in baseline pixels.

Level of detection (``noise_sigma``): ``max(noise_mult * spread of the output,
noise_floor * spread of channel 5)`` over the trusted canvas (robust spreads),
the two factors chosen on the validation split by ``monitor train pair`` and
stored in the weights' metadata -- never on benchmark pairs.

The net was trained on the photometric method's output as it is now: a change
to :func:`~monitor.change.methods.photometric_change` changes this method's
input, so retrain (``monitor train pair``) after one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from monitor.change.methods import photometric_change
from monitor.checks import check_image, check_pair
from monitor.depth.tiling import prepare_model, tiled_predict
from monitor.errors import MonitorError
from monitor.nets import WEIGHTS_DIR, LoadedNet, load_net
from monitor.photometry import (
    EPS,
    blur,
    canonical_turns,
    in_plane_direction,
    integrate_two_sided,
    luminance,
    robust_sigma,
    smooth_background,
    trusted_mask,
    turn_light,
)
from monitor.results import ChangeMap, Light

#: The shipped weights.
PAIR_WEIGHTS = WEIGHTS_DIR / "pair.safetensors"
N_INPUTS = 12
#: Input channel holding the physics estimate (the photometric method's height
#: change), in output units; the net adds its correction to it.
PHYS_CHANNEL = 3
#: Input channel holding the linear (one-pass, tails kept) integral, in output units.
LINEAR_CHANNEL = 5
#: The net predicts ``height change / gain * TARGET_SCALE`` in working pixels.
TARGET_SCALE = 0.25
PRESMOOTH_PX = 1.0
#: The two-sided integrals keep the smaller of two leaky integrators and fade
#: where they disagree: on synthetic training pairs they read about half the
#: true height, so those channels are doubled (the net corrects the rest).
PHYS_GAIN = 2.0
#: Fixed lengths on the working grid (px): background removal and integration memory.
BACKGROUND_PX = 32.0
DECAY_PX = 48.0

__all__ = [
    "PAIR_WEIGHTS",
    "PairInputs",
    "canonical_turns",
    "load_pair_model",
    "pair_change",
    "pair_inputs",
    "predict_pair",
    "robust_sigma",
    "trusted_mask",
    "turn_light",
]
# canonical_turns, turn_light, trusted_mask and robust_sigma live in
# monitor.photometry; the names stay importable from here.


def _log_lum(x: torch.Tensor) -> torch.Tensor:
    return torch.log(luminance(x).clamp_min(0) + EPS)


def pair_features(
    baseline: torch.Tensor,
    current: torch.Tensor,
    valid: torch.Tensor,
    light: Light,
    photometric: torch.Tensor,
    appearance: torch.Tensor,
    lum_level: float | None = None,
) -> torch.Tensor:
    """The network's input channels for one pair already turned to canonical orientation.

    Parameters
    ----------
    baseline, current
        (3, H, W) float32 linear light (current on the baseline grid; values
        outside ``valid`` are ignored).
    valid
        (H, W) bool, where the current has data.
    light
        The lamp in this orientation (azimuth within 45 degrees of 180).
    photometric
        (H, W) height change of :func:`~monitor.change.methods.photometric_change`
        on the same grid (pixels; 0 outside the overlap).
    appearance
        (H, W) bool, its chromatic appearance-change mask.
    lum_level
        The log luminance channel 8 is relative to (default: the median of
        this image's trusted pixels; a tile passes its whole image's).

    Returns
    -------
    torch.Tensor
        (N_INPUTS, H, W) float32; channel :data:`PHYS_CHANNEL` is the physics
        estimate in the network's output units (the net learns its correction).
    """
    ux, uy, gain = in_plane_direction(light)
    ok = trusted_mask(valid, baseline, current)
    w = ok.float()
    b, c = baseline.clamp_min(0), current.clamp_min(0)
    # sub-pixel misregistration of fine texture (weave, impasto edges) is the
    # largest clutter in the ratio; deformations are far wider than this blur
    bs, cs = blur(b, PRESMOOTH_PX), blur(c, PRESMOOTH_PX)
    ratio = (torch.log(cs + EPS) - torch.log(bs + EPS)) * w
    ratio = (ratio - smooth_background(ratio, w, BACKGROUND_PX)) * w
    achromatic = ratio.mean(dim=0)
    chroma = ratio - achromatic
    slope = -torch.expm1(achromatic.clamp(-1.5, 1.5)) * w
    long_side = max(slope.shape)
    two_sided, linear = integrate_two_sided(
        slope, (ux, uy), decay_frac=DECAY_PX / long_side, blur_frac=0.75 / long_side
    )
    lum = _log_lum(b)
    lum_hp = (lum - smooth_background(lum, w, BACKGROUND_PX)) * w
    if lum_level is not None:
        level = lum.new_tensor(lum_level)
    else:
        level = lum[ok].median() if bool(ok.any()) else lum.new_tensor(0.0)
    inside = valid.float()
    ones = torch.ones_like(achromatic)
    q = TARGET_SCALE / gain
    return torch.stack(
        [
            10.0 * achromatic,
            10.0 * chroma[0],
            10.0 * chroma[2],
            PHYS_GAIN * q * torch.nan_to_num(photometric) * inside,
            PHYS_GAIN * TARGET_SCALE * two_sided * w,
            TARGET_SCALE * linear * w,
            appearance.float(),
            lum_hp,
            0.5 * (lum - level) * w,
            w,
            uy * ones,
            gain * ones,
        ]
    ).float()


@dataclass(frozen=True)
class PairInputs:
    """Network inputs of a pair on the working grid, turned to canonical orientation."""

    features: torch.Tensor  # (N_INPUTS, h, w) canonical orientation
    turns: int  # quarter turns applied (undo with -turns)
    gain: float  # l_z / |l_xy| of the (turned) light
    trusted: np.ndarray  # (H, W) bool on the working grid, original orientation

    def channel(self, index: int) -> np.ndarray:
        """One input channel in the original orientation (numpy)."""
        x = self.features[index].cpu().numpy()
        return np.ascontiguousarray(np.rot90(x, -self.turns) if self.turns else x)


def pair_inputs(
    baseline: np.ndarray, current: np.ndarray, valid: np.ndarray, light: Light,
    device: torch.device | None = None, *, length_px: float | None = None,
    median_lum: float | None = None, lum_level: float | None = None,
) -> PairInputs:
    """Turn a pair to canonical orientation and compute :func:`pair_features`.

    Parameters
    ----------
    baseline, current
        H x W x 3 float32 linear light on the working grid (current warped).
    valid
        H x W bool.
    light
        The lamp, in the images' orientation.
    device
        Where to compute.
    length_px, median_lum, lum_level
        For a tile of a larger image: the long side the physics channel's
        relative lengths refer to and the image's median luminance
        (:func:`~monitor.change.methods.photometric_change`), and the log
        luminance level of channel 8 (:func:`pair_features`); default: this
        image's own.

    Returns
    -------
    PairInputs
    """
    device = device or torch.device("cpu")
    k = canonical_turns(light)
    turned = turn_light(light, k)
    cur = np.where(valid[..., None], np.nan_to_num(current), 0.0).astype(np.float32)
    base = baseline.astype(np.float32)
    photo = photometric_change(base, cur, valid, light, scale=1.0, device=device,
                               length_px=length_px, median_lum=median_lum, details=False)
    appearance = photo.appearance if photo.appearance is not None else np.zeros_like(valid)

    def t(a: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(a)).to(device)
        x = x.permute(2, 0, 1) if x.dim() == 3 else x
        return torch.rot90(x, k, dims=(-2, -1)) if k else x

    b_t, c_t, v_t = t(base), t(cur), t(valid.astype(bool))
    feats = pair_features(
        b_t, c_t, v_t, turned, t(np.nan_to_num(photo.height)), t(appearance.astype(bool)),
        lum_level=lum_level,
    )
    ok = trusted_mask(v_t, b_t, c_t)
    ok = torch.rot90(ok, -k, dims=(-2, -1)) if k else ok
    _, _, gain = in_plane_direction(turned)
    return PairInputs(feats, k, gain, ok.cpu().numpy())


def load_pair_model(device: torch.device | None = None, path: Path | None = None) -> LoadedNet:
    """Load the pair network (default: the shipped ``weights/pair.safetensors``).

    Raises
    ------
    MonitorError
        When the weights are missing or are not a pair network.
    """
    return load_net(path or PAIR_WEIGHTS, device, kind="pair")


def predict_pair(
    net: LoadedNet, inputs: PairInputs, device: torch.device | None = None
) -> np.ndarray:
    """Height change on the working grid, in working pixels, original orientation.

    Parameters
    ----------
    net
        A loaded pair network.
    inputs
        From :func:`pair_inputs`.
    device
        Where the network runs.

    Returns
    -------
    numpy.ndarray
        (H, W) float32.
    """
    device = device or torch.device("cpu")
    model = prepare_model(net.model, device)
    feats = inputs.features.permute(1, 2, 0).cpu().numpy()
    tile = int(net.meta_float("tile_px", 768))
    q = tiled_predict(
        feats, lambda x: model(x), tile=tile, overlap=64, batch_size=2, device=device,
        multiple=net.spec.multiple, harmonise="none",
    )
    k = inputs.turns
    q = np.rot90(q, -k) if k else q
    target_scale = net.meta_float("target_scale", TARGET_SCALE)
    return np.ascontiguousarray(q * (inputs.gain / target_scale), dtype=np.float32)


def _resize(a: np.ndarray, shape: tuple[int, int], area: bool) -> np.ndarray:
    if a.shape[:2] == shape:
        return a
    interp = cv2.INTER_AREA if area else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(a), (shape[1], shape[0]), interpolation=interp)


def _check(baseline: np.ndarray, current: np.ndarray, valid: np.ndarray) -> None:
    check_pair("pair", baseline, current, valid)
    check_image(baseline, "H W 3", name="pair: baseline", min_side=32)
    check_image(baseline[valid], "N 3", name="pair: baseline (linear light)", finite=True,
                range=(-0.01, 1.5))


def pair_change(
    baseline: np.ndarray,
    current: np.ndarray,
    valid: np.ndarray,
    light: Light,
    *,
    model: LoadedNet,
    scale: float = 1.0,
    device: torch.device | None = None,
) -> ChangeMap:
    """Signed height change of two registered linear scans, read by the pair network.

    Parameters
    ----------
    baseline, current
        H x W x 3 float32 linear light on the baseline grid at analysis
        resolution; current already warped (NaN or anything outside ``valid``).
    valid
        H x W bool, where the warped current has data.
    light
        Direction of the lamp (both scans).
    model
        A loaded pair network (:func:`load_pair_model`); the stage never loads one.
    scale
        Analysis pixels per baseline pixel (recorded; heights are converted to
        baseline pixels with it).
    device
        Torch device (default CPU).

    Returns
    -------
    ChangeMap
        Height change in baseline pixel-pitch units (+ = towards the viewer),
        NaN outside the overlap; ``model_id`` and ``weights_sha256`` of the net.
    """
    _check(baseline, current, valid)
    if not (math.isfinite(scale) and 0 < scale <= 1.0 + 1e-9):
        raise MonitorError(f"pair: scale must be in (0, 1], got {scale}")
    device = device or torch.device("cpu")
    net = model
    if net.kind != "pair":
        raise MonitorError(f"pair: the model is a {net.kind!r} network")
    h, w = baseline.shape[:2]
    work_px = int(net.meta_float("work_px", 512))
    s_work = min(1.0, work_px / max(h, w))
    shape = (max(32, round(h * s_work)), max(32, round(w * s_work)))
    cur = np.where(valid[..., None], np.nan_to_num(current), baseline).astype(np.float32)
    b_w = _resize(baseline.astype(np.float32), shape, area=True)
    c_w = _resize(cur, shape, area=True)
    v_w = _resize(valid.astype(np.float32), shape, area=True) > 0.999
    inputs = pair_inputs(b_w, c_w, v_w, light, device)
    dh_work = predict_pair(net, inputs, device)
    # level of detection: the output's own spread over the canvas, floored by
    # the spread of the physics channel (the input noise, integrated like signal)
    phys = inputs.channel(LINEAR_CHANNEL) / TARGET_SCALE * inputs.gain
    ok = inputs.trusted
    spread_out = robust_sigma(dh_work[ok]) if ok.any() else 0.0
    spread_phys = robust_sigma(phys[ok]) if ok.any() else 0.0
    sigma_work = max(
        net.meta_float("noise_mult", 1.0) * spread_out,
        net.meta_float("noise_floor", 0.5) * spread_phys,
        1e-6,
    )
    # working px -> baseline px: one working pixel is 1 / (s_work * scale) baseline px
    to_base = 1.0 / (s_work * scale)
    height = _resize(dh_work, (h, w), area=False) * np.float32(to_base)
    height = height.astype(np.float32)
    height[~valid] = np.nan
    return ChangeMap(
        height=height,
        scale=scale,
        method="pair",
        noise_sigma=float(sigma_work * to_base),
        appearance=None,
        alignment=None,
        model_id=net.model_id,
        weights_sha256=net.sha256,
        integration_direction=None,
        usable_fraction=float(ok.mean()) / max(float(v_w.mean()), 1e-12) if v_w.any() else 0.0,
    )
