"""leaves12: 12-lamp relief vs the relief of each opposite pair (README promise)."""

import matplotlib
import numpy as np

matplotlib.use("Agg")
import shutil

import matplotlib.pyplot as plt
import trimesh
from PIL import Image

from monitor.capture import load_capture, read_capture
from monitor.topography import opposite_pair_relief, topography

shutil.rmtree("/tmp/leaves_topo", ignore_errors=True)
t = topography("../shared/real/leaves12", "/tmp/leaves_topo", max_vertices=60000)
cap = read_capture("../shared/real/leaves12")
im = load_capture(cap)
h12 = t.height
for i in range(6):
    j = i + 6
    hp = opposite_pair_relief(im[i], im[j], cap.lights[i], cap.lights[j])
    c = np.corrcoef(hp.ravel(), h12.ravel())[0, 1]
    print(f"pair {i + 1}&{j + 1}: corr with 12-lamp relief {c:.3f}")
# leaves raised vs paper: albedo-based mask (paper = bright, low saturation)
mean = im.mean(0)
sat = mean.max(-1) - mean.min(-1)
paper = (mean.mean(-1) > 0.6) & (sat < 0.12)
print(
    f"median height paper {np.median(h12[paper]):.2f} px, "
    f"non-paper {np.median(h12[~paper]):.2f} px; paper robust spread "
    f"{1.4826 * np.median(np.abs(h12[paper] - np.median(h12[paper]))):.2f}"
)
m = trimesh.load("/tmp/leaves_topo/relief.ply", process=False)
fig = plt.figure(figsize=(16, 6))
ax = fig.add_subplot(1, 2, 1)
ax.imshow(Image.open("/tmp/leaves_topo/height_heatmap.png"))
ax.axis("off")
ax = fig.add_subplot(1, 2, 2, projection="3d")
v = m.vertices
f = m.faces[::3]
ax.plot_trisurf(
    v[:, 0],
    v[:, 1],
    v[:, 2] * 3,
    triangles=f,
    color=None,
    cmap="terrain",
    linewidth=0,
    antialiased=False,
)
ax.view_init(elev=35, azim=-70)
ax.set_box_aspect((500, 333, 60))
ax.set_title("relief.ply (z x3)")
fig.tight_layout()
fig.savefig("/tmp/leaves_final.png", dpi=70)
b = 40
for i in range(6):
    j = i + 6
    hp = opposite_pair_relief(im[i], im[j], cap.lights[i], cap.lights[j])
    c = np.corrcoef(hp[b:-b, b:-b].ravel(), h12[b:-b, b:-b].ravel())[0, 1]
    print(f"interior (40 px border dropped) pair {i + 1}&{j + 1}: corr {c:.3f}")
