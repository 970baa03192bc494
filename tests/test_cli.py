"""Bad input through `monitor compare`: one line on stderr, non-zero exit, nothing in --out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from monitor import synth
from monitor.cli import app

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, ["compare", *args])


def _assert_refused(result, out: Path, needle: str) -> None:
    assert result.exit_code != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert needle.lower() in lines[0].lower(), lines[0]
    assert "Traceback" not in result.output
    assert not out.exists() or not any(out.iterdir())
    assert not list(out.parent.glob(f".{out.name}.*")), "temporary output folder left behind"


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small valid image to pair with each bad one."""
    d = tmp_path_factory.mktemp("good")
    pair = synth.render_pair(synth.sample_spec(3, size=(320, 240)))
    Image.fromarray(pair.baseline).save(d / "a.png")
    Image.fromarray(pair.current).save(d / "b.jpg", quality=90)
    return d


def test_missing_file(tmp_path: Path, good: Path) -> None:
    out = tmp_path / "out"
    _assert_refused(_run(str(tmp_path / "nope.png"), str(good / "a.png"), "--out", str(out)),
                    out, "no such file")


def test_text_file_named_png(tmp_path: Path, good: Path) -> None:
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image\n")
    out = tmp_path / "out"
    _assert_refused(_run(str(good / "a.png"), str(bad), "--out", str(out)), out, "notes.png")


def test_truncated_jpeg(tmp_path: Path, good: Path) -> None:
    data = (good / "b.jpg").read_bytes()
    bad = tmp_path / "cut.jpg"
    bad.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    _assert_refused(_run(str(good / "a.png"), str(bad), "--out", str(out)), out, "cut.jpg")


def test_one_pixel_image(tmp_path: Path, good: Path) -> None:
    bad = tmp_path / "dot.png"
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(bad)
    out = tmp_path / "out"
    _assert_refused(_run(str(bad), str(good / "a.png"), "--out", str(out)), out, "1x1")


def test_two_different_paintings(tmp_path: Path, good: Path) -> None:
    other = synth.render_pair(synth.sample_spec(11, size=(320, 240)))
    Image.fromarray(other.baseline).save(tmp_path / "other.png")
    out = tmp_path / "out"
    _assert_refused(_run(str(good / "a.png"), str(tmp_path / "other.png"), "--out", str(out)),
                    out, "same artwork")


def test_out_is_required_and_unknown_method_refused(tmp_path: Path, good: Path) -> None:
    out = tmp_path / "out"
    _assert_refused(_run(str(good / "a.png"), str(good / "b.jpg")), out, "--out")
    _assert_refused(
        _run(str(good / "a.png"), str(good / "b.jpg"), "--out", str(out), "--method", "magic"),
        out, "unknown method",
    )


def test_existing_out_folder_keeps_foreign_files_and_gets_all_outputs(
    tmp_path: Path, good: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = _run(str(good / "a.png"), str(good / "b.jpg"), "--out", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    names = {p.name for p in out.iterdir()}
    assert {"keep.txt", "regions.json", "change.tif", "heatmap.png", "overlay.png",
            "registration.json"} <= names
    assert json.loads((out / "regions.json").read_text())["baseline_size"] == [320, 240]
