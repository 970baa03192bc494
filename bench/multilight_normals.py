"""Multi-light measurement script (run from the repository root; see the multilight report)."""

import sys
import time

import numpy as np

from monitor.depth.integrate import integrate_normals
from monitor.depth.photometric_stereo import (
    angular_error_deg,
    normals_from_height,
    photometric_stereo,
)
from monitor.io import to_linear
from monitor.synth import PairSpec
from monitor.synth_multilight import render_capture, ring

gloss = float(sys.argv[1])
painting = sys.argv[2]
lights = ring(8, 20) + ring(8, 40, 22.5) + ring(8, 60)
spec = PairSpec(
    seed=11,
    size=(320, 240),
    painting=f"../shared/paintings/{painting}.jpg",
    impasto=0.0,
    weave_amplitude=0.0,
    n_deformations=(5, 5),
    gloss=gloss,
    slope_range=(0.08, 0.2),
)
cap = render_capture(spec, lights, before=False)
lin = to_linear(cap.after)
hc = cap.height_change
tn = normals_from_height(hc)
dm = np.abs(hc) > 0.05 * np.abs(hc).max()
for name, kw in (
    ("robust", {}),
    (
        "plain LS",
        {"iterations": 0, "reject_z": 1e9, "shadow_frac": 0.0, "saturation": 2.0, "trim": 1.0},
    ),
):
    nm = photometric_stereo(lin, cap.lights, **kw)
    err = angular_error_deg(nm.normals, tn)
    out = [
        name,
        "median {:.2f} deg, on deformations median {:.2f} p90 {:.2f}".format(
            np.median(err), *np.percentile(err[dm], [50, 90])
        ),
    ]
    for m in ("fc", "poisson"):
        t = time.time()
        h = integrate_normals(nm.normals, nm.confidence, method=m)
        out.append(
            f"{m} corr {np.corrcoef(h.ravel(), hc.ravel())[0, 1]:.4f} ({time.time() - t:.2f}s)"
        )
    print(gloss, painting, *out)
