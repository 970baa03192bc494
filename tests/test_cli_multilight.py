"""``monitor topography`` and ``monitor compare`` on multi-light captures, through the CLI."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import trimesh
from skimage import measure
from typer.testing import CliRunner

from monitor.cli import app
from monitor.io import read_float_tiff, write_png
from monitor.results import Light
from monitor.synth import PairSpec, render_pair
from monitor.synth.multilight import render_capture, ring

runner = CliRunner()


def _write_capture(folder: Path, images: np.ndarray, lights: np.ndarray) -> Path:
    """PNGs and an RTIBuilder ``.lp`` file (y up)."""
    folder.mkdir(parents=True)
    lines = [str(len(images))]
    for k, (img, lv) in enumerate(zip(images, lights, strict=True)):
        write_png(folder / f"l{k:02d}.png", img)
        lines.append(f"l{k:02d}.png {lv[0]:.6f} {-lv[1]:.6f} {lv[2]:.6f}")
    (folder / "capture.lp").write_text("\n".join(lines) + "\n")
    return folder


def _one_line_error(result) -> str:  # noqa: ANN001 - click's Result
    assert result.exit_code != 0
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


@pytest.fixture(scope="module")
def bulge_capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    spec = PairSpec(seed=4, size=(120, 80), impasto=0.0, weave_amplitude=0.0,
                    kinds=("bulge",), size_range=(0.15, 0.2), slope_range=(0.1, 0.15))
    cap = render_capture(spec, ring(6, 35), before=False)
    return _write_capture(tmp_path_factory.mktemp("cap") / "cap", cap.after, cap.lights), cap


def test_topography_cli_writes_relief_and_a_mesh_in_mm(
    bulge_capture: tuple[Path, object], tmp_path: Path
) -> None:
    folder, cap = bulge_capture
    out = tmp_path / "topo"
    res = runner.invoke(app, ["topography", str(folder), "--out", str(out), "--px-per-mm", "4",
                              "--max-vertices", "1500", "--z-scale", "2", "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["source"] == "multilight" and info["n_lights"] == 6
    for name in ("height_heatmap.png", "height.tif", "normals.png", "relief.ply", "relief.glb",
                 "topography.json"):
        assert (out / name).is_file(), name
    height = read_float_tiff(out / "height.tif")
    assert height.shape == (80, 120)
    assert np.corrcoef(height.ravel(), cap.height_change.ravel())[0, 1] > 0.9
    meta = json.loads((out / "topography.json").read_text())
    assert meta["mesh_units"] == "mm" and meta["n_lights"] == 6
    for name in ("relief.ply", "relief.glb"):
        mesh = trimesh.load(out / name, force="mesh", process=False)
        assert len(mesh.vertices) == info["mesh_vertices"] <= 1500
        lo, hi = mesh.bounds
        assert hi[0] - lo[0] == pytest.approx(120 / 4, rel=0.05)  # 120 px at 4 px/mm
        assert hi[1] - lo[1] == pytest.approx(80 / 4, rel=0.05)
        # the bulge's true height in mm, exaggerated twice (decimation lowers the peak a bit)
        true_mm = 2 * float(np.ptp(cap.height_change)) / 4
        assert 0.6 * true_mm < hi[2] - lo[2] < 1.4 * true_mm


def test_topography_cli_one_photo_with_its_lamp(tmp_path: Path) -> None:
    spec = PairSpec(seed=5, size=(96, 64), light_baseline=Light(180, 30))
    photo = tmp_path / "photo.png"
    write_png(photo, render_pair(spec).baseline)
    out = tmp_path / "t"
    res = runner.invoke(app, ["topography", str(photo), "--out", str(out),
                              "--light-azimuth", "180", "--max-vertices", "500", "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["source"] == "shading" and info["n_lights"] == 1
    assert info["mesh_vertices"] <= 500
    meta = json.loads((out / "topography.json").read_text())
    assert meta["light"] == {"azimuth_deg": 180.0, "elevation_deg": 30.0, "estimated": False}
    assert "paint is read as relief" in meta["height_units"]


def test_topography_cli_bad_input_is_one_line_and_writes_nothing(
    bulge_capture: tuple[Path, object], tmp_path: Path
) -> None:
    folder, _ = bulge_capture
    flat = tmp_path / "flat.png"
    write_png(flat, np.full((64, 96, 3), 120, np.uint8))
    cases = [
        ([str(tmp_path / "nothing"), "--out", str(tmp_path / "o1")], "no such"),
        ([str(folder), "--out", str(tmp_path / "o2"), "--depth", "shading"], "one photograph"),
        ([str(folder), "--out", str(tmp_path / "o3"), "--max-vertices", "2"], "max-vertices"),
        ([str(folder), "--out", str(tmp_path / "o4"), "--px-per-mm", "-1"], "px-per-mm"),
        ([str(flat), "--out", str(tmp_path / "o5")], "could not tell the lamp"),
        ([str(flat), "--out", str(tmp_path / "o6"), "--depth", "relief"], "--depth"),
    ]
    for k, (args, fragment) in enumerate(cases, start=1):
        line = _one_line_error(runner.invoke(app, ["topography", *args]))
        assert fragment in line, line
        assert not (tmp_path / f"o{k}").exists()
    assert not any(p.name.startswith(".o") for p in tmp_path.iterdir())  # no temp folder left


def _ridge_captures(tmp_path: Path) -> tuple[Path, Path, np.ndarray, list[Light], object]:
    spec = PairSpec(seed=21, size=(160, 120), impasto=0.0, weave_amplitude=0.0,
                    kinds=("ridge",), size_range=(0.19, 0.2), slope_range=(0.03, 0.035),
                    light_baseline=Light(180, 30))
    truth = render_pair(spec)
    o = measure.regionprops(truth.regions[0].mask.astype(int))[0].orientation
    az_par = (-math.degrees(math.atan2(math.cos(o), math.sin(o)))) % 360.0
    lamps = ring(8, 30, az_par)
    cap = render_capture(spec, lamps)
    a = _write_capture(tmp_path / "a", cap.before, cap.lights)
    b = _write_capture(tmp_path / "b", cap.after, cap.lights)
    return a, b, cap.regions[0].mask, lamps, cap


def test_compare_cli_two_captures_and_capture_with_photo(tmp_path: Path) -> None:
    a, b, mask, lamps, cap = _ridge_captures(tmp_path)
    out = tmp_path / "cmp"
    res = runner.invoke(app, ["compare", str(a), str(b), "--out", str(out), "--device", "cpu",
                              "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["method"] == "multilight"
    assert info["params"]["n_lights_baseline"] == info["params"]["n_lights_current"] == 8
    assert info["units"].startswith("baseline pixel pitch")
    regions = json.loads((out / "regions.json").read_text())["regions"]
    assert any(r["polarity"] == "bulge" and mask[int(r["centroid"][1]), int(r["centroid"][0])]
               for r in regions), regions
    assert (out / "change.tif").is_file()

    # the capture against one photo: its image under the photo's lamp stands in
    photo = tmp_path / "photo.png"
    write_png(photo, cap.after[2])
    lamp = lamps[2]
    res = runner.invoke(app, ["compare", str(a), str(photo), "--out", str(tmp_path / "c2"),
                              "--light-azimuth", f"{lamp.azimuth_deg}", "--light-elevation",
                              f"{lamp.elevation_deg}", "--json"])
    assert res.exit_code == 0, res.output
    params = json.loads(res.output)["params"]
    assert Path(params["multilight_stand_in"]).name == "l02.png"
    assert params["multilight_lamp_offset_deg"] < 0.5 and params["multilight_side"] == "baseline"
    # no lamp of the capture near the photo's: refused in one line, nothing written
    line = _one_line_error(runner.invoke(app, [
        "compare", str(a), str(photo), "--out", str(tmp_path / "c3"),
        "--light-azimuth", f"{lamp.azimuth_deg}", "--light-elevation", "80"]))
    assert "no lamp within" in line
    assert not (tmp_path / "c3").exists()
    line = _one_line_error(runner.invoke(app, ["compare", str(a), str(b)]))
    assert "--out" in line


def test_store_ingests_lists_and_compares_multilight_scans(tmp_path: Path) -> None:
    a, b, mask, _lamps, _cap = _ridge_captures(tmp_path)
    home = tmp_path / "home"

    def ok(*args: str) -> object:
        res = runner.invoke(app, [*args, "--home", str(home), "--json"])
        assert res.exit_code == 0, res.output
        return json.loads(res.output)

    ok("init")
    ok("artwork", "add", "w", "--title", "Ridge")
    first = ok("ingest", "w", str(a), "--captured-at", "2024-01-01")
    assert first["created"] and first["scan"]["n_lights"] == 8
    assert first["scan"]["path"].endswith(".lp")
    again = ok("ingest", "w", str(a / "capture.lp"))
    assert not again["created"] and again["scan"]["id"] == first["scan"]["id"]
    ok("ingest", "w", str(b), "--captured-at", "2025-01-01")
    objects = [p for p in (home / "objects").rglob("*") if p.is_file()]
    # 8 + 8 images (each content-addressed), the light file (the same .lp both times)
    # and a manifest per scan
    assert len([p for p in objects if p.suffix == ".png"]) == 16
    assert len([p for p in objects if p.suffix == ".lp"]) == 3
    scans = ok("artwork", "scans", "w")
    assert [s["n_lights"] for s in scans] == [8, 8]
    ok("gc", "--min-age-s", "0")  # nothing of a stored capture is garbage
    assert sorted((home / "objects").rglob("*.png")) == sorted(p for p in objects
                                                            if p.suffix == ".png")
    # a stored manifest reads back as the capture it came from
    from monitor.capture import read_capture

    back = read_capture(scans[0]["path"])
    orig = read_capture(a)
    assert np.allclose(back.lights, orig.lights, atol=1e-6) and back.size == orig.size
    cmp = runner.invoke(app, ["compare", "w", "--home", str(home), "--json"])
    assert cmp.exit_code == 0, cmp.output
    info = json.loads(cmp.output)
    assert any(r["polarity"] == "bulge" and mask[int(r["centroid"][1]), int(r["centroid"][0])]
               for r in info["regions"]), info["regions"]
    assert "normals.png" in info["artifacts"]
    # the report shows the normal map and the lamps (its HTML, then the PDF written)
    from monitor.report.render import _figures, _stored_summary, build_context, render_html
    from monitor.store import db, repository

    store = db.open_store(home)
    detail = repository.comparison_detail(store, info["comparison_id"])
    stored = _stored_summary(store, detail)
    figs, extra = _figures(store, detail, repository.history(store, "w"), tmp_path, stored)
    assert figs["normals"] is not None and figs["baseline_thumb"] is not None
    html = render_html(build_context(detail, repository.history(store, "w"), figs,
                                     datetime.now(UTC), extra))
    assert "Normal map of the baseline" in html and "from 8 lamps" in html
    assert "multi-light, 8 lamps" in html
    rep = runner.invoke(app, ["report", "w", "--latest", "-o", str(tmp_path / "r.pdf"),
                              "--home", str(home)])
    assert rep.exit_code == 0, rep.output
    assert (tmp_path / "r.pdf").stat().st_size > 10_000
    assert runner.invoke(app, ["verify", "--home", str(home)]).exit_code == 0
    victim = sorted((home / "objects").rglob("*.png"))[0]  # one photograph of a capture
    victim.chmod(0o644)
    victim.write_bytes(victim.read_bytes() + b"x")
    res = runner.invoke(app, ["verify", "--home", str(home), "--json"])
    assert res.exit_code != 0 and "hash mismatch" in res.output and "image" in res.output
    bad = runner.invoke(app, ["ingest", "w", str(a), "--light-azimuth", "90", "--home",
                              str(home)])
    assert "one lamp per image" in _one_line_error(bad)
