"""Training data, scoring and a few steps of training at a tiny size."""

import json
import math

import cv2
import numpy as np
import pytest
import torch

from monitor import synth, training
from monitor.change.pair import load_pair_model, pair_change
from monitor.depth.relief import ReliefEstimator
from monitor.errors import MonitorError
from monitor.io import to_linear
from monitor.nets import NetSpec, UNet
from monitor.results import Light, Region


@pytest.mark.parametrize("painting", [False, True])
def test_supersampled_scene_is_what_the_renderer_draws(painting):
    paintings = synth.paintings_for("train")
    if painting and not paintings:
        pytest.skip("no shared paintings")
    spec = synth.PairSpec(
        seed=1_000_123, size=(128, 96), painting=str(paintings[0]) if painting else None,
        psf_sigma=0.0, noise=0.0, bit_depth=16, discoloration=False, no_change=True,
    )
    pair = synth.render_pair(spec)
    albedo, height = training.supersampled_scene(spec)
    lz = float(spec.light_baseline.vector()[2])
    shade, _ = synth._shading(height, synth.SUPERSAMPLING, spec.light_baseline, lz, spec, 128)
    pred = cv2.resize(albedo * shade[..., None], (128, 96), interpolation=cv2.INTER_AREA)
    pred *= spec.base_exposure
    unclipped = pred < 0.99
    assert unclipped.mean() > 0.9
    assert np.abs(pred - to_linear(pair.baseline))[unclipped].max() < 1e-4
    assert training.base_scene(spec).shape == (96, 128)


def test_specs_come_from_the_train_and_validation_splits_only():
    for i in range(12):
        spec = training._draw_spec("train", i, 128)
        assert spec.seed in synth.TRAIN_SEEDS
        assert spec.painting is None or any(
            spec.painting.endswith(name + ".jpg") for name in synth.TRAIN_PAINTINGS
        )
        val = training._draw_spec("validation", i, 128)
        assert val.seed in synth.VALIDATION_SEEDS
        assert val.painting is None or any(
            val.painting.endswith(name + ".jpg") for name in synth.VALIDATION_PAINTINGS
        )
    with pytest.raises(MonitorError, match="train and validation"):
        training.load_records("test", 1, 128)


def test_misregistration_stays_within_about_one_pixel():
    rng = np.random.default_rng(0)
    hom = synth.pose_homography((200, 150), (200, 150), rotation_deg=1.0, scale=1.01)
    corners = np.array([[0, 0], [200, 0], [0, 150], [200, 150], [100, 75]], np.float64)
    worst = 0.0
    for _ in range(200):
        h2, k2 = training.perturbed_mapping(hom, 0.0, (200, 150), (200, 150), rng)
        a = synth.current_to_baseline(corners, hom, 0.0, (200, 150))
        b = synth.current_to_baseline(corners, h2, k2, (200, 150))
        worst = max(worst, float(np.hypot(*(a - b).T).max()))
    assert 0.3 < worst <= 1.05


def _region(cx, cy, pol="bulge", r=6.0):
    return Region(0, pol, (cx, cy), (cx - r, cy - r, cx + r, cy + r), 4 * r * r, 1.0, 0.5, 9.0)


def test_score_regions_matches_one_to_one_with_polarity():
    labels = np.zeros((100, 100), np.uint8)
    labels[10:30, 10:30] = 1
    labels[60:80, 60:80] = 2
    polarity = np.array([0, 1, -1], np.int8)
    found = (_region(20, 20), _region(21, 19), _region(70, 70, "bulge"), _region(50, 5))
    s = training.score_regions(found, labels, polarity)
    assert s == {"tp": 2, "fp": 2, "fn": 0, "polarity_ok": 1}
    assert training.score_regions((), labels, polarity) == {
        "tp": 0, "fp": 0, "fn": 2, "polarity_ok": 0,
    }


def test_a_fixed_batch_is_learnable():
    """The inputs carry the target: a net fitted on one batch drives its loss down."""
    spec = synth.PairSpec(seed=1_000_007, size=(128, 96), kinds=("bulge", "recession"),
                          slope_range=(0.12, 0.16), size_range=(0.08, 0.1), discoloration=False)
    pair = synth.render_pair(spec)
    rec = {
        "baseline": pair.baseline, "current": pair.current, "homography": pair.homography,
        "lens_k1": np.float64(pair.lens_k1), "height_change": pair.height_change,
        "light": np.array([spec.light_baseline.azimuth_deg, spec.light_baseline.elevation_deg]),
    }
    ex = training._pair_example(rec, np.random.default_rng(0))
    x = ex.x.float()[None, :, :64, :96]
    y, m = ex.y[None, None, :64, :96], ex.m[None, None, :64, :96]
    assert y.abs().max() > 0.02
    torch.manual_seed(0)
    net = UNet(NetSpec(x.shape[1], 1, (8, 16, 32), "none", 2))
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    losses = []
    for _ in range(60):
        loss = training._loss("pair", net(x), y, m)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.6 * losses[0]


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("weights")
    cache = tmp_path_factory.mktemp("cache")
    runs = {}
    for kind in ("pair", "relief"):
        cfg = training.TrainConfig(kind=kind, steps=4, size=128, pairs=3, val_pairs=2,
                                   batch=2, crop=64, threads=1, seed=3, small_pairs=1)
        runs[kind] = training.train(cfg, out, cache_dir=cache, log=lambda s: None)
    return runs, out, cache


