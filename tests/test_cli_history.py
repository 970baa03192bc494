"""CLI of the artwork history: init, artwork, ingest, compare SLUG, history, report, db."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import typer
from test_store import write_image
from typer.testing import CliRunner

from monitor import cli
from monitor.cli import history as cli_history

runner = CliRunner()


def make_app() -> typer.Typer:
    """The history commands plus the main app's compare (which dispatches `compare SLUG`)."""
    app = typer.Typer(pretty_exceptions_enable=False)
    app.command("compare")(cli.compare)
    cli_history.register(app)
    return app


APP = make_app()


def invoke(home: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(APP, [*args, "--home", str(home)])
    return result.exit_code, result.stdout, result.stderr


def ok_json(home: Path, *args: str) -> object:
    code, out, err = invoke(home, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_commands_need_an_initialised_home(tmp_path: Path) -> None:
    code, _out, err = invoke(tmp_path / "h", "artwork", "add", "w", "--title", "T")
    assert code == 1
    assert err.startswith("error: ") and "monitor init" in err and err.count("\n") == 1


def test_init_add_ingest_history(tmp_path: Path) -> None:
    home = tmp_path / "h"
    info = ok_json(home, "init")
    assert info["revision"] == ok_json(home, "db", "current")["head"]
    assert (home / "monitor.db").is_file()
    added = ok_json(home, "artwork", "add", "w1", "--title", "Work", "--width-mm", "300")
    assert added["width_mm"] == 300.0
    img = write_image(tmp_path / "a.png", 1)
    first = ok_json(home, "ingest", "w1", str(img), "--captured-at", "2024-02-03",
                    "--px-per-mm", "3.5", "--light-azimuth", "90", "--operator", "JV")
    assert first["created"] and first["captured_at_source"] == "given"
    assert first["scan"]["captured_at"] == "2024-02-03T00:00:00+00:00"
    assert first["scan"]["px_per_mm"] == 3.5
    again = ok_json(home, "ingest", "w1", str(img))
    assert not again["created"] and again["scan"]["id"] == first["scan"]["id"]
    assert len([p for p in (home / "objects").rglob("*") if p.is_file()]) == 1
    hist = ok_json(home, "history", "w1")
    assert hist["comparisons"] == [] and hist["trend"] == "insufficient data"
    code, out, _err = invoke(home, "history", "w1", "--csv")
    assert code == 0 and out.startswith("comparison_id,created_at,")
    assert [a["slug"] for a in ok_json(home, "artwork", "list")] == ["w1"]
    # one scan only: compare SLUG says why it cannot run
    code, _out, err = invoke(home, "compare", "w1")
    assert code == 1 and "needs two" in err


@pytest.mark.parametrize("slug", ["../evil", "a/b", "..", "Evil"])
def test_bad_slugs_are_refused_everywhere(tmp_path: Path, slug: str) -> None:
    home = tmp_path / "h"
    ok_json(home, "init")
    img = write_image(tmp_path / "i.png", 2)
    before = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    for args in (
        ("artwork", "add", slug, "--title", "T"),
        ("ingest", slug, str(img)),
        ("history", slug),
        ("report", slug, "--latest", "-o", str(tmp_path / "r.pdf")),
    ):
        code, _out, err = invoke(home, *args)
        assert code == 1, args
        assert "invalid artwork slug" in err
    after = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert after == before
    code, _out, err = invoke(home, "compare", slug)
    assert code == 1 and "invalid artwork slug" in err


def test_report_target_checks(tmp_path: Path) -> None:
    home = tmp_path / "h"
    ok_json(home, "init")
    code, _out, err = invoke(home, "report", "night-watch", "-o", str(tmp_path / "r.pdf"))
    assert code == 1 and "--latest" in err
    ok_json(home, "artwork", "add", "w", "--title", "T")
    code, _out, err = invoke(home, "report", "w", "--latest", "-o", str(tmp_path / "r.pdf"))
    assert code == 1 and "no comparison yet" in err


def test_db_downgrade_blocks_use_until_upgrade(tmp_path: Path) -> None:
    home = tmp_path / "h"
    head = ok_json(home, "init")["revision"]
    ok_json(home, "artwork", "add", "w", "--title", "Kept")
    down = ok_json(home, "db", "downgrade", "-1")["revision"]
    assert down != head
    code, _out, err = invoke(home, "artwork", "list")
    assert code == 1 and "monitor db upgrade" in err
    assert ok_json(home, "db", "upgrade")["revision"] == head
    assert ok_json(home, "artwork", "list")[0]["title"] == "Kept"


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def sample(sample_dir: Path) -> Path:
    """The session's sample pair (tests/conftest.py)."""
    return sample_dir


def _inside(point: list[float], bbox: list[float], margin: float = 0.0) -> bool:
    x, y = point
    x0, y0, x1, y1 = bbox
    return x0 - margin <= x <= x1 + margin and y0 - margin <= y <= y1 + margin


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs pdftotext (poppler-utils)")
def test_end_to_end_on_the_sample_pair(tmp_path: Path, sample: Path) -> None:
    home = tmp_path / "home"
    truth = json.loads((sample / "truth.json").read_text())
    ok_json(home, "init")
    ok_json(home, "artwork", "add", "sample-canvas", "--title", "Sample Canvas",
            "--artist", "monitor.synth", "--width-mm", "320", "--height-mm", "240")
    light = truth["light_baseline"]
    for name, when in (("baseline.png", "2024-01-10"), ("current.png", "2024-07-10")):
        ok_json(home, "ingest", "sample-canvas", str(sample / name), "--captured-at", when,
                "--px-per-mm", "4", "--light-azimuth", str(light["azimuth_deg"]),
                "--light-elevation", str(light["elevation_deg"]))

    result = ok_json(home, "compare", "sample-canvas")
    assert not result["reused"]
    regions = result["regions"]
    # every planted relief change is found, with its polarity, where it was planted
    for planted in truth["regions"]:
        hits = [
            r for r in regions
            if r["polarity"] == planted["polarity"] and _inside(planted["centroid"], r["bbox"], 5)
        ]
        assert hits, f"planted {planted['kind']} {planted['id']} not found"
    again = ok_json(home, "compare", "sample-canvas")
    assert again["reused"] and again["comparison_id"] == result["comparison_id"]

    hist = ok_json(home, "history", "sample-canvas")
    assert len(hist["comparisons"]) == 1
    entry = hist["comparisons"][0]
    n_bulge = sum(r["polarity"] == "bulge" for r in truth["regions"])
    n_recession = sum(r["polarity"] == "recession" for r in truth["regions"])
    assert entry["n_bulge"] >= n_bulge and entry["n_recession"] >= n_recession
    assert entry["n_bulge"] + entry["n_recession"] == len(regions)
    assert entry["changed_area_mm2"] == pytest.approx(entry["changed_area_px"] / 16.0)

    pdf = tmp_path / "report.pdf"
    rendered = ok_json(home, "report", "sample-canvas", "--latest", "-o", str(pdf))
    assert rendered["pages"] >= 2 and rendered["refused_resources"] == []
    text = " ".join(
        subprocess.run(["pdftotext", str(pdf), "-"], check=True, capture_output=True,
                       text=True).stdout.split()
    )
    assert "Sample Canvas" in text
    assert f"{len(regions)} regions of significant relief change" in text
