"""``monitor batch``: a campaign from the command line, on SQLite and on PostgreSQL.

The real pipeline runs on one small synthetic pair (found), a pair of noise
images (registration refuses it: failed, with the reason) and an artwork
with one scan (skipped); a second run reuses the stored comparison.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import cv2
import pytest
from test_store import write_image
from typer.testing import CliRunner

from monitor import synth
from monitor.cli import app
from monitor.config import Settings
from monitor.store import db, repository

pytest.importorskip("distributed")
runner = CliRunner()


@pytest.fixture(scope="module")
def pair() -> synth.SynthPair:
    return synth.render_pair(synth.demo_spec(seed=4, size=(320, 240)))


@pytest.fixture()
def home(tmp_path: Path, db_settings: Settings, pair: synth.SynthPair) -> Path:
    store = db.init_home(tmp_path / "home", db_settings)
    light = pair.spec.light_baseline
    for slug in ("good", "noise", "single"):
        repository.add_artwork(store, slug, f"Work {slug}")
    for month, rgb in ((1, pair.baseline), (7, pair.current)):
        path = tmp_path / f"good-{month}.png"
        cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        repository.ingest_scan(store, "good", path, repository.ScanMeta(
            captured_at=datetime(2025, month, 1, tzinfo=UTC), px_per_mm=4.0,
            light_azimuth=light.azimuth_deg, light_elevation=light.elevation_deg))
        repository.ingest_scan(store, "noise", write_image(tmp_path / f"n{month}.png", month),
                               repository.ScanMeta(captured_at=datetime(2025, month, 1,
                                                                        tzinfo=UTC)))
    repository.ingest_scan(store, "single", write_image(tmp_path / "s.png", 9))
    store.engine.dispose()
    return tmp_path / "home"


def batch(home: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["batch", "--home", str(home), *args],
                           env={"MONITOR_CONFIG": None})
    return result.exit_code, result.stdout, result.stderr


def test_batch_runs_pending_pairs_reports_failures_and_reuses_on_rerun(home: Path) -> None:
    code, out, err = batch(home, "--dry-run", "--json")
    assert code == 0, err
    plan = json.loads(out)
    assert sorted(t["slug"] for t in plan["pending"]) == ["good", "noise"]
    assert [o["task"]["slug"] for o in plan["skipped"]] == ["single"]

    code, out, err = batch(home, "--workers", "1", "--json")
    assert code == 4, err  # some comparison failed
    summary = json.loads(out)
    assert summary["counts"] == {"done": 1, "skipped": 1, "failed": 1}
    by_slug = {o["task"]["slug"]: o for o in summary["outcomes"]}
    assert by_slug["good"]["status"] == "done" and by_slug["good"]["comparison_id"]
    assert by_slug["noise"]["status"] == "failed" and by_slug["noise"]["reason"]
    assert "[3/3]" in err  # progress, one line per task

    code, out, err = batch(home, "--workers", "1")
    assert code == 4
    assert "campaign: 0 done, 2 skipped, 1 failed" in out
    assert "failed  noise" in out and by_slug["noise"]["reason"] in out


def test_batch_needs_an_initialised_home(tmp_path: Path) -> None:
    code, _out, err = batch(tmp_path / "nothing", "--workers", "1")
    assert code == 1 and err.startswith("error: ") and "monitor init" in err
