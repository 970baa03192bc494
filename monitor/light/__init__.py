"""Where the lamp was: estimate the light's azimuth from the scans themselves.

Physics (FIELD-NOTES.md, "Where the lamp was"). Under a distant lamp with
in-plane direction ``d`` (unit, towards the lamp) and small slopes, the log
shading is ``log s ~ const - (|l_xy| / l_z) d . grad h``. Two consequences:

* **Axis** (azimuth mod 180). For a height field whose spectrum is isotropic
  (canvas weave, impasto in all directions, a round bulge) the gradient
  structure tensor of the shading is ``J ~ I + 2 d d^T``: its principal axis
  is the light's axis, with an eigenvalue ratio near 3 : 1 (Pentland 1982;
  Lee and Rosenfeld 1985 use the same first-order model). Paint edges add
  gradients of their own; they are down-weighted where they are chromatic
  (relief shades every channel alike, paint changes them unequally).
* **Sign** (which end of the axis). ``h`` under ``d`` and ``-h`` under ``-d``
  give the *same* image, clipped dark flanks and all: the convex / concave
  ambiguity is exact for a distant Lambertian lamp. The sign therefore comes
  from a prior: paint relief (impasto strokes, raised objects with their
  shadows) is mostly *raised*, so the height integrated along the correct
  direction has a positive skew, and along the wrong one a negative skew.

* **Near lamp** (breaks the flip). A lamp at a finite distance lights each
  point from the direction of its foot on the canvas plane, so the local
  axes converge towards it; the two ends predict opposite turns of the local
  axis across the image (``monitor.light.cues._convergence_cue``). Painted structure turns
  the tiles' axes too (measured: t up to +/-12 under distant lamps), so the
  cue only confirms a weaker skew (SIGN_T_LOW), never decides alone. The
  irradiance fall-off would tell as well, but in one scan it is confounded
  with the paint's composition and it cancels in the pair's ratio.

A pair adds the change itself: the log ratio of two registered scans cancels
the paint, leaving the shading of the relief change (a bright/dark pair along
the light axis). Its tiles sharpen the axis; where the ratio has strong,
compact, achromatic dipoles (the deformations, ``monitor.light.blobs``) the
gradient at each dipole's centre points along the lamp's axis, whatever the
painted strokes do: the blobs are combined with the tiles (whose uncertainty
is floored at TILE_BIAS_DEG, the bias painted structure gives them), and
decide the axis alone when the tiles are not trusted. Neither carries a sign
(a bulge lit from one end is a dent lit from the other), so the pair's sign
comes from both scans' texture. The pair's end is read only along an axis
known to AXIS_END_DEG: an end along a wrong axis (painted structure
outweighing weak relief at steep light) would be a confident wrong lamp.
Beyond that limit, and without blobs, the axis itself is reported unknown
(``axis_uncertainty_deg`` = AXIS_UNKNOWN_DEG): a given lamp is then "not
checked" rather than "disagrees", and ``auto`` refuses.

Elevation only scales the shading contrast by ``cot(elevation)`` times an
unknown slope scale, so it is not identifiable from one lamp without a
height prior: ``elevation_deg`` is ``None`` and the note says so.

Every estimate carries an uncertainty in degrees from the spread of the cue
over image tiles, and a confidence in [0, 1]; "could not tell" is an estimate
with confidence 0 and an uncertainty of 180 degrees, never a default lamp.
"""

from __future__ import annotations

from monitor.light.check import (
    angular_difference,
    check_light_values,
    check_same_lamp,
    compare_light,
    resolve_light,
)
from monitor.light.estimate import estimate_pair_light, estimate_scan_light
from monitor.light.params import (
    AXIS_END_DEG,
    AXIS_UNKNOWN_DEG,
    CONFIDENT,
    CONV_T,
    DISAGREE_DEG,
    SIGN_T,
    SIGN_T_LOW,
)

__all__ = [
    "AXIS_END_DEG",
    "AXIS_UNKNOWN_DEG",
    "CONFIDENT",
    "CONV_T",
    "DISAGREE_DEG",
    "SIGN_T",
    "SIGN_T_LOW",
    "angular_difference",
    "check_light_values",
    "check_same_lamp",
    "compare_light",
    "estimate_pair_light",
    "estimate_scan_light",
    "resolve_light",
]
