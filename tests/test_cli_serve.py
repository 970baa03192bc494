"""``monitor serve`` through the real console script: it serves the home it is given."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_serves_the_home_it_is_given(web_home: Path) -> None:
    port = _free_port()
    env = {**os.environ, "MONITOR_HOME": ""}
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "serve",
         "--home", str(web_home), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
    )
    try:
        deadline = time.monotonic() + 60
        body = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                url = f"http://127.0.0.1:{port}/api/artworks"
                with urllib.request.urlopen(url, timeout=5) as r:
                    body = json.loads(r.read())
                break
            except OSError:
                time.sleep(0.3)
        assert body is not None, "server did not answer"
        slugs = [a["slug"] for a in (body["artworks"] if isinstance(body, dict) else body)]
        assert slugs, "the served home lists no artwork"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_serve_refuses_a_missing_home(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "serve", "--home", str(tmp_path / "none")],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "no data home" in result.stderr
