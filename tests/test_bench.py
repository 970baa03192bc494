"""Tests of the benchmark's metrics, baselines and a smoke run (bench/)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import benchmark as bm  # noqa: E402
from bench.baselines import naive_change, sift_homography  # noqa: E402
from monitor import synth  # noqa: E402
from monitor.change.methods import METHODS  # noqa: E402
from monitor.config import Settings  # noqa: E402
from monitor.errors import MonitorError  # noqa: E402
from monitor.registration import corner_error  # noqa: E402


def _labels() -> np.ndarray:
    """100 x 80 labels: region 1 (bulge) cols 10-29 rows 10-29, region 2 (recession)
    cols 50-69 rows 10-29, discoloration cols 10-39 rows 50-69."""
    lab = np.zeros((80, 100), np.uint8)
    lab[10:30, 10:30] = 1
    lab[10:30, 50:70] = 2
    lab[50:70, 10:40] = 255
    return lab


POL = {1: "bulge", 2: "recession"}


# --------------------------------------------------------------------------- matching


def test_score_regions_sorts_every_prediction_into_one_category() -> None:
    preds = [
        ("bulge", (20.0, 20.0)),  # found region 1
        ("bulge", (12.5, 28.5)),  # second one on region 1: duplicate
        ("bulge", (60.0, 20.0)),  # on region 2 but wrong polarity
        ("recession", (20.0, 60.0)),  # on the discoloration
        ("bulge", (90.0, 70.0)),  # on nothing
        ("recession", (-5.0, 3.0)),  # outside the image: on nothing
    ]
    s = bm.score_regions(preds, _labels(), POL)
    assert (s.n_truth, s.n_pred) == (2, 6)
    assert (s.matched, s.duplicates, s.wrong_polarity) == (1, 1, 1)
    assert (s.fa_discoloration, s.fa_other, s.false_alarms) == (1, 2, 3)
    assert s.found_any_polarity == 2
    assert s.recall == pytest.approx(0.5)
    assert s.precision == pytest.approx(1 / 6)
    assert s.f1 == pytest.approx(2 * 0.5 * (1 / 6) / (0.5 + 1 / 6))


def test_score_regions_all_found_is_perfect() -> None:
    s = bm.score_regions([("recession", (55.0, 15.0)), ("bulge", (25.0, 25.0))], _labels(), POL)
    assert (s.matched, s.recall, s.precision, s.f1) == (2, 1.0, 1.0, 1.0)


def test_score_regions_uses_corner_origin_pixel_coordinates() -> None:
    lab = np.zeros((40, 40), np.uint8)
    lab[10, 20] = 1  # pixel [row 10, col 20] covers x in [20, 21), y in [10, 11)
    one = {1: "bulge"}
    assert bm.score_regions([("bulge", (20.0, 10.0))], lab, one).matched == 1
    assert bm.score_regions([("bulge", (20.99, 10.99))], lab, one).matched == 1
    assert bm.score_regions([("bulge", (19.99, 10.5))], lab, one).matched == 0
    assert bm.score_regions([("bulge", (20.5, 11.0))], lab, one).matched == 0


def test_f1_when_nothing_to_find() -> None:
    empty = np.zeros((10, 10), np.uint8)
    assert bm.score_regions([], empty, {}).f1 == 1.0
    s = bm.score_regions([("bulge", (5.0, 5.0))], empty, {})
    assert s.f1 == 0.0 and s.fa_other == 1 and math.isnan(s.recall)


def test_score_regions_rejects_bad_labels() -> None:
    with pytest.raises(MonitorError):
        bm.score_regions([], np.zeros((2, 2, 2)), {})


# --------------------------------------------------------------------------- correlation


def _smooth(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), 4)


def test_correlation_is_invariant_to_scale_and_offset_and_signed() -> None:
    t = _smooth((60, 80))
    assert bm.change_correlation(3.0 * t + 1.0, t) == pytest.approx(1.0, abs=1e-6)
    assert bm.change_correlation(-t, t) == pytest.approx(-1.0, abs=1e-6)
    noisy = t + np.random.default_rng(1).standard_normal(t.shape).astype(np.float32) * t.std()
    assert 0.5 < bm.change_correlation(noisy, t) < 0.9


def test_correlation_ignores_nan_and_handles_constant_truth() -> None:
    t = _smooth((60, 80))
    c = t.copy()
    c[:, :20] = np.nan
    t_bad = t.copy()
    t_bad[:, :20] = 100.0  # outside the overlap: must not count
    assert bm.change_correlation(c, t_bad) == pytest.approx(1.0, abs=1e-6)
    assert math.isnan(bm.change_correlation(t, np.zeros_like(t)))


def test_correlation_brings_truth_onto_the_analysis_grid() -> None:
    t = _smooth((120, 160))
    small = cv2.resize(t, (80, 60), interpolation=cv2.INTER_AREA)
    assert bm.change_correlation(small, t) == pytest.approx(1.0, abs=1e-5)


# --------------------------------------------------------------------------- registration


def test_mapping_errors_corner_and_grid() -> None:
    def ident(p: np.ndarray) -> np.ndarray:
        return np.asarray(p, np.float64)

    def shifted(p: np.ndarray) -> np.ndarray:
        return np.asarray(p, np.float64) + (0.3, 0.4)

    e = bm.mapping_errors(shifted, ident, (100, 80), (100, 80), lens=False)
    assert e["corner_px"] == pytest.approx(0.5)
    assert e["grid_max_px"] == pytest.approx(0.5)
    assert e["error_px"] == e["corner_px"]

    def far_corner(p: np.ndarray) -> np.ndarray:  # wrong only far outside the image
        p = np.asarray(p, np.float64)
        return p + (p[:, :1] > 99.0) * (p[:, 1:] > 79.0) * 5.0

    e = bm.mapping_errors(far_corner, ident, (100, 80), (90, 70), lens=True)
    assert e["corner_px"] == pytest.approx(5 * math.sqrt(2))
    assert e["grid_max_px"] == pytest.approx(0.0)  # (100, 80) lies outside CURRENT
    assert e["error_px"] == e["grid_max_px"]


# --------------------------------------------------------------------------- baselines


def test_naive_change_sees_brightness_not_relief_sign() -> None:
    base = np.full((60, 80, 3), 0.2, np.float32)
    cur = base * 1.3  # exposure change: normalised away
    cur[20:30, 30:40] *= 1.5  # a brighter patch
    valid = np.ones((60, 80), bool)
    valid[:, :5] = False
    ch = naive_change(base, cur, valid)
    assert ch.method == "naive"
    assert np.isnan(ch.height[:, :5]).all()
    assert ch.height[25, 35] == pytest.approx(0.2 * 0.5, rel=1e-4)
    assert abs(ch.height[50, 60]) < 1e-6
    with pytest.raises(MonitorError):
        naive_change(base, cur[:10], valid)


def test_sift_baseline_recovers_the_true_homography() -> None:
    spec = synth.PairSpec(seed=3, size=(320, 240), rotation_deg=1.0, translation=(6.0, -4.0),
                          n_deformations=(2, 2), discoloration=False, noise=0.003)
    pair = synth.render_pair(spec)
    res = sift_homography(pair.baseline, pair.current)
    assert res.n_inliers >= 20
    assert corner_error(res.homography, pair.homography, (240, 320)) < 1.0


# --------------------------------------------------------------------------- aggregation


def _pair(name: str, score: dict[str, int] | None, *, no_change: bool = False,
          corr: float | None = 0.9, n_truth: int = 2) -> dict[str, object]:
    res = (
        {"ok": False, "error": "boom", "score": None, "seconds": None, "stages": {},
         "correlation": None}
        if score is None
        else {"ok": True, "score": score, "correlation": corr, "seconds": 2.0,
              "stages": {"register": 1.0}}
    )
    return {"name": name, "no_change": no_change, "n_truth": n_truth, "results": {"m": res}}


def _score(**kw: int) -> dict[str, int]:
    base = dict(n_truth=2, n_pred=0, matched=0, duplicates=0, wrong_polarity=0,
                fa_discoloration=0, fa_other=0)
    base.update(kw)
    return base


def test_aggregate_micro_averages_and_appearance_false_alarms() -> None:
    pairs = [
        _pair("a", _score(n_pred=3, matched=2, wrong_polarity=1), corr=0.8),
        _pair("b", _score(n_pred=2, matched=1, fa_discoloration=1), corr=0.6),
        _pair("c", _score(n_truth=0, n_pred=1, fa_other=1), no_change=True, corr=None,
              n_truth=0),
        _pair("d", None),  # failed: its 2 truth regions count as missed
    ]
    o = bm.aggregate(pairs, "m")
    assert (o["pairs"], o["failed"], o["n_truth"], o["n_pred"], o["matched"]) == (4, 1, 6, 6, 3)
    assert o["recall"] == pytest.approx(0.5)
    assert o["precision"] == pytest.approx(0.5)
    assert o["f1"] == pytest.approx(0.5)
    assert o["polarity_accuracy"] == pytest.approx(3 / 4)
    assert o["appearance_false_alarms"] == 2  # discoloration on b + the region on c
    assert o["false_alarms"] == 2
    assert o["correlation_mean"] == pytest.approx(0.7)
    assert o["errors"] == ["d: boom"]


def test_check_targets_reports_met_and_not_met() -> None:
    data = {
        "accuracy": {
            "default": "m",
            "overall": {"m": {"f1": 0.96, "polarity_accuracy": 0.9,
                              "appearance_false_alarms": 0, "correlation_mean": None}},
            "registration": {"monitor": {"failed": 0, "error_max_px": 0.5}},
        },
        "speed": {"sizes": [{"label": "24MP", "end_to_end_s_median": 70.0},
                            {"label": "100MP", "peak_rss_mb_max": 5000.0}]},
    }
    met = {t["name"].split(" ")[0]: t["met"] for t in bm.check_targets(data)}
    assert met["F1"] is True
    assert met["polarity"] is False
    assert met["false"] is True
    assert met["correlation"] is None  # not measured
    assert met["registration"] is False
    assert met["24"] is False
    assert met["peak"] is True  # 5000 MiB = 5.24 GB


# ------------------------------------------------------------ pairs and configurations


def test_bench_pairs_use_test_seeds_and_cover_the_design() -> None:
    pairs = bm.bench_pairs((320, 240), paintings=[], min_canvases=8, n_no_change=4)
    assert len(pairs) == 20
    assert all(p.spec.seed in synth.TEST_SEEDS for p in pairs)
    assert len({p.spec.seed for p in pairs}) == 20
    assert sum(p.raking for p in pairs[:16]) == 8
    assert sum(p.no_change and p.spec.no_change for p in pairs) == 4
    realism = [p for p in pairs if p.realism]
    assert 5 <= len(realism) <= 8 and all(p.spec.lens_k1 != 0 for p in realism)
    assert all(p.spec.painting is None for p in pairs)
    again = bm.bench_pairs((320, 240), paintings=[], min_canvases=8, n_no_change=4)
    assert [p.spec for p in again] == [p.spec for p in pairs]  # deterministic
    # lamps spread over all azimuths (issue #10), at normal and raking elevation
    quadrants = {int(p.spec.light_baseline.azimuth_deg // 90) for p in pairs}
    assert quadrants == {0, 1, 2, 3}
    for p in pairs:
        drift = abs((p.spec.light_current.azimuth_deg - p.spec.light_baseline.azimuth_deg
                     + 180) % 360 - 180)
        assert drift <= 3.0


def test_bench_pairs_of_the_train_and_validation_splits_use_their_own_seeds() -> None:
    test = bm.bench_pairs((320, 240), paintings=[])
    for split, seeds in (("train", synth.TRAIN_SEEDS), ("validation", synth.VALIDATION_SEEDS)):
        pairs = bm.bench_pairs((320, 240), paintings=[], split=split)
        assert len(pairs) == len(test)
        assert all(p.spec.seed in seeds for p in pairs)
        assert pairs[0].spec.seed == seeds.start + bm.SEED0
        assert not {p.spec.seed for p in pairs} & set(synth.TEST_SEEDS)
    for p in bm.bench_pairs((320, 240), split="validation"):
        assert p.canvas == "procedural" or p.canvas in synth.VALIDATION_PAINTINGS
    for p in bm.bench_pairs((320, 240), split="train"):
        assert p.canvas == "procedural" or p.canvas in synth.TRAIN_PAINTINGS
    with pytest.raises(MonitorError, match="split"):
        bm.bench_pairs((320, 240), split="holdout")
    with pytest.raises(MonitorError, match="train seeds"):
        bm.bench_pairs((320, 240), split="train", seed0=5)


def test_bench_pairs_never_use_training_paintings() -> None:
    for p in bm.bench_pairs((320, 240)):
        if p.canvas != "procedural":
            assert p.canvas in synth.TEST_PAINTINGS


def test_configurations_cover_every_method_and_mark_the_default() -> None:
    configs = bm.configurations()
    labels = [c.label for c in configs]
    for m in METHODS:
        assert any(lab == m or lab.startswith(f"{m}:") for lab in labels)
    assert labels[-1] == bm.NAIVE
    defaults = [c for c in configs if c.default]
    assert len(defaults) == 1 and defaults[0].settings is not None
    d = defaults[0].settings
    assert d.method == Settings().method
    if d.method == "depth":
        assert d.depth == Settings().depth


# --------------------------------------------------------------------------- smoke run


def test_smoke_run_on_two_tiny_pairs(tmp_path: Path) -> None:
    pairs = bm.bench_pairs((320, 240), paintings=[], min_canvases=1, n_no_change=0)
    assert len(pairs) == 2
    configs = [
        bm.Config("photometric", Settings(method="photometric"), default=True),
        bm.Config("broken", Settings(method="no-such-method")),  # raises: recorded, run goes on
        bm.Config(bm.NAIVE, None),
    ]
    doc = bm.run_benchmark(pairs, configs, tmp_path / "out", log=lambda _: None)
    assert (tmp_path / "out" / "benchmark.json").is_file()
    assert doc["n_pairs"] == 2 and doc["default"] == "photometric"
    broken = doc["overall"]["broken"]
    assert broken["failed"] == 2 and "unknown method" in broken["errors"][0]
    assert broken["recall"] == 0.0  # failures count as nothing found
    photo = doc["overall"]["photometric"]
    assert photo["failed"] == 0 and photo["n_truth"] == doc["n_truth"] > 0
    # the overall figures are the micro-average of the per-pair scores ...
    scores = [p["results"]["photometric"]["score"] for p in doc["pairs"]]
    matched = sum(sc["matched"] for sc in scores)
    n_pred = sum(sc["n_pred"] for sc in scores)
    assert photo["matched"] == matched and photo["n_pred"] == n_pred
    recall, precision = matched / photo["n_truth"], matched / max(n_pred, 1)
    assert photo["recall"] == pytest.approx(recall, abs=1e-3)
    assert photo["f1"] == pytest.approx(2 * recall * precision / (recall + precision), abs=1e-3)
    # ... and the default method finds most of what these two small pairs hold, with
    # no false alarm (measured at 320 x 240: 5 of 8 regions found, 5 predicted)
    assert photo["recall"] >= 0.5 and photo["precision"] >= 0.8
    for p in doc["pairs"]:
        assert p["registration"]["monitor"]["error_px"] is not None
        assert "error_px" in p["registration"]["sift"]
        assert p["results"][bm.NAIVE]["ok"]
    jpath, mpath = bm.update_docs(tmp_path / "docs", "accuracy", doc)
    data = json.loads(jpath.read_text())
    assert data["accuracy"]["n_pairs"] == 2 and "targets" in data
    md = mpath.read_text()
    assert "**photometric** (default)" in md
    assert "not measured" in md  # no speed figures in this run
    assert ("met" in md) and ("| broken |" in md)
    # every pair ran twice: light given and light not given, side by side
    auto = doc["overall"]["photometric" + bm.AUTO]
    assert auto["pairs"] == 2 and auto["n_truth"] == photo["n_truth"]
    for p in doc["pairs"]:
        assert "photometric" + bm.AUTO in p["results"]
        assert {"error_deg", "flag_90", "flag_180", "end_known"} <= set(p["light"])
    assert doc["light_estimator"]["all/all"]["n"] == 2
    assert "Light given and light not given" in md and "F1 auto" in md
    assert "Pair light estimator" in md


# --------------------------------------------------------------------------- stages


def test_corner_error_of_an_upscaled_pair_uses_the_scaled_truth() -> None:
    from bench.stages import _corners, corner_error_scaled

    hom = np.array([[1.0, 0.0, 5.0], [0.0, 1.0, -3.0], [0.0, 0.0, 1.0]])  # current -> baseline
    truth = {"baseline_size": [100, 80], "current_size": [100, 80],
             "homography": hom.tolist(), "lens": {"k1": 0.0}}
    f = 4.0
    exact = f * (_corners((80, 100)) - (5.0, -3.0))  # baseline -> current, upscaled
    assert corner_error_scaled(exact.tolist(), f, truth) == pytest.approx(0.0, abs=1e-9)
    off = exact + (0.3, -0.4)
    assert corner_error_scaled(off.tolist(), f, truth) == pytest.approx(0.5)


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs /proc")
def test_vm_hwm_sees_a_new_peak() -> None:
    from bench.stages import vm_hwm_mb

    before = vm_hwm_mb()
    assert before is not None and before > 0
    block = np.ones(8_000_000 + int(before * 131072))  # > the current peak, in float64s
    assert vm_hwm_mb() >= before + 50
    del block


def test_a_stage_run_twice_keeps_both_timings() -> None:
    from bench.stages import unique_names

    # scale auto resamples on the grid, then warps at full resolution: both are listed
    assert unique_names(["read", "resample", "light", "resample"]) == [
        "read", "resample", "light", "resample 2"]


def test_a_native_render_that_cannot_fit_is_refused_not_attempted(tmp_path: Path,
                                                                  monkeypatch) -> None:
    import bench.stages as stages

    monkeypatch.setattr(stages, "_available_gb", lambda: 1.0)
    monkeypatch.setattr(stages.subprocess, "run", lambda *a, **k: pytest.fail("rendered"))
    out = stages.prepare_native(tmp_path, ["100MP"], log=lambda *_: None)
    need = stages.RENDER_GB_PER_MP * 96
    assert f"needs about {need:.0f} GB" in str(out["100MP"]["error"]) and need > 1.0
    assert not any(tmp_path.iterdir())
    with pytest.raises(stages.MonitorError, match="native size"):
        stages.prepare_native(tmp_path, ["sample"])


def test_native_pairs_are_rendered_strip_by_strip(tmp_path: Path, monkeypatch) -> None:
    import json as _json

    import bench.stages as stages

    seen: list[list[str]] = []

    def fake_run(cmd, **_kw):
        seen.append([str(c) for c in cmd])
        folder = Path(cmd[cmd.index("--child-render") + 5])
        folder.mkdir(parents=True)
        (folder / "canvas.json").write_text(_json.dumps({"px_per_mm": 20.0}))
        return stages.subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(stages, "_available_gb", lambda: 1000.0)
    monkeypatch.setattr(stages.subprocess, "run", fake_run)
    out = stages.prepare_native(tmp_path, ["100MP"], log=lambda *_: None)
    assert "--strips" in seen[0] and out["100MP"]["px_per_mm"] == 20.0
