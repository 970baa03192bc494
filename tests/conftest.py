"""Shared fixtures: the sample pair is rendered once per test session."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pg import db_backend, db_settings, db_url, pg_server  # noqa: F401  (fixtures)

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
