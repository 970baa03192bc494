"""Shared fixtures: the sample pair is rendered once per test session."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's sample pair (sample_data/generate.py) in a temporary folder."""
    out = tmp_path_factory.mktemp("sample")
    subprocess.run(
        [sys.executable, str(ROOT / "sample_data" / "generate.py"), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    return out


#: Title of the web viewer's sample artwork: markup that must come out escaped.
HOSTILE_TITLE = '<script>alert("t")</script> Sample & <b>canvas</b> \'"'


@pytest.fixture(scope="session")
def web_home(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data home holding the sample pair of ``sample_dir`` and their stored comparison.

    Built through the CLI (init, artwork add with a hostile title, ingest x2,
    compare) once per session, for the web viewer's tests.
    """
    import json

    import typer
    from typer.testing import CliRunner

    from monitor import cli, cli_history

    app = typer.Typer(pretty_exceptions_enable=False)
    app.command("compare")(cli.compare)
    cli_history.register(app)
    runner = CliRunner()
    home = tmp_path_factory.mktemp("web") / "home"
    light = json.loads((sample_dir / "truth.json").read_text())["light_baseline"]
    light_args = ["--light-azimuth", str(light["azimuth_deg"]),
                  "--light-elevation", str(light["elevation_deg"])]
    steps = [
        ["init"],
        ["artwork", "add", "sample-canvas", "--title", HOSTILE_TITLE, "--artist",
         "monitor.synth", "--width-mm", "320", "--height-mm", "240"],
        ["ingest", "sample-canvas", str(sample_dir / "baseline.png"), "--captured-at",
         "2024-01-10", "--px-per-mm", "4", *light_args],
        ["ingest", "sample-canvas", str(sample_dir / "current.png"), "--captured-at",
         "2024-07-10", "--px-per-mm", "4", *light_args],
        ["compare", "sample-canvas"],
    ]
    for args in steps:
        result = runner.invoke(app, [*args, "--home", str(home)])
        assert result.exit_code == 0, (args, result.stderr)
    return home
