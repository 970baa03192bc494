"""The lamp through the command line: auto by default, given lamps checked, ranges refused.

Issue #10: `--light-azimuth auto|DEG` (default auto), `--strict-light`, the
light's source in regions.json, the store and page 1 of the report, stored
mode applying (and recording) a flag, scans recorded under different lamps
refused.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from monitor import cli, cli_history, synth
from monitor.light import angular_difference
from monitor.results import Light

runner = CliRunner()
AZ = 60.0  # the true lamp of the pair (upper right), raking
EL = 22.0


def make_app() -> typer.Typer:
    app = typer.Typer(pretty_exceptions_enable=False)
    app.command("compare")(cli.compare)
    cli_history.register(app)
    return app


APP = make_app()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small rendered pair with relief change under one raking lamp at AZ."""
    d = tmp_path_factory.mktemp("lightpair")
    spec = synth.sample_spec(20_501, raking=True, size=(480, 360))
    spec = dataclasses.replace(spec, light_baseline=Light(AZ, EL), light_current=Light(AZ, EL))
    p = synth.render_pair(spec)
    Image.fromarray(p.baseline).save(d / "a.png")
    Image.fromarray(p.current).save(d / "b.png")
    return d


def _compare(pair: Path, out: Path, *args: str, env: dict[str, str] | None = None):
    return runner.invoke(
        APP, ["compare", str(pair / "a.png"), str(pair / "b.png"), "--out", str(out), *args],
        env=env,
    )


def _refused(result, out: Path, needle: str) -> None:
    assert result.exit_code != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert needle.lower() in lines[0].lower(), lines[0]
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize(
    ("flag", "value", "needle"),
    [
        ("--light-azimuth", "400", "not including) 360"),
        ("--light-azimuth", "360", "not including) 360"),
        ("--light-azimuth", "-10", "not including) 360"),
        ("--light-azimuth", "north", "'auto' or a number"),
        ("--light-azimuth", "nan", "not including) 360"),
        ("--light-elevation", "90", "below 90"),
        ("--light-elevation", "0", "below 90"),
    ],
)
def test_light_flags_out_of_range_are_refused(
    pair: Path, tmp_path: Path, flag: str, value: str, needle: str
) -> None:
    out = tmp_path / "out"
    _refused(_compare(pair, out, flag, value), out, needle)


