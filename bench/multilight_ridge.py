"""Ridge parallel to one lamp: multi-light change vs single-lamp photometric route."""

import math
import sys
import tempfile
import time
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from skimage import measure

from monitor.change.multilight import compare_captures
from monitor.io import write_png
from monitor.pipeline import compare
from monitor.results import Light
from monitor.synth import PairSpec, render_pair
from monitor.synth_multilight import render_capture, ring


def write_capture(folder, imgs, lights):
    folder.mkdir(parents=True)
    lines = [str(len(imgs))]
    for k, (im, lv) in enumerate(zip(imgs, lights, strict=False)):
        write_png(folder / f"l{k:02d}.png", im)
        lines.append(f"l{k:02d}.png {lv[0]:.6f} {-lv[1]:.6f} {lv[2]:.6f}")
    (folder / "lights.lp").write_text("\n".join(lines) + "\n")


def found(regions, mask, polarity):
    for r in regions:
        cx, cy = r.centroid
        if (
            r.polarity == polarity
            and mask[min(int(cy), mask.shape[0] - 1), min(int(cx), mask.shape[1] - 1)]
        ):
            return True
    return False


seed = int(sys.argv[1]) if len(sys.argv) > 1 else 21
painting = (
    sys.argv[2]
    if len(sys.argv) > 2
    else "../shared/paintings/vangogh_wheat_field_with_cypresses.jpg"
)
size = (320, 240)
spec = PairSpec(
    seed=seed,
    size=size,
    painting=painting if painting != "none" else None,
    kinds=("ridge", "bulge", "recession"),
    light_baseline=Light(180, 30),
    gloss=0.1,
)
truth = render_pair(spec)
ridge = [r for r in truth.regions if r.kind == "ridge"][0]
props = measure.regionprops(ridge.mask.astype(int))[0]
# skimage orientation: angle from the row axis to the major axis (x right, y down)
o = props.orientation
ax = (math.sin(o), math.cos(o))
theta = math.degrees(math.atan2(ax[1], ax[0]))
az_par = (-theta) % 360
lamps = ring(12, 30, az_par)
t = time.time()
cap = render_capture(spec, lamps)
print("render %.1fs" % (time.time() - t))
tmp = Path(tempfile.mkdtemp())
write_capture(tmp / "a", cap.before, cap.lights)
write_capture(tmp / "b", cap.after, cap.lights)
t = time.time()
cmp = compare_captures(tmp / "a", tmp / "b", device="cpu")
print("multilight compare %.1fs" % (time.time() - t))
masks = {r.kind: np.asarray(r.mask) for r in cap.regions}
print("truth:", [(r.kind, r.polarity) for r in cap.regions])
print(f"ridge axis {theta:.1f} deg (image), lamp parallel az {az_par:.1f}")
print(
    "multilight regions:",
    [
        (r.polarity, tuple(round(c) for c in r.centroid), round(r.significance, 1))
        for r in cmp.regions
    ],
)
row = (
    ["multilight (12 lamps)"]
    + [found(cmp.regions, masks[r.kind], r.polarity) for r in cap.regions]
    + [len(cmp.regions)]
)
rows = [row]
for k, name in ((0, "single lamp parallel to ridge"), (3, "single lamp 90 deg to ridge")):
    write_png(tmp / f"A{k}.png", cap.before[k])
    write_png(tmp / f"B{k}.png", cap.after[k])
    c = compare(tmp / f"A{k}.png", tmp / f"B{k}.png", light=lamps[k])
    rows.append(
        [name + f" (az {lamps[k].azimuth_deg:.0f})"]
        + [found(c.regions, masks[r.kind], r.polarity) for r in cap.regions]
        + [len(c.regions)]
    )
print("route | " + " | ".join(r.kind for r in cap.regions) + " | regions")
for r in rows:
    print(" | ".join(str(v) for v in r))

fig, axs = plt.subplots(1, 3, figsize=(15, 4))
h = cmp.change.height
v = np.nanpercentile(np.abs(h), 99.5)
axs[0].imshow(h, cmap="RdBu_r", vmin=-v, vmax=v)
axs[0].set_title("multilight change")
axs[1].imshow(h / cmp.change.noise_map, cmap="RdBu_r", vmin=-10, vmax=10)
axs[1].set_title("z")
axs[2].imshow(cap.height_change, cmap="RdBu_r")
axs[2].set_title("truth")
for r in cmp.regions:
    axs[1].plot(*r.centroid, "k+")
fig.savefig("/tmp/ml_ridge.png", dpi=80)
np.save("/tmp/ridge_h.npy", h)
