"""Synthetic multi-light captures, rendered through :func:`monitor.synth.render_pair`.

``render_pair`` renders one scene (albedo, base relief, deformations) under a
baseline and a current lamp. The scene's random draws do not depend on the
lamps, so rendering the *current* scan of the same spec under each lamp in
turn (``light_current = l_k``, the baseline lamp kept fixed as the brightness
reference ``l_z``) gives one relief under many lamps; ``no_change=True`` gives
the same canvas before the deformations. The camera pose, exposure and white
balance of the later scan are forced to identity (one fixed camera per
capture) and the appearance changes off.

Sensor noise: ``render_pair`` draws the same noise field for every lamp (its
noise generator is seeded from the scene), which would be perfectly
correlated across a capture. Here the spec's noise is switched off and the
same noise model (``sigma = noise * sqrt(I^2 + 0.01^2)``, linear light) is
applied afresh per image, then re-encoded to 8-bit sRGB.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from monitor.io import from_linear, to_linear
from monitor.results import Light
from monitor.synth import PairSpec, SynthPair, TruthRegion, render_pair


@dataclass(frozen=True)
class SynthCapture:
    """One canvas before and after its deformations, each under every lamp.

    ``before`` / ``after`` are N x H x W x 3 sRGB uint8; ``lights`` N x 3 unit
    vectors (at the lamps); ``height_change`` the true after-minus-before height
    (pixel-pitch units); ``regions`` the truth regions of ``render_pair``.
    """

    before: np.ndarray = field(repr=False)
    after: np.ndarray = field(repr=False)
    lights: np.ndarray = field(repr=False)
    height_change: np.ndarray = field(repr=False)
    regions: tuple[TruthRegion, ...]
    spec: PairSpec


def ring(n: int, elevation_deg: float, offset_deg: float = 0.0) -> list[Light]:
    """``n`` lamps evenly spaced in azimuth at one elevation.

    Examples
    --------
    >>> [round(lt.azimuth_deg) for lt in ring(4, 30)]
    [0, 90, 180, 270]
    """
    return [Light((offset_deg + 360.0 * k / n) % 360.0, elevation_deg) for k in range(n)]


def render_capture(
    spec: PairSpec,
    lights: list[Light],
    *,
    noise: float = 0.007,
    before: bool = True,
) -> SynthCapture:
    """Render the canvas of ``spec`` before and after its deformations under each lamp.

    Parameters
    ----------
    spec
        The scene (seed, size, painting, relief, deformations, gloss, ambient).
        ``light_baseline`` is the brightness reference and fixes the orientation
        of ridges (see :mod:`monitor.synth`); pose, exposure, white balance,
        vignetting, discoloration, yellowing and the spec's own noise are overridden.
    lights
        The lamps of the capture (at least one).
    noise
        Relative sensor noise, drawn independently per image.
    before
        Also render the canvas before the deformations (else ``before`` is empty).

    Returns
    -------
    SynthCapture

    Examples
    --------
    >>> from monitor.synth import PairSpec
    >>> cap = render_capture(PairSpec(seed=3, size=(96, 64), kinds=("bulge",),
    ...                      size_range=(0.1, 0.15)), ring(4, 40))  # doctest: +SKIP
    >>> cap.after.shape  # doctest: +SKIP
    (4, 64, 96, 3)
    """
    fixed = dataclasses.replace(
        spec,
        current_size=None,
        rotation_deg=0.0,
        scale=1.0,
        translation=(0.0, 0.0),
        perspective=(0.0, 0.0),
        lens_k1=0.0,
        exposure=1.0,
        wb=(1.0, 1.0, 1.0),
        vignetting=(0.0, 0.0),
        discoloration=False,
        yellowing=0.0,
        noise=0.0,
        jpeg_quality=None,
        bit_depth=8,
    )
    rng = np.random.default_rng([spec.seed, 7919])

    truths: list[SynthPair] = []

    def shot(light: Light, no_change: bool) -> np.ndarray:
        pair = render_pair(dataclasses.replace(fixed, light_current=light, no_change=no_change))
        if not truths:
            truths.append(pair)
        lin = to_linear(pair.current)
        if noise > 0:
            sigma = noise * np.sqrt(lin * lin + 0.01**2)
            lin = np.clip(lin + sigma * rng.standard_normal(lin.shape, dtype=np.float32), 0, 1)
        return from_linear(lin, 8)

    after = np.stack([shot(lt, spec.no_change) for lt in lights])
    truth = truths[0] if truths else render_pair(fixed)
    before_imgs = (
        np.stack([shot(lt, True) for lt in lights]) if before else np.zeros((0,), np.uint8)
    )
    return SynthCapture(
        before=before_imgs,
        after=after,
        lights=np.stack([lt.vector() for lt in lights]),
        height_change=truth.height_change,
        regions=truth.regions,
        spec=fixed,
    )
