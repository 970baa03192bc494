"""``--depth relief``: the shipped per-scan relief network as a :class:`DepthEstimator`.

A compact U-Net (:mod:`monitor.nets`) trained by the project
(:mod:`monitor.training`) on synthetic scans to read the surface's height
(impasto, canvas weave and deformations of the support, baseline pixel-pitch
units) from one linear scan and the direction of its lamp. One photograph
cannot tell a dark stroke of paint from a shadow: expect paint to leak into
the relief (FIELD-NOTES.md); differences of two scans (``--method depth``)
inherit that, which is why ``--method pair`` exists.

The scan is turned by quarter turns so the lamp comes from about the left
(as in training), cut into overlapping tiles, and each tile's inputs
(:func:`relief_features`: high-passed log luminance, chromaticity, the
shading integrated along the light, trusted mask, light direction and
elevation gain) are computed inside the tile, so memory stays bounded for any
size. The net's height is relative (unknown offset per tile): tiles are
harmonised by one shift each (:func:`monitor.depth.tiling.tiled_predict`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from monitor.checks import check_image
from monitor.depth.tiling import full_precision, prepare_model, tiled_predict
from monitor.nets import WEIGHTS_DIR, LoadedNet, load_net
from monitor.photometry import (
    EPS,
    canonical_turns,
    in_plane_direction,
    integrate_two_sided,
    luminance,
    smooth_background,
    trusted_mask,
    turn_light,
)
from monitor.results import DepthMap, Light, ReliefInputs

RELIEF_WEIGHTS = WEIGHTS_DIR / "relief.safetensors"
N_INPUTS = 7
#: Fixed lengths on the working grid (px): background removal and integration
#: memory -- the same as the pair network's (``monitor.change.pair``), on which
#: the relief network's inputs were modelled.
BACKGROUND_PX = 32.0
DECAY_PX = 48.0

__all__ = ["RELIEF_WEIGHTS", "ReliefEstimator", "relief_features", "relief_inputs"]


def _high_pass(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return (x - smooth_background(x, w, BACKGROUND_PX)) * w


def relief_features(rgb: torch.Tensor, valid: torch.Tensor, light: Light) -> torch.Tensor:
    """The relief network's inputs for one scan already turned to canonical orientation.

    Parameters
    ----------
    rgb
        (3, H, W) float32 linear light.
    valid
        (H, W) bool, pixels with data.
    light
        The lamp in this orientation (azimuth within 45 degrees of 180).

    Returns
    -------
    torch.Tensor
        (N_INPUTS, H, W) float32.

    Examples
    --------
    >>> rgb = torch.full((3, 32, 32), 0.5)
    >>> feats = relief_features(rgb, torch.ones(32, 32, dtype=torch.bool), Light(180, 30))
    >>> feats.shape[1:], feats.dtype
    (torch.Size([32, 32]), torch.float32)
    """
    ux, uy, gain = in_plane_direction(light)
    ok = trusted_mask(valid, rgb)
    w = ok.float()
    x = rgb.clamp_min(0)
    lum = torch.log(luminance(x) + EPS)
    g = torch.log(x[1] + EPS)
    hp = _high_pass(lum, w)
    red = _high_pass(torch.log(x[0] + EPS) - g, w)
    blue = _high_pass(torch.log(x[2] + EPS) - g, w)
    slope = -torch.expm1(hp.clamp(-1.5, 1.5)) * w
    long_side = max(slope.shape)
    _, phys = integrate_two_sided(
        slope, (ux, uy), decay_frac=DECAY_PX / long_side, blur_frac=0.75 / long_side
    )
    ones = torch.ones_like(hp)
    return torch.stack(
        [hp, 2.0 * red, 2.0 * blue, 0.1 * phys * w, w, uy * ones, gain * ones]
    ).float()


def relief_inputs(
    rgb: np.ndarray, valid: np.ndarray, light: Light, device: torch.device | None = None
) -> ReliefInputs:
    """Turn one scan to canonical orientation and compute :func:`relief_features`.

    Parameters
    ----------
    rgb
        H x W x 3 float32 linear light.
    valid
        H x W bool.
    light
        The lamp in the image's orientation.
    device
        Where to compute.

    Returns
    -------
    ReliefInputs
        ``features`` (N_INPUTS, H', W') in canonical orientation, ``turns``
        (quarter turns applied), ``gain`` (elevation gain of the light);
        unpacks as ``features, turns, gain``.

    Examples
    --------
    >>> r = relief_inputs(np.full((128, 128, 3), 0.5, np.float32), np.ones((128, 128), bool),
    ...                   Light(90, 30))
    >>> tuple(r.features.shape), r.turns
    ((7, 128, 128), 1)
    """
    device = device or torch.device("cpu")
    k = canonical_turns(light)
    turned = turn_light(light, k)
    x = torch.from_numpy(np.ascontiguousarray(np.nan_to_num(rgb), dtype=np.float32)).to(device)
    v = torch.from_numpy(np.ascontiguousarray(valid, dtype=bool)).to(device)
    x = torch.rot90(x.permute(2, 0, 1), k, dims=(-2, -1))
    v = torch.rot90(v, k, dims=(-2, -1))
    _, _, gain = in_plane_direction(turned)
    return ReliefInputs(relief_features(x, v, turned), k, gain)


class ReliefEstimator:
    """Per-scan relief from the shipped network (``--depth relief``).

    Parameters
    ----------
    device
        Torch device.
    path
        Weights file (default: the shipped ``weights/relief.safetensors``).
    tile, overlap, batch_size
        Tiling of large scans.
    """

    name = "relief"

    def __init__(
        self,
        device: torch.device | None = None,
        path: Path | None = None,
        *,
        tile: int = 512,
        overlap: int = 64,
        batch_size: int = 2,
    ) -> None:
        self.device = device or torch.device("cpu")
        self.net: LoadedNet = load_net(path or RELIEF_WEIGHTS, self.device, kind="relief")
        self.model = prepare_model(self.net.model, self.device)
        self.model_id = self.net.model_id
        self.weights_sha256: str | None = self.net.sha256
        self.tile, self.overlap, self.batch_size = tile, overlap, batch_size

    def estimate(self, rgb_linear: np.ndarray, light: Light) -> DepthMap:
        """Relative height of one scan (baseline pixel-pitch units of the input grid).

        Parameters
        ----------
        rgb_linear
            H x W x 3 float32 linear light in [0, 1].
        light
            Where the light came from.

        Returns
        -------
        DepthMap
            ``height`` H x W float32, larger = towards the viewer.
        """
        check_image(rgb_linear, "H W 3", name="relief estimator: linear RGB", min_side=16)
        k = canonical_turns(light)
        turned = turn_light(light, k)
        _, _, gain = in_plane_direction(turned)
        scale = gain / self.net.meta_float("target_scale", 0.25)

        def predict(x: torch.Tensor) -> torch.Tensor:
            feats = []
            with full_precision(x.device):  # the features are physics: float32 always
                for tile in x:
                    t = torch.rot90(tile, k, dims=(-2, -1)) if k else tile
                    valid = torch.ones(t.shape[-2:], dtype=torch.bool, device=t.device)
                    feats.append(relief_features(t.float(), valid, turned))
            q = self.model(torch.stack(feats))[:, 0].float()  # only the net under autocast
            q = torch.rot90(q, -k, dims=(-2, -1)) if k else q
            return q * scale

        multiple = self.net.spec.multiple
        height = tiled_predict(
            rgb_linear, predict, tile=self.tile, overlap=self.overlap,
            batch_size=self.batch_size, device=self.device, multiple=multiple,
            harmonise="shift",
        )
        return DepthMap(
            height=height.astype(np.float32),
            model_id=self.model_id,
            weights_sha256=self.weights_sha256,
            device=str(self.device),
        )
