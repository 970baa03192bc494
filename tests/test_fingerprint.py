"""The cache key sees the device and the weights; training never overwrites shipped weights."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from test_store import make_comparison, store, two_scans  # noqa: F401  (fixtures)

from monitor.change.pair import PAIR_WEIGHTS
from monitor.config import Settings
from monitor.nets import WEIGHTS_DIR, file_sha256
from monitor.pipeline import result_fingerprint
from monitor.store import db, repository


def test_fingerprint_names_the_device_and_the_weights_read(tmp_path: Path) -> None:
    assert result_fingerprint(Settings(device="cpu")) == {"device": "cpu", "weights": None}
    pair = result_fingerprint(Settings(method="pair", device="cpu"))
    assert pair["weights"] and pair["weights"] != result_fingerprint(
        Settings(method="depth", depth="relief", device="cpu"))["weights"]
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"weights-1")
    hf = Settings(method="depth", depth=f"hf:{folder}", device="cpu")
    first = result_fingerprint(hf)["weights"]
    (folder / "model.safetensors").write_bytes(b"weights-2")  # same size, other bytes
    assert result_fingerprint(hf)["weights"] != first


def test_cache_key_changes_with_device_and_weights(
    store: db.Store, two_scans: tuple[repository.ScanInfo, repository.ScanInfo]  # noqa: F811
) -> None:
    runs: list[int] = []

    def run(*_: object):
        runs.append(1)
        return make_comparison()

    cpu = {"device": "cpu", "weights": "aa"}
    first = repository.compare_and_store(store, "night-watch", run, None, fingerprint=cpu)
    again = repository.compare_and_store(store, "night-watch", run, None, fingerprint=dict(cpu))
    assert again.reused and again.id == first.id
    for other in ({"device": "cuda", "weights": "aa"}, {"device": "cpu", "weights": "bb"}):
        stored = repository.compare_and_store(store, "night-watch", run, None, fingerprint=other)
        assert not stored.reused
    assert len(runs) == 3


def test_training_writes_into_the_data_home_not_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from monitor import training

    monkeypatch.setenv("MONITOR_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)  # no monitor.toml here
    shipped = {p.name: file_sha256(p) for p in WEIGHTS_DIR.iterdir() if p.is_file()}
    cfg = training.TrainConfig(kind="relief", steps=1, size=128, pairs=2, val_pairs=0,
                               batch=2, crop=64, threads=1, seed=5)
    result = training.train(cfg, cache_dir=tmp_path / "cache", log=lambda s: None)
    assert result.weights == tmp_path / "home" / "weights" / "relief.safetensors"
    assert result.weights.is_file() and result.card.is_file()
    assert {p.name: file_sha256(p) for p in WEIGHTS_DIR.iterdir() if p.is_file()} == shipped
    assert PAIR_WEIGHTS.is_file()
    assert training.default_weights_out(dataclasses.replace(Settings(), home="/x")) == Path(
        "/x/weights")
