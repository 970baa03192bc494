"""Lamp fall-off correction on rendered captures (distant lamps: it must not hurt).

Run from the repository root: python bench/multilight_falloff.py
"""

import numpy as np

from monitor.io import to_linear
from monitor.synth import PairSpec
from monitor.synth.multilight import render_capture, ring
from monitor.topography import relief

for seed, kinds in ((4, ("bulge",)), (7, ("bulge", "recession", "ridge")), (9, ("ridge",))):
    spec = PairSpec(seed=seed, size=(240, 160), kinds=kinds, size_range=(0.1, 0.2),
                    impasto=0.0, weave_amplitude=0.0,
                    slope_range=(0.05, 0.1))
    cap = render_capture(spec, ring(12, 35), before=False)
    imgs = to_linear(cap.after)
    truth = cap.height_change - cap.height_change.mean()
    row = []
    for deg in (0, 3):
        h, _ = relief(imgs, cap.lights, flat_field=deg)
        row.append(np.corrcoef(h.ravel(), truth.ravel())[0, 1])
    print(f"seed {seed} {'+'.join(kinds)}: height corr without {row[0]:.4f}, with {row[1]:.4f}")
