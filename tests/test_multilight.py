"""Multi-light captures: reader, photometric stereo, integration, change, mesh, topography."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import trimesh
from skimage import measure

from monitor.capture import load_capture, read_capture
from monitor.change.multilight import compare_captures
from monitor.depth.integrate import frankot_chellappa, integrate_normals, poisson
from monitor.depth.photometric_stereo import (
    angular_error_deg,
    normals_from_height,
    photometric_stereo,
)
from monitor.errors import MonitorError
from monitor.io import read_float_tiff, to_linear, write_png
from monitor.mesh import height_to_mesh, write_mesh
from monitor.pipeline import compare
from monitor.results import Capture, Light
from monitor.synth import PairSpec, render_pair
from monitor.synth_multilight import render_capture, ring
from monitor.topography import opposite_pair_relief, topography

SHARED = Path(__file__).resolve().parents[2] / "shared"
LEAVES = SHARED / "real" / "leaves12"
needs_leaves = pytest.mark.skipif(not (LEAVES / "lights.csv").is_file(),
                                  reason="../shared/real/leaves12 absent")


def _write_capture(folder: Path, images: np.ndarray, lights: np.ndarray) -> Path:
    """Write a capture as RTIBuilder does: PNGs and an .lp file (y up)."""
    folder.mkdir(parents=True)
    lines = [str(len(images))]
    for k, (img, lv) in enumerate(zip(images, lights, strict=True)):
        write_png(folder / f"l{k:02d}.png", img)
        lines.append(f"l{k:02d}.png {lv[0]:.6f} {-lv[1]:.6f} {lv[2]:.6f}")
    (folder / "capture.lp").write_text("\n".join(lines) + "\n")
    return folder


# --------------------------------------------------------------------------- reader


def _tiny_images(folder: Path, n: int, size: tuple[int, int] = (40, 32)) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for k in range(n):
        name = f"img{k}.png"
        write_png(folder / name, np.full((size[1], size[0], 3), 100 + k, np.uint8))
        names.append(name)
    return names


def test_reader_lp_flips_y_and_normalises(tmp_path: Path) -> None:
    names = _tiny_images(tmp_path, 3)
    (tmp_path / "a.lp").write_text(
        "3\n" + "\n".join(f"{n} 0 {2.0 * (k - 1)} 2" for k, n in enumerate(names)) + "\n"
    )
    cap = read_capture(tmp_path)
    assert cap.n_lights == 3 and cap.size == (40, 32)
    assert np.allclose(np.linalg.norm(cap.lights, axis=1), 1.0)
    # .lp y is up; monitor's y is down
    assert cap.lights[0, 1] > 0 and cap.lights[2, 1] < 0
    images = load_capture(cap)
    assert images.shape == (3, 32, 40, 3) and images.dtype == np.float32


def test_reader_csv_matches_light_convention(tmp_path: Path) -> None:
    names = _tiny_images(tmp_path, 3)
    rows = "\n".join(f"{n},{a},30" for n, a in zip(names, (0, 90, 200), strict=True))
    (tmp_path / "lights.csv").write_text("file,azimuth_deg,elevation_deg\n" + rows + "\n")
    cap = read_capture(tmp_path / "lights.csv")
    assert np.allclose(cap.lights[1], Light(90, 30).vector())


@pytest.mark.parametrize(
    ("lp", "fragment"),
    [
        ("4\n{0} 0 0 1\n{1} 1 0 1\n{2} 0 1 1\n", "header says 4"),
        ("3\n{0} 0 0 1\nmissing.png 1 0 1\n{2} 0 1 1\n", "not found"),
        ("3\n{0} 0 0 0\n{1} 1 0 1\n{2} 0 1 1\n", "zero"),
        ("3\n{0} 1 0 -0.2\n{1} 1 0 1\n{2} 0 1 1\n", "horizon"),
        ("3\n{0} a b c\n{1} 1 0 1\n{2} 0 1 1\n", "not numeric"),
        ("2\n{0} 0 0 1\n{1} 1 0 1\n", "needs 3"),
        ("3\n{0} 0 0 1\n{0} 1 0 1\n{2} 0 1 1\n", "twice"),
        ("three\n", "number of images"),
    ],
)
def test_reader_bad_lp(tmp_path: Path, lp: str, fragment: str) -> None:
    names = _tiny_images(tmp_path, 3)
    (tmp_path / "lights.lp").write_text(lp.format(*names))
    with pytest.raises(MonitorError, match=fragment) as info:
        read_capture(tmp_path)
    assert "\n" not in str(info.value)


def test_reader_bad_folders(tmp_path: Path) -> None:
    with pytest.raises(MonitorError, match="no such"):
        read_capture(tmp_path / "nowhere")
    names = _tiny_images(tmp_path / "a", 3)
    with pytest.raises(MonitorError, match="no light file"):
        read_capture(tmp_path / "a")
    (tmp_path / "a" / "x.lp").write_text("3\n" + "".join(f"{n} 0 0 1\n" for n in names))
    (tmp_path / "a" / "y.lp").write_text("3\n" + "".join(f"{n} 0 0 1\n" for n in names))
    with pytest.raises(MonitorError, match="several light files"):
        read_capture(tmp_path / "a")
    _tiny_images(tmp_path / "b", 2)
    write_png(tmp_path / "b" / "big.png", np.zeros((40, 50, 3), np.uint8))
    (tmp_path / "b" / "lights.lp").write_text(
        "3\nimg0.png 1 0 1\nimg1.png 0 1 1\nbig.png -1 0 1\n"
    )
    with pytest.raises(MonitorError, match="mixed image sizes"):
        read_capture(tmp_path / "b")
    (tmp_path / "b" / "lights.lp").unlink()
    (tmp_path / "b" / "lights.csv").write_text("file,azimuth\nimg0.png,3\n")
    with pytest.raises(MonitorError, match="missing column"):
        read_capture(tmp_path / "b")


# --------------------------------------------------------------------------- synthetic


@pytest.fixture(scope="module")
def glossy_dome() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A flat canvas with deformations under a 3-ring dome, glossy varnish."""
    lights = ring(6, 25) + ring(6, 45, 30) + ring(6, 65)
    spec = PairSpec(seed=11, size=(128, 96), impasto=0.0, weave_amplitude=0.0,
                    kinds=("bulge", "ridge", "recession"), size_range=(0.08, 0.12),
                    slope_range=(0.1, 0.2), gloss=0.3)
    cap = render_capture(spec, lights, before=False)
    return to_linear(cap.after), cap.lights, cap.height_change