def test_tiny_training_writes_weights_and_a_model_card(tiny_runs):
    runs, out, cache = tiny_runs
    pair = runs["pair"]
    assert pair.weights == out / "pair.safetensors" and pair.weights.stat().st_size < 10e6
    card = json.loads(pair.card.read_text())
    assert card["weights_sha256"] == pair.sha256
    assert card["training"]["steps"] == 4 and card["training"]["device"] == "cpu"
    assert card["training"]["seconds_total"] > 0 and len(card["training"]["loss_log"]) == 4
    assert card["data"]["test_split"] == "never read"
    assert set(card["validation"]) == {"pair", "photometric_same_pairs"}
    assert math.isfinite(pair.final_loss)
    assert len(list((cache / "train-128").glob("*.npz"))) == 3  # rendered pairs are cached
    net = load_pair_model(path=pair.weights)
    assert "noise_mult" in net.metadata and "noise_floor" in net.metadata  # calibrated
    assert net.sha256 == pair.sha256


def test_tiny_weights_run_through_the_inference_paths(tiny_runs):
    runs, _, _ = tiny_runs
    rng = np.random.default_rng(0)
    img = (0.2 + 0.5 * rng.random((70, 90, 3))).astype(np.float32)
    change = pair_change(img, img, np.ones((70, 90), bool), Light(),
                         model=load_pair_model(path=runs["pair"].weights))
    assert change.height.shape == (70, 90) and change.method == "pair"
    relief = ReliefEstimator(torch.device("cpu"), runs["relief"].weights).estimate(img, Light())
    assert relief.height.shape == (70, 90) and np.isfinite(relief.height).all()
    assert relief.weights_sha256 == runs["relief"].sha256


def test_training_is_reproducible(tiny_runs, tmp_path):
    runs, _, cache = tiny_runs
    cfg = training.TrainConfig(kind="pair", steps=4, size=128, pairs=3, val_pairs=0,
                               batch=2, crop=64, threads=1, seed=3, small_pairs=1)
    again = training.train(cfg, tmp_path, cache_dir=cache, log=lambda s: None)
    first = json.loads(runs["pair"].card.read_text())["training"]["loss_log"]
    assert json.loads(again.card.read_text())["training"]["loss_log"] == first


def test_bad_config_is_refused():
    with pytest.raises(MonitorError, match="kind"):
        training.TrainConfig(kind="nope").check()
    with pytest.raises(MonitorError, match="crop"):
        training.TrainConfig(crop=100).check()


def test_train_command_runs_at_a_tiny_size(tmp_path):
    import typer
    from typer.testing import CliRunner

    from monitor.cli.train import register

    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """monitor"""

    register(app)
    runner = CliRunner()
    args = ["train", "relief", "--steps", "2", "--size", "128", "--pairs", "2", "--val-pairs",
            "0", "--batch", "2", "--crop", "64", "--threads", "1", "--out", str(tmp_path / "w"),
            "--cache", str(tmp_path / "c"), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout[result.stdout.index("{"):])
    assert info["weights"].endswith("relief.safetensors") and len(info["sha256"]) == 64
    bad = runner.invoke(app, ["train", "nonsense", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 1 and "error: unknown network kind" in bad.output


def test_told_light_follows_the_light_estimators_error():
    """The jitter matches the estimator's measured azimuth error (median 4-8, p90 ~12, <= 25)."""
    rng = np.random.default_rng(0)
    true = Light(350.0, 30.0)
    errors = np.array([
        (training.jittered_light(true, rng).azimuth_deg - true.azimuth_deg + 180.0) % 360.0
        - 180.0 for _ in range(3000)
    ])
    moved = np.abs(errors[errors != 0])
    assert 0.1 < np.mean(errors == 0) < 0.3  # some users give the true light
    assert 4.0 <= np.median(moved) <= 8.0 and 10.0 <= np.percentile(moved, 90) <= 15.0
    assert moved.max() <= 25.0 + 1e-9
    assert training.jittered_light(true, rng, sigma_deg=0.0) == true


def test_pair_training_draws_include_jittered_light_and_small_damage(tmp_path, monkeypatch):
    """The examples are computed from a wrong-by-a-few-degrees lamp and include small damage."""
    from monitor.synth.small import FINE_KINDS, FINE_SIZE_RANGE

    seen: list[tuple[dict, Light]] = []
    real_example, real_inputs = training._pair_example, training.pair_inputs
    calls: list[Light] = []

    def spy_example(rec, rng, told=None):
        out = real_example(rec, rng, told)
        seen.append((rec, calls[-1]))
        return out

    def spy_inputs(base, cur, valid, light, device=None):
        calls.append(light)
        return real_inputs(base, cur, valid, light, device)

    monkeypatch.setattr(training, "_pair_example", spy_example)
    monkeypatch.setattr(training, "pair_inputs", spy_inputs)
    cfg = training.TrainConfig(kind="pair", steps=1, size=128, pairs=4, val_pairs=0, batch=2,
                               crop=64, threads=1, seed=5, small_pairs=2, exact_light_share=0.0)
    result = training.train(cfg, tmp_path / "w", cache_dir=tmp_path / "c", log=lambda s: None)
    assert len(seen) == 6
    offsets = [abs((told.azimuth_deg - float(rec["light"][0]) + 180.0) % 360.0 - 180.0)
               for rec, told in seen]
    assert all(0.0 < d <= 25.0 for d in offsets)  # every example told a wrong lamp
    specs = [json.loads(str(rec["spec"])) for rec, _ in seen]
    small = [s for s in specs if tuple(s["kinds"] or ()) == FINE_KINDS
             and tuple(s["size_range"]) == FINE_SIZE_RANGE]
    assert len(small) == 2 and all(s["seed"] in synth.TRAIN_SEEDS for s in small)
    card = json.loads(result.card.read_text())
    assert card["data"]["small_damage_pairs"] == 2 and card["data"]["examples"] == 6
    assert card["data"]["told_light_azimuth_error_deg"]["exact"] == 0