def test_light_from_the_environment_is_validated(pair: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _refused(_compare(pair, out, env={"MONITOR_LIGHT_AZIMUTH": "400"}), out, "light_azimuth")


def test_auto_is_the_default_and_is_recorded_as_estimated(pair: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _compare(pair, out)
    assert result.exit_code == 0, result.stderr
    light = json.loads((out / "regions.json").read_text())["light"]
    assert light["source"] == "estimated"
    assert angular_difference(light["azimuth_deg"], AZ) < 25.0
    assert 0.0 < light["azimuth_uncertainty_deg"] < 90.0
    assert light["estimate"]["azimuth_deg"] is not None
    assert light["baseline_estimate"] is not None and light["current_estimate"] is not None
    assert "warning" not in result.stderr
    assert "(estimated)" in result.stdout


def test_a_given_true_lamp_is_kept_without_warning(pair: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _compare(pair, out, "--light-azimuth", str(AZ), "--light-elevation", str(EL))
    assert result.exit_code == 0, result.stderr
    light = json.loads((out / "regions.json").read_text())["light"]
    assert light["source"] == "given" and light["azimuth_deg"] == AZ
    assert light["disagrees"] is False and light["warnings"] == []
    assert "warning" not in result.stderr


@pytest.mark.parametrize("off", [90.0, 180.0])
def test_a_wrong_given_lamp_is_warned_about_and_recorded(
    pair: Path, tmp_path: Path, off: float
) -> None:
    out = tmp_path / "out"
    wrong = (AZ + off) % 360.0
    result = _compare(pair, out, "--light-azimuth", f"{wrong:g}")
    assert result.exit_code == 0, result.stderr
    warn = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warn) == 1 and f"{wrong:.0f} deg" in warn[0]
    light = json.loads((out / "regions.json").read_text())["light"]
    assert light["source"] == "given" and light["azimuth_deg"] == wrong  # kept, but flagged
    assert light["disagrees"] is True and light["warnings"] == [warn[0][len("warning: "):]]
    assert light["check"]["opposite"] is (off == 180.0)


def test_strict_light_turns_the_disagreement_into_an_error(pair: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _compare(pair, out, "--light-azimuth", f"{(AZ + 180) % 360:g}", "--strict-light")
    _refused(result, out, "opposite")


# --------------------------------------------------------------------------- stored mode


def _invoke(home: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(APP, [*args, "--home", str(home)])
    return result.exit_code, result.stdout, result.stderr


def _json(home: Path, *args: str) -> dict:
    code, out, err = _invoke(home, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def _home(tmp_path: Path, pair: Path, *lights: str | None) -> Path:
    home = tmp_path / "h"
    _json(home, "init")
    _json(home, "artwork", "add", "w", "--title", "Work")
    for name, day, az in zip(("a.png", "b.png"), ("2024-01-01", "2024-06-01"), lights,
                             strict=True):
        extra = [] if az is None else ["--light-azimuth", az]
        _json(home, "ingest", "w", str(pair / name), "--captured-at", day, *extra)
    return home


def test_stored_mode_estimates_then_applies_and_records_a_flag(
    pair: Path, tmp_path: Path
) -> None:
    from monitor.report.render import write_report
    from monitor.store import db

    home = _home(tmp_path, pair, None, None)
    auto = _json(home, "compare", "w")
    assert auto["light"]["source"] == "estimated"
    assert angular_difference(auto["light"]["azimuth_deg"], AZ) < 25.0
    wrong = f"{(AZ + 180) % 360:g}"
    code, out, err = _invoke(home, "compare", "w", "--light-azimuth", wrong, "--json")
    assert code == 0, err
    given = json.loads(out)
    assert given["comparison_id"] != auto["comparison_id"]  # the flag applied: a new result
    assert given["light"]["source"] == "given"
    assert given["light"]["azimuth_deg"] == float(wrong)
    assert given["light"]["disagrees"] is True and "opposite" in given["light"]["message"]
    assert err.startswith("warning: ")
    # the store's strictness: nothing stored
    before = len(_json(home, "history", "w")["comparisons"])
    code, _out, err = _invoke(home, "compare", "w", "--light-azimuth", "10", "--strict-light",
                              "--force")
    assert code == 1 and err.startswith("error: ") and err.count("\n") == 1
    assert len(_json(home, "history", "w")["comparisons"]) == before
    # page 1 of the report says where the lamp came from, and warns
    store = db.open_store(home)
    first_page = lambda html: html.split("page-break")[0]  # noqa: E731
    rep = write_report(store, auto["comparison_id"], tmp_path / "auto.pdf")
    assert "estimated from the scans" in first_page(rep.html)
    rep = write_report(store, given["comparison_id"], tmp_path / "given.pdf")
    page = first_page(rep.html)
    assert "given by the user" in page and "Light warning" in page
    store.engine.dispose()


def test_stored_mode_uses_the_ingest_light_and_refuses_two_lamps(
    pair: Path, tmp_path: Path
) -> None:
    home = _home(tmp_path, pair, str(AZ), str(AZ))
    same = _json(home, "compare", "w")
    assert same["light"]["source"] == "ingest" and same["light"]["disagrees"] is False
    other = tmp_path / "other"
    home2 = _home(other, pair, "180", "0")
    code, _out, err = _invoke(home2, "compare", "w")
    assert code == 1 and "different lamps" in err and err.count("\n") == 1


def test_ingest_refuses_an_azimuth_out_of_range(pair: Path, tmp_path: Path) -> None:
    home = tmp_path / "h"
    _json(home, "init")
    _json(home, "artwork", "add", "w", "--title", "Work")
    code, _out, err = _invoke(home, "ingest", "w", str(pair / "a.png"), "--light-azimuth", "-90")
    assert code == 1 and "not including) 360" in err