def test_photometric_stereo_normals_and_height(
    glossy_dome: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    images, lights, truth = glossy_dome
    nm = photometric_stereo(images, lights)
    err = angular_error_deg(nm.normals, normals_from_height(truth))
    on = np.abs(truth) > 0.05 * np.abs(truth).max()
    assert np.median(err) <= 3.0 and np.median(err[on]) <= 3.0
    for method in ("fc", "poisson"):
        height = integrate_normals(nm.normals, nm.confidence, method=method)
        assert np.corrcoef(height.ravel(), truth.ravel())[0, 1] >= 0.95
    assert nm.albedo.shape == images.shape[1:]
    assert nm.confidence.min() >= 0 and nm.confidence.max() <= 1


def test_highlight_rejection_beats_plain_least_squares(
    glossy_dome: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    images, lights, truth = glossy_dome
    on = np.abs(truth) > 0.05 * np.abs(truth).max()
    tn = normals_from_height(truth)
    robust = photometric_stereo(images, lights)
    plain = photometric_stereo(images, lights, iterations=0, trim=1.0, shadow_frac=0.0,
                               saturation=2.0)
    e_robust = np.median(angular_error_deg(robust.normals, tn)[on])
    e_plain = np.median(angular_error_deg(plain.normals, tn)[on])
    assert robust.n_highlight[on].mean() > 0.2
    assert e_robust < 0.5 * e_plain


def test_photometric_stereo_bad_inputs() -> None:
    imgs = np.ones((3, 8, 8), np.float32)
    with pytest.raises(MonitorError, match="3 x 3|one per image"):
        photometric_stereo(imgs, np.ones((2, 3)))
    with pytest.raises(MonitorError, match="horizon"):
        photometric_stereo(imgs, np.array([[1, 0, 1], [0, 1, 1], [1, 1, -1.0]]))
    with pytest.raises(MonitorError, match="rank"):
        photometric_stereo(imgs, np.array([[1, 0, 1], [2, 0, 2], [3, 0, 3.0]]))
    with pytest.raises(MonitorError, match="float"):
        photometric_stereo(np.ones((3, 8, 8), np.uint8), np.eye(3) + 0.5)


def test_integrators_recover_a_bump() -> None:
    y, x = np.mgrid[0:64, 0:80].astype(np.float64)
    h = 5 * np.exp(-((x - 40) ** 2 + (y - 30) ** 2) / 80)
    gy, gx = np.gradient(h)
    for est in (frankot_chellappa(gx, gy), poisson(gx, gy)):
        assert np.corrcoef(est.ravel(), h.ravel())[0, 1] > 0.99
    with pytest.raises(MonitorError):
        poisson(gx, gy[:-1])


def _ridge_scene(size: tuple[int, int]) -> tuple[PairSpec, float]:
    spec = PairSpec(seed=21, size=size, kinds=("ridge",), size_range=(0.19, 0.2), impasto=0.0,
                    weave_amplitude=0.0,
                    slope_range=(0.03, 0.035), light_baseline=Light(180, 30))
    truth = render_pair(spec)
    props = measure.regionprops(truth.regions[0].mask.astype(int))[0]
    o = props.orientation  # skimage: major axis from the row axis
    theta = math.degrees(math.atan2(math.cos(o), math.sin(o)))  # image angle, y down
    return spec, (-theta) % 360.0  # lamp azimuth along the ridge axis


def test_ridge_along_a_lamp_found_by_multilight(tmp_path: Path) -> None:
    spec, az_par = _ridge_scene((160, 120))
    lamps = ring(8, 30, az_par)  # lamp 0 lies along the ridge, lamp 2 across it
    cap = render_capture(spec, lamps)
    mask = cap.regions[0].mask

    def hit(regions: tuple) -> bool:
        # found = a bulge over a good part of the ridge: a lamp along the ridge
        # still sees its rounded end caps, as small regions at the tips
        return any(r.polarity == "bulge" and mask[int(r.centroid[1]), int(r.centroid[0])]
                   and r.area_px >= 0.3 * mask.sum() for r in regions)

    a = _write_capture(tmp_path / "a", cap.before, cap.lights)
    b = _write_capture(tmp_path / "b", cap.after, cap.lights)
    multi = compare_captures(a, b, device="cpu")
    assert multi.change.method == "multilight" and hit(multi.regions)
    assert len(multi.regions) <= 2  # the ridge (maybe cut in two), no false alarms
    best_multi = max(r.significance for r in multi.regions if r.polarity == "bulge")
    single_z = {}
    for k in (0, 2):
        write_png(tmp_path / f"A{k}.png", cap.before[k])
        write_png(tmp_path / f"B{k}.png", cap.after[k])
        single = compare(tmp_path / f"A{k}.png", tmp_path / f"B{k}.png", light=lamps[k])
        single_z[k] = max((r.significance for r in single.regions if hit((r,))), default=0.0)
    print(f"ridge z: multilight {best_multi:.1f}, lamp along {single_z[0]:.1f}, "
          f"lamp across {single_z[2]:.1f}")
    # a lamp along a finite ridge reads it only through its rounded ends
    # (integrated along the lamp); the lamp across it and the capture read its flanks
    assert single_z[2] > 0
    assert single_z[0] < 0.6 * best_multi


# --------------------------------------------------------------------------- mesh / topography


def test_mesh_round_trip_units_and_budget(tmp_path: Path) -> None:
    y, x = np.mgrid[0:120, 0:200].astype(np.float32)
    height = 20 * np.exp(-((x - 100) ** 2 + (y - 60) ** 2) / 500)
    colours = np.zeros((120, 200, 3), np.uint8)
    colours[..., 0] = 200
    mesh = height_to_mesh(height, colours=colours, max_vertices=3000, px_per_mm=10.0)
    assert len(mesh.vertices) <= 3000
    for name in ("r.ply", "r.glb"):
        write_mesh(mesh, tmp_path / name)
        back = trimesh.load(tmp_path / name, force="mesh", process=False)
        assert len(back.vertices) == len(mesh.vertices) <= 3000
        lo, hi = back.bounds
        assert hi[0] - lo[0] == pytest.approx(20.0, abs=1.0)  # 200 px at 10 px/mm
        assert hi[1] - lo[1] == pytest.approx(12.0, abs=1.0)
        assert hi[2] - lo[2] == pytest.approx(2.0, abs=0.2)  # 20 px high = 2 mm
    with pytest.raises(MonitorError, match="suffix|.ply or .glb"):
        write_mesh(mesh, tmp_path / "r.obj")


def test_topography_writes_every_file(tmp_path: Path) -> None:
    spec = PairSpec(seed=4, size=(96, 64), impasto=0.0, weave_amplitude=0.0,
                    kinds=("bulge",), size_range=(0.15, 0.2), slope_range=(0.1, 0.15))
    cap = render_capture(spec, ring(6, 35), before=False)
    folder = _write_capture(tmp_path / "cap", cap.after, cap.lights)
    topo = topography(folder, tmp_path / "out", max_vertices=2000, px_per_mm=4.0)
    for path in topo.files.values():
        assert Path(path).is_file()
    height = read_float_tiff(topo.files["height.tif"])
    assert height.shape == (64, 96)
    assert np.corrcoef(height.ravel(), cap.height_change.ravel())[0, 1] > 0.9
    mesh = trimesh.load(topo.files["relief.glb"], force="mesh", process=False)
    assert len(mesh.vertices) == topo.n_vertices <= 2000
    with pytest.raises(MonitorError):
        topography(tmp_path / "nothing", tmp_path / "out2")
    assert not (tmp_path / "out2").exists()


# --------------------------------------------------------------------------- real: leaves12


@pytest.fixture(scope="module")
def leaves() -> tuple[Capture, np.ndarray]:
    cap = read_capture(LEAVES)
    return cap, load_capture(cap)


@needs_leaves
def test_leaves_normals_agree_with_the_nominal_lamps(leaves: tuple[Capture, np.ndarray]) -> None:
    cap, images = leaves
    nm = photometric_stereo(images, cap.lights)
    ok = nm.confidence > 0.2
    assert ok.mean() > 0.1
    grey = images.mean(axis=3)
    rho = nm.albedo.mean(axis=2)
    for k in range(cap.n_lights):
        rendered = rho * np.clip(nm.normals @ cap.lights[k], 0, None)
        assert np.corrcoef(rendered[ok], grey[k][ok])[0, 1] > 0.85


@needs_leaves
def test_leaves_opposite_pair_relief_matches_twelve_in_sign(
    leaves: tuple[Capture, np.ndarray], tmp_path: Path
) -> None:
    cap, images = leaves
    topo = topography(cap, tmp_path / "topo", max_vertices=20_000)
    b = 40  # the borders rise (lamps at a finite distance, clipped paper): interior only
    inner = topo.height[b:-b, b:-b]
    for i in range(6):
        pair = opposite_pair_relief(images[i], images[i + 6], cap.lights[i], cap.lights[i + 6])
        assert np.corrcoef(pair[b:-b, b:-b].ravel(), inner.ravel())[0, 1] > 0.3


@needs_leaves
def test_leaves_odd_and_even_lamps_show_no_change(leaves: tuple[Capture, np.ndarray]) -> None:
    cap, _ = leaves

    def sub(idx: range) -> Capture:
        return Capture(paths=tuple(cap.paths[i] for i in idx), lights=cap.lights[list(idx)],
                       source=cap.source, size=cap.size)

    result = compare_captures(sub(range(0, 12, 2)), sub(range(1, 12, 2)), device="cpu")
    assert result.regions == ()
    assert np.isfinite(result.change.noise_sigma) and result.change.noise_sigma > 0
