"""'Cannot see' and 'identical' are outcomes; an absolute floor on the level of detection (#16).

* A comparison whose overlap is mostly clipped, masked or too dark is flagged
  ``insufficient`` with the usable fraction (Comparison, regions.json, the
  stored params), never reported as 0 regions without a word.
* Two files with the same pixels give status ``identical`` and say so.
* ``Settings.min_height_change`` (baseline pixel pitch) floors the level of
  detection: resampling residue of near-identical scans is not a finding.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from monitor import synth
from monitor.change.methods import photometric_change
from monitor.config import Settings
from monitor.io import to_linear
from monitor.pipeline import compare, summary, write_outputs
from monitor.regions import find_regions
from monitor.results import ChangeMap, Light

SHARED = Path(__file__).resolve().parents[2] / "shared"
LEAVES = SHARED / "real" / "leaves12"


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("outcomes")
    pair = synth.render_pair(synth.sample_spec(3, size=(480, 360)))
    Image.fromarray(pair.baseline).save(d / "a.png")
    Image.fromarray(pair.current).save(d / "b.png")
    over = np.clip(to_linear(pair.current) * 12.0, 0, 1)  # over-exposed: ~93 % clipped
    enc = np.where(over <= 0.0031308, 12.92 * over, 1.055 * over ** (1 / 2.4) - 0.055)
    Image.fromarray((enc * 255 + 0.5).astype(np.uint8)).save(d / "over.png")
    return d


def test_a_clipped_baseline_cannot_be_read_and_the_change_map_says_so() -> None:
    rng = np.random.default_rng(0)
    cur = (0.3 + 0.2 * rng.random((64, 80, 3))).astype(np.float32)
    clipped = np.ones_like(cur)  # every pixel over-exposed
    change = photometric_change(clipped, cur, np.ones((64, 80), bool), Light())
    assert change.usable_fraction == 0.0
    # a readable pair: all but the 3 px margin the overlap is eroded by
    assert photometric_change(cur, cur, np.ones((64, 80), bool), Light()).usable_fraction > 0.8


@pytest.mark.parametrize("scale", ["auto", "grid"])
def test_mostly_clipped_current_is_insufficient_everywhere_it_is_reported(
    scans: Path, tmp_path: Path, scale: str
) -> None:
    c = compare(scans / "a.png", scans / "over.png", Settings(device="cpu", scale=scale))
    assert c.params["scale"] == scale
    assert c.status == "insufficient"
    assert c.change.usable_fraction < Settings().min_usable_fraction
    assert c.warnings and "cannot tell" in c.warnings[0]
    assert c.params["status"] == "insufficient"  # the store keeps params with the row
    files = write_outputs(c, tmp_path / "out")
    doc = json.loads(files["regions.json"].read_text())
    assert doc["status"] == "insufficient" and doc["usable_fraction"] < 0.25
    assert "cannot tell" in doc["message"]
    normal = compare(scans / "a.png", scans / "b.png", Settings(device="cpu", scale=scale))
    assert normal.status == "ok" and normal.change.usable_fraction > 0.9


def test_the_same_pixels_are_identical_said_plainly(scans: Path, tmp_path: Path) -> None:
    img = cv2.imread(str(scans / "a.png"), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(tmp_path / "a16.png"), img.astype(np.uint16) * 257)
    # another file, another format, the same pixels
    cv2.imwrite(str(tmp_path / "copy16.tif"), img.astype(np.uint16) * 257)
    c = compare(tmp_path / "a16.png", tmp_path / "copy16.tif", Settings(device="cpu"))
    assert c.status == "identical" and c.regions == ()
    doc = summary(c)
    assert doc["message"].startswith("no change: the two scans are identical")
    assert doc["counts"] == {"bulge": 0, "recession": 0, "appearance": 0}
    write_outputs(c, tmp_path / "out")  # every output file still written


def test_floor_of_the_level_of_detection_in_find_regions() -> None:
    y, x = np.mgrid[0:120, 0:160]
    dip = -0.002 * np.exp(-((x - 80) ** 2 + (y - 60) ** 2) / (2 * 8.0**2))
    noise = np.random.default_rng(1).normal(scale=5e-5, size=dip.shape)
    change = ChangeMap(height=(dip + noise).astype(np.float32), scale=1.0, method="photometric",
                       noise_sigma=5e-5)
    assert len(find_regions(change)) == 1  # 40 sigmas of a quiet map: "significant"
    assert find_regions(change, min_height=0.05) == ()  # but 0.002 px is below the floor
    big = ChangeMap(height=(100 * dip + noise).astype(np.float32), scale=1.0,
                    method="photometric", noise_sigma=5e-5)
    assert len(find_regions(big, min_height=0.05)) == 1  # 0.2 px is above it
    assert Settings().min_height_change > 0


@pytest.mark.skipif(not LEAVES.is_dir(), reason="needs ../shared/real/leaves12")
def test_near_identical_real_16_bit_photographs_give_no_region(tmp_path: Path) -> None:
    photo = cv2.imread(str(LEAVES / "1_TL.png"), cv2.IMREAD_UNCHANGED)[..., :3]
    b16 = photo.astype(np.uint16) * 257
    rng = np.random.default_rng(0)
    cur = np.clip(b16.astype(np.int32) + rng.integers(-1, 2, b16.shape), 0, 65535)
    cv2.imwrite(str(tmp_path / "a.png"), b16)
    cv2.imwrite(str(tmp_path / "b.png"), cur.astype(np.uint16))  # +-1 of 65535
    # the floor is under test here, not the estimator: the lamp the figure below was
    # measured with (the former default, 180 / 30 deg), given
    lamp = {"light_azimuth": "180", "light_elevation": 30.0}
    # the grid's floor (min_height_change); the multi-scale route has its own
    without = compare(tmp_path / "a.png", tmp_path / "b.png",
                      Settings(device="cpu", min_height_change=0.0, scale="grid", **lamp))
    assert len(without.regions) >= 1  # measured: 2 "recessions" of 0.002 px
    floored = compare(tmp_path / "a.png", tmp_path / "b.png",
                      Settings(device="cpu", scale="grid", **lamp))
    assert floored.regions == () and floored.status == "ok"
    every_scale = compare(tmp_path / "a.png", tmp_path / "b.png", Settings(device="cpu", **lamp))
    assert every_scale.params["scale"] == "auto"
    assert every_scale.regions == () and every_scale.status == "ok"


def test_cli_exits_3_with_a_warning_when_it_cannot_tell_and_says_identical(
    scans: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from monitor.cli import app
    from monitor.cli.compare import INSUFFICIENT_EXIT

    runner = CliRunner()
    bad = runner.invoke(app, ["compare", str(scans / "a.png"), str(scans / "over.png"),
                              "--out", str(tmp_path / "bad"), "--device", "cpu"])
    assert bad.exit_code == INSUFFICIENT_EXIT == 3, bad.output
    assert "warning: insufficient" in bad.stderr and "cannot tell" in bad.stderr
    assert (tmp_path / "bad" / "regions.json").is_file()  # what could be seen is written
    same = runner.invoke(app, ["compare", str(scans / "a.png"), str(scans / "a.png"),
                               "--out", str(tmp_path / "same"), "--device", "cpu"])
    assert same.exit_code == 0
    assert same.stdout.startswith("no change: the two scans are identical")


@pytest.mark.skipif(not LEAVES.is_dir(), reason="needs ../shared/real/leaves12")
def test_unchanged_real_surface_under_neighbouring_lamps_gives_at_most_the_measured_alarm() -> None:
    """Real photographs, lamp moved 30 degrees, nothing changed: the README says no region.

    Measured over all 12 neighbouring pairs (photometric, nominal lamp of the
    baseline): on the grid 1 false region (3_TL -> 4_TL, a recession of 7.3 px
    at z 6), before and after the floor -- the floor does not touch it (noise
    there is 1-3 px); at every scale (the default) 0, and 5 before candidates
    steeper than ``max_slope`` were dropped (19-30 px^2 "bulges" of 3-10 px at
    the native level: cast shadows that moved with the lamp; ``python
    bench/leaves_false_alarms.py``). ``--method pair``: 10 false regions over
    the 12 pairs. Four pairs are run here,
    including the ones that alarmed (3 regions at every scale without the slope
    limit, 1 on the grid).
    """
    import csv

    rows = list(csv.DictReader((LEAVES / "lights.csv").open()))
    found = {"auto": 0, "grid": 0}
    for i in (0, 2, 5, 8):
        a, b = rows[i], rows[i + 1]
        for scale in found:
            c = compare(LEAVES / a["file"], LEAVES / b["file"],
                        Settings(device="cpu", scale=scale),
                        light=Light(float(a["azimuth_deg"]), float(a["elevation_deg"])))
            assert c.status == "ok" and c.params["scale"] == scale
            found[scale] += len(c.regions)
    assert found["auto"] == 0 and found["grid"] <= 1, found


def test_the_floor_and_the_usable_minimum_are_validated_settings() -> None:
    from monitor.config import load_settings
    from monitor.errors import MonitorError

    assert load_settings({"MONITOR_MIN_HEIGHT_CHANGE": "0.1"}).min_height_change == 0.1
    with pytest.raises(MonitorError, match="MONITOR_MIN_HEIGHT_CHANGE"):
        load_settings({"MONITOR_MIN_HEIGHT_CHANGE": "-1"})
    with pytest.raises(MonitorError, match="MONITOR_MIN_USABLE_FRACTION"):
        load_settings({"MONITOR_MIN_USABLE_FRACTION": "1.5"})


@pytest.mark.parametrize("scale", ["auto", "grid"])
def test_progress_says_done_once_after_every_stage(scans: Path, scale: str) -> None:
    seen: list[tuple[str, float]] = []
    c = compare(scans / "a.png", scans / "b.png", Settings(device="cpu", scale=scale),
                progress=lambda name, frac: seen.append((name, frac)))
    assert [n for n, _ in seen].count("done") == 1 and seen[-1] == ("done", 1.0)
    fractions = [f for _, f in seen]
    assert fractions == sorted(fractions) and max(fractions) == 1.0
    # every pipeline stage announced, then done (the multi-scale sub-stages ms_* are not)
    assert len(seen) == len([t for t in c.timings if "_" not in t.name]) + 1
