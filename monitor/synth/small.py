"""Small damage on real-size scans: blisters, tenting along a crack, cupping.

Built on :func:`monitor.synth.sample_spec` / :func:`monitor.synth.render_pair`
(the one renderer): a spec is a randomised pose / light / exposure draw of
``sample_spec`` with the deformations replaced by small ones on a canvas of
known size, so that ``px_per_mm`` is exact.

* blister -- a small round bulge (``bulge``), 2.4-7 mm across at the default scale;
* tenting -- paint lifting along a crack (``ridge``, elongated, a few mm wide);
* cupping -- a small concave island (``recession``).

``synth.PairSpec`` has one ``size_range`` for all deformations of a pair and
its smallest radius is 0.2 % of the long side, so small and large damage are
mixed *across* pairs (``fine`` and ``large`` specs) rather than within one,
and the smallest blister at 6000 px is 2.4 mm across on a 60 cm canvas.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from monitor.errors import MonitorError
from monitor.synth.specs import PairSpec, sample_spec

Damage = Literal["fine", "large"]

#: Deformation kinds of the fine set: blisters, tenting, cupping.
FINE_KINDS = ("bulge", "bulge", "ridge", "recession", "bulge", "ridge", "recession", "bulge")
#: Radius (support) range of fine damage, fraction of the long side (0.2 % is synth's floor).
FINE_SIZE_RANGE = (0.002, 0.006)
#: Large deformations of the same pairs' companions.
LARGE_SIZE_RANGE = (0.012, 0.05)
LARGE_KINDS = ("bulge", "recession", "ridge", "bulge")


@dataclass(frozen=True)
class CanvasSpec:
    """A synthetic pair on a canvas of known size.

    ``canvas_mm`` is the physical long side of the canvas; ``px_per_mm`` follows
    from the render size.
    """

    spec: PairSpec
    canvas_mm: float
    damage: Damage

    @property
    def px_per_mm(self) -> float:
        return max(self.spec.size) / self.canvas_mm


def small_damage_spec(
    seed: int,
    *,
    size: tuple[int, int] = (6000, 4000),
    canvas_mm: float = 600.0,
    damage: Damage = "fine",
    painting: str | Path | None = None,
    discoloration: bool | None = None,
) -> CanvasSpec:
    """A pair spec with small (``fine``) or large deformations at native size.

    Parameters
    ----------
    seed
        Seed of the draw (use ``synth.TEST_SEEDS`` for evaluation only,
        ``synth.TRAIN_SEEDS`` for tuning).
    size
        Baseline ``(width, height)`` in pixels, rendered at that size (not upscaled).
    canvas_mm
        Physical long side of the canvas.
    damage
        ``"fine"``: 8 blisters / tentings / cuppings; ``"large"``: 4 bulges,
        recessions and ridges of 1-5 % of the long side.
    painting
        Photo used as albedo (None: procedural brushwork).
    discoloration
        Override ``sample_spec``'s random chromatic stain.

    Returns
    -------
    CanvasSpec

    Examples
    --------
    >>> cs = small_damage_spec(1_000_001, size=(1200, 800), canvas_mm=120.0)
    >>> cs.px_per_mm, cs.spec.kinds[:3]
    (10.0, ('bulge', 'bulge', 'ridge'))
    """
    if damage not in ("fine", "large"):
        raise MonitorError(f"damage must be 'fine' or 'large', got {damage!r}")
    if not canvas_mm > 0:
        raise MonitorError(f"canvas_mm must be positive, got {canvas_mm}")
    base = sample_spec(seed, painting=painting, size=size)
    kinds = FINE_KINDS if damage == "fine" else LARGE_KINDS
    knobs: dict[str, object] = {
        "kinds": kinds,
        "size_range": FINE_SIZE_RANGE if damage == "fine" else LARGE_SIZE_RANGE,
        "slope_range": (0.06, 0.16),
    }
    if discoloration is not None:
        knobs["discoloration"] = discoloration
    spec = dataclasses.replace(base, **knobs)  # type: ignore[arg-type]
    return CanvasSpec(spec=spec, canvas_mm=float(canvas_mm), damage=damage)
