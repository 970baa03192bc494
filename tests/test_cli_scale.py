"""`monitor compare --scale auto`: full resolution, every scale, finds what the grid misses."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.cli import app
from monitor.synth import TRAIN_SEEDS, render_pair, small_damage_spec, write_pair

runner = CliRunner()


@pytest.fixture(scope="module")
def blister_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, float]:
    """A 1600 x 1000 scan of a 16 cm canvas with three 1.6-2 mm deformations."""
    cs = small_damage_spec(TRAIN_SEEDS[0] + 17, size=(1600, 1000), canvas_mm=160.0,
                           discoloration=False)
    spec = dataclasses.replace(cs.spec, kinds=("bulge", "recession", "bulge"),
                               size_range=(0.005, 0.006), slope_range=(0.1, 0.14))
    d = tmp_path_factory.mktemp("blisters")
    write_pair(render_pair(spec), d)
    return d, json.loads((d / "truth.json").read_text()), cs.px_per_mm


def _compare(d: Path, truth: dict, px_per_mm: float, out: Path, scale: str) -> dict:
    light = truth["light_baseline"]
    result = runner.invoke(app, [
        "compare", str(d / "baseline.png"), str(d / "current.png"), "--out", str(out),
        "--scale", scale, "--px-per-mm", str(px_per_mm),
        "--light-azimuth", str(light["azimuth_deg"]),
        "--light-elevation", str(light["elevation_deg"]),
    ])
    assert result.exit_code == 0, result.output
    return json.loads((out / "regions.json").read_text())


def _found(truth: dict, regions: list[dict]) -> list[dict | None]:
    out: list[dict | None] = []
    for t in truth["regions"]:
        x0, y0, x1, y1 = t["bbox"]
        g = max(3.0, 0.25 * (x1 - x0))
        hits = [r for r in regions
                if x0 - g <= r["centroid"][0] <= x1 + g and y0 - g <= r["centroid"][1] <= y1 + g]
        out.append(hits[0] if hits else None)
    return out


def test_scale_auto_finds_the_blisters_the_grid_misses(blister_pair, tmp_path: Path) -> None:
    d, truth, px_per_mm = blister_pair
    grid = _compare(d, truth, px_per_mm, tmp_path / "grid", "grid")
    auto = _compare(d, truth, px_per_mm, tmp_path / "auto", "auto")
    assert sum(h is not None for h in _found(truth, grid["regions"])) <= 1
    hits = _found(truth, auto["regions"])
    assert all(h is not None for h in hits), hits
    for t, h in zip(truth["regions"], hits, strict=True):
        assert h is not None and h["polarity"] == t["polarity"]
        assert h["scale_px"] >= 1 and h["level"] >= 0
        assert h["scale_mm"] == pytest.approx(h["scale_px"] / px_per_mm, rel=1e-3)
    assert auto["params"]["scale"] == "auto" and grid["params"]["scale"] == "grid"
    # the smallest detectable size, in baseline px and mm; the grid's is larger
    md, mg = auto["min_detectable"], grid["min_detectable"]
    assert md["mm"] == pytest.approx(md["px"] / px_per_mm, rel=1e-3)
    assert md["px"] < mg["px"]
    assert (tmp_path / "auto" / "heatmap.png").is_file()


def test_unknown_scale_is_one_line_error(blister_pair, tmp_path: Path) -> None:
    d, _, _ = blister_pair
    out = tmp_path / "out"
    result = runner.invoke(app, ["compare", str(d / "baseline.png"), str(d / "current.png"),
                                 "--out", str(out), "--scale", "fine"])
    assert result.exit_code != 0
    assert "--scale" in result.stderr and "auto, grid" in result.stderr
    assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_auto_is_the_default_and_a_method_without_a_multiscale_route_uses_the_grid(
    blister_pair, tmp_path: Path
) -> None:
    d, truth, px_per_mm = blister_pair
    light = truth["light_baseline"]
    args = ["compare", str(d / "baseline.png"), str(d / "current.png"),
            "--light-azimuth", str(light["azimuth_deg"]),
            "--light-elevation", str(light["elevation_deg"]), "--px-per-mm", str(px_per_mm)]
    default = runner.invoke(app, [*args, "--out", str(tmp_path / "p")])
    assert default.exit_code == 0, default.output
    doc = json.loads((tmp_path / "p" / "regions.json").read_text())
    assert doc["params"]["scale"] == "auto"
    assert all(h is not None for h in _found(truth, doc["regions"]))  # the blisters
    depth = runner.invoke(app, [*args, "--out", str(tmp_path / "d"), "--method", "depth"])
    assert depth.exit_code == 0, depth.output
    doc = json.loads((tmp_path / "d" / "regions.json").read_text())
    # depth has no multi-scale route: the grid, and its (larger) smallest size, say so
    assert doc["params"]["scale"] == "grid" and doc["method"].startswith("depth")
    assert doc["min_detectable"]["px"] == pytest.approx(0.004 * 1600, rel=1e-3)


def test_the_height_floor_setting_reaches_the_auto_route(blister_pair, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    d, truth, px_per_mm = blister_pair
    # a floor above every blister's height: nothing is reported, and the setting is recorded
    monkeypatch.setenv("MONITOR_FINE_MIN_HEIGHT_MM", "5")
    auto = _compare(d, truth, px_per_mm, tmp_path / "auto", "auto")
    assert auto["regions"] == []
    assert auto["params"]["fine_min_height_mm"] == 5.0
    monkeypatch.setenv("MONITOR_FINE_MIN_HEIGHT_MM", "-1")
    light = truth["light_baseline"]
    result = runner.invoke(app, [
        "compare", str(d / "baseline.png"), str(d / "current.png"), "--out", str(tmp_path / "x"),
        "--scale", "auto", "--light-azimuth", str(light["azimuth_deg"]),
    ])
    assert result.exit_code != 0 and "FINE_MIN_HEIGHT_MM" in result.output
    assert not (tmp_path / "x").exists()
