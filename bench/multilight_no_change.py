"""Multi-light measurement script (run from the repository root; see the multilight report)."""

import numpy as np

from monitor.change.multilight import normal_change
from monitor.depth.photometric_stereo import photometric_stereo
from monitor.io import to_linear
from monitor.regions import find_regions
from monitor.synth import PairSpec
from monitor.synth_multilight import render_capture, ring

for seed in (31, 32):
    spec = PairSpec(
        seed=seed,
        size=(320, 240),
        painting="../shared/paintings/gauguin_three_tahitian_women.jpg",
        no_change=True,
        gloss=0.1,
    )
    cap = render_capture(spec, ring(12, 30))
    a = photometric_stereo(to_linear(cap.before), cap.lights)
    b = photometric_stereo(to_linear(cap.after), cap.lights)
    cm = normal_change(a, b, np.ones((240, 320), bool))
    z = cm.height / cm.noise_map
    print(
        seed,
        f"max|z| {np.nanmax(np.abs(z)):.1f}",
        f"frac|z|>4 {np.mean(np.abs(z) > 4):.5f}",
        "global/median-local %.2f" % (1.4826 * np.nanmedian(np.abs(cm.height)) / cm.noise_sigma),
        "regions",
        len(find_regions(cm, z=6, min_diameter_frac=0.004)),
    )
