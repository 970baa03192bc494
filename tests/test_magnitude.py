"""Heights in pixel units, measured: recovered peaks against the rendered truth (#16).

The README promises height changes in baseline pixel-pitch units for
``photometric``, ``pair`` and the ``depth`` route with the shading estimator.
Each is run here on the sample pair (through the CLI for ``photometric`` and
``pair``) and every planted region's recovered peak is divided by its true
peak. Measured on the sample pair (1280 x 960, seed 1):

* ``pair``: 0.97-1.03 of the truth -- the promise holds (tolerance +-15 %);
* ``photometric``: 0.67-0.70 on the grid (``--scale grid``), 0.58-0.70 at
  every scale (the default; each region's peak read over its own and the next
  three coarser levels -- its own level alone gave 0.24-0.63) -- heights come out
  about 30 % LOW (known under-estimate; the band guards it from drifting either
  way until fixed);
* ``depth`` + ``shading``: 0.63-0.80 -- also low, and noisier.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from monitor.cli import app
from monitor.config import Settings
from monitor.pipeline import compare
from monitor.results import Light

runner = CliRunner()

#: Accepted band of recovered/true peak per method (see the module docstring).
BANDS = {"pair": (0.85, 1.15), "photometric": (0.55, 0.85), "depth": (0.5, 0.9)}


def _light(sample_dir: Path) -> Light:
    lb = json.loads((sample_dir / "truth.json").read_text())["light_baseline"]
    return Light(lb["azimuth_deg"], lb["elevation_deg"])


def _cli(sample_dir: Path, out: Path, method: str, scale: str = "auto") -> dict:
    light = _light(sample_dir)
    result = runner.invoke(app, [
        "compare", str(sample_dir / "baseline.png"), str(sample_dir / "current.png"),
        "--out", str(out), "--method", method, "--device", "cpu", "--scale", scale,
        "--light-azimuth", str(light.azimuth_deg), "--light-elevation",
        str(light.elevation_deg), "--json",
    ])
    assert result.exit_code == 0, result.output
    return json.loads((out / "regions.json").read_text())


def _ratios(sample_dir: Path, regions: list[dict]) -> list[float]:
    """Recovered / true peak of every planted region (each must be found, right sign)."""
    truth = json.loads((sample_dir / "truth.json").read_text())["regions"]
    ratios = []
    for t in truth:
        near = [r for r in regions if np.hypot(r["centroid"][0] - t["centroid"][0],
                                               r["centroid"][1] - t["centroid"][1])
                < 0.5 * t["size_px"]]
        assert near, f"planted {t['polarity']} at {t['centroid']} not found"
        assert near[0]["polarity"] == t["polarity"]
        ratios.append(near[0]["peak"] / t["peak"])
    return ratios


def test_pair_method_through_the_cli_finds_every_change_at_its_true_height(
    sample_dir: Path, tmp_path: Path
) -> None:
    # the grid route's figure (the pair net at every scale is measured in
    # docs/pair-multiscale.md); its provenance is checked in test_pair_multiscale
    summary = _cli(sample_dir, tmp_path / "pair", "pair", "grid")
    assert summary["method"] == "pair" and summary["model_id"].startswith("monitor/pair-")
    assert summary["units"].startswith("baseline pixel pitch")
    assert len(summary["weights_sha256"]) == 64
    ratios = _ratios(sample_dir, summary["regions"])
    lo, hi = BANDS["pair"]
    assert all(lo <= q <= hi for q in ratios), ratios
    assert len(summary["regions"]) == len(ratios)  # nothing else (the stain is not relief)


@pytest.mark.parametrize("scale", ["auto", "grid"])
def test_photometric_heights_are_within_the_measured_band(
    sample_dir: Path, tmp_path: Path, scale: str
) -> None:
    summary = _cli(sample_dir, tmp_path / "photo", "photometric", scale)
    assert summary["params"]["scale"] == scale
    ratios = _ratios(sample_dir, summary["regions"])
    lo, hi = BANDS["photometric"]
    assert all(lo <= q <= hi for q in ratios), ratios


def test_depth_route_with_shading_heights_are_within_the_measured_band(
    sample_dir: Path,
) -> None:
    c = compare(sample_dir / "baseline.png", sample_dir / "current.png",
                Settings(method="depth", depth="shading", device="cpu"),
                light=_light(sample_dir))
    ratios = _ratios(sample_dir, [r.to_dict() for r in c.regions])
    lo, hi = BANDS["depth"]
    assert all(lo <= q <= hi for q in ratios), ratios
    assert np.median(ratios) == pytest.approx(0.7, abs=0.15)
