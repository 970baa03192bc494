"""Synthetic canvas renderer: the one place synthetic scan pairs are made.

Sample data, tests, the benchmark and training data all call :func:`render_pair`;
:func:`render_pair_files` renders the same pair strip by strip straight to files
(bounded memory, sides up to 16000 px: the native 100 MP benchmark pair).
The model follows ``FIELD-NOTES.md``:

* scene = albedo (linear RGB) + height field (baseline pixel-pitch units, positive
  towards the viewer), both on the BASELINE grid (corner-origin coordinates, the
  centre of pixel ``[row, col]`` is ``(col + 0.5, row + 0.5)``);
* base relief in both scans: canvas weave + impasto along some brush strokes;
* the later scan adds smooth deformations (bulge, recession, ridge) to the height,
  a chromatic discoloration blob and optional varnish yellowing to the albedo;
* shading is Lambertian, ``ambient + (1 - ambient) * max(n . l, 0) / l_z``, where
  ``l_z`` is the baseline lamp's elevation sine (a flat surface under the baseline
  lamp has shading 1), with optional finite-distance lamp and Blinn-Phong gloss;
* the camera of the later scan sees the scene through a homography and optional
  radial lens distortion; the scene is rendered with 2x supersampling and
  area-downsampled, so both scans share the same pixel footprint;
* exposure, white balance, vignetting, noise, sRGB encoding, quantisation, JPEG.

Ground truth: ``SynthPair.homography`` maps CURRENT pixel coordinates (after
undistortion, see :func:`undistort_points`) onto BASELINE pixel coordinates, both
corner-origin. Lens model, in CURRENT pixels with centre ``c`` (image centre) and
``R`` (half the image diagonal)::

    p_distorted = c + (p_ideal - c) * (1 + k1 * (|p_ideal - c| / R) ** 2)

Not modelled: cast shadows, inter-reflections, sub-surface scattering, sensor
demosaicing, motion blur, defocus.
"""

from __future__ import annotations

from monitor.synth.albedo import (  # noqa: F401
    _painting_albedo,
    _procedural_albedo,
    _weave,
)
from monitor.synth.camera import (  # noqa: F401
    baseline_to_current,
    current_to_baseline,
    distort_points,
    pose_homography,
    undistort_points,
    warp_current_to_baseline,
)
from monitor.synth.files import (  # noqa: F401
    write_pair,
)
from monitor.synth.multilight import (  # noqa: F401
    SynthCapture,
    render_capture,
    ring,
)
from monitor.synth.render import (  # noqa: F401
    _shading,
    render_pair,
)
from monitor.synth.small import small_damage_spec  # noqa: F401
from monitor.synth.specs import (  # noqa: F401
    KINDS,
    MASK_FRACTION,
    RIDGE_MIN_ANGLE_DEG,
    SUPERSAMPLING,
    AppearanceTruth,
    Kind,
    PairSpec,
    SynthPair,
    TruthRegion,
    demo_spec,
    sample_spec,
)
from monitor.synth.splits import (  # noqa: F401
    TEST_PAINTINGS,
    TEST_SEEDS,
    TRAIN_PAINTINGS,
    TRAIN_SEEDS,
    VALIDATION_PAINTINGS,
    VALIDATION_SEEDS,
    list_paintings,
    paintings_for,
)
from monitor.synth.strips import render_pair_files  # noqa: F401

__all__ = [
    "AppearanceTruth",
    "KINDS",
    "MASK_FRACTION",
    "PairSpec",
    "SynthCapture",
    "SynthPair",
    "TruthRegion",
    "baseline_to_current",
    "current_to_baseline",
    "demo_spec",
    "distort_points",
    "list_paintings",
    "pose_homography",
    "render_capture",
    "render_pair",
    "render_pair_files",
    "ring",
    "sample_spec",
    "small_damage_spec",
    "undistort_points",
    "warp_current_to_baseline",
    "write_pair",
]
