"""`monitor run` and `monitor schedule print`: exit codes, JSON, lock between processes, kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import cv2
import pytest
import typer
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from monitor import inbox, synth
from monitor.cli import inbox as cli_inbox
from monitor.store import db, repository
from monitor.store.models import ComparisonRecord, RegionRecord, Scan

runner = CliRunner()
APP = typer.Typer(pretty_exceptions_enable=False)
cli_inbox.register(APP)
ENV = {"MONITOR_INBOX_SETTLE_S": "0", "MONITOR_CONFIG": None}

# Runs the real command in a child process; TEST_SLOW_STAGE makes it announce (by creating
# TEST_SLOW_FLAG) and then sleep inside the comparison or the report, where a test kills it.
CHILD = """
import os, sys, time
from pathlib import Path
import typer

stage = os.environ.get("TEST_SLOW_STAGE")
if stage:
    flag, seconds = Path(os.environ["TEST_SLOW_FLAG"]), float(os.environ["TEST_SLOW_S"])
    if stage == "compare":
        import monitor.pipeline as mod
        name = "compare"
    else:
        import monitor.report.render as mod
        name = "write_report"
    original = getattr(mod, name)

    def slow(*args, **kwargs):
        flag.write_text(stage)
        time.sleep(seconds)
        return original(*args, **kwargs)

    setattr(mod, name, slow)

from monitor.cli import inbox as cli_inbox

app = typer.Typer(pretty_exceptions_enable=False)
cli_inbox.register(app)
app()
"""


@pytest.fixture(scope="module")
def pair() -> synth.SynthPair:
    return synth.render_pair(synth.demo_spec(seed=1, size=(480, 360)))


@pytest.fixture
def setup(tmp_path: Path, pair: synth.SynthPair) -> dict[str, Path]:
    """A home with artwork 'a' and its first scan stored; the next scan waits in the inbox."""
    home = tmp_path / "home"
    store = db.init_home(home)
    repository.add_artwork(store, "a", "Work a")
    first = tmp_path / "first.png"
    cv2.imwrite(str(first), cv2.cvtColor(pair.baseline, cv2.COLOR_RGB2BGR))
    meta = repository.ScanMeta(captured_at=datetime(2024, 1, 1, tzinfo=UTC),
                               light_azimuth=180.0, light_elevation=25.0)
    repository.ingest_scan(store, "a", first, meta)
    store.engine.dispose()
    box = tmp_path / "inbox"
    (box / "a").mkdir(parents=True)
    cv2.imwrite(str(box / "a" / "next.png"), cv2.cvtColor(pair.current, cv2.COLOR_RGB2BGR))
    (box / "a" / "next.toml").write_text("captured_at = 2024-07-01T10:00:00Z\noperator = 'JV'\n")
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    return {"home": home, "inbox": box, "reports": tmp_path / "reports", "script": script,
            "tmp": tmp_path}


def args(s: dict[str, Path], *extra: str) -> list[str]:
    return ["run", "--home", str(s["home"]), "--inbox", str(s["inbox"]),
            "--reports", str(s["reports"]), *extra]


def invoke(*argv: str) -> tuple[int, str, str]:
    result = runner.invoke(APP, list(argv), env=ENV)
    return result.exit_code, result.stdout, result.stderr


def child(s: dict[str, Path], *extra: str, slow: str | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_CONFIG"}
    env.update(MONITOR_INBOX_SETTLE_S="0", OMP_NUM_THREADS="1")
    if slow:
        env.update(TEST_SLOW_STAGE=slow, TEST_SLOW_FLAG=str(s["tmp"] / f"{slow}.flag"),
                   TEST_SLOW_S="120")
    return subprocess.Popen(
        [sys.executable, str(s["script"]), *args(s, *extra)], cwd=s["tmp"], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"child ended early: {proc.returncode} {proc.stderr.read()}")
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)


def rows(home: Path) -> dict[str, int]:
    store = db.open_store(home)
    try:
        with Session(store.engine) as session:
            return {m.__tablename__: session.scalar(select(func.count()).select_from(m)) or 0
                    for m in (Scan, ComparisonRecord, RegionRecord)}
    finally:
        store.engine.dispose()


def store_is_consistent(home: Path) -> bool:
    """Every file a row names exists and every stored object is named by a row."""
    store = db.open_store(home)
    try:
        with Session(store.engine) as session:
            refs = set(session.scalars(select(Scan.stored_path)))
            for artifacts in session.scalars(select(ComparisonRecord.artifacts)):
                refs.update(artifacts.values())
    finally:
        store.engine.dispose()
    objects = {p.relative_to(home).as_posix() for p in (home / "objects").rglob("*")
               if p.is_file()}
    return objects == refs


# --------------------------------------------------------------------------- in process


def test_run_json_then_nothing_to_do(setup: dict[str, Path]) -> None:
    code, out, err = invoke(*args(setup, "--dry-run", "--json"))
    assert code == inbox.EXIT_DONE, err
    plan = json.loads(out)
    assert plan["dry_run"] and [i["outcome"] for i in plan["items"]] == ["would process"]
    assert (setup["inbox"] / "a" / "next.png").exists()

    code, out, err = invoke(*args(setup, "--json"))
    assert code == inbox.EXIT_DONE, err
    summary = json.loads(out)
    assert summary["status"] == "done" and summary["counts"] == {"compared": 1}
    (item,) = summary["items"]
    assert item["file"] == "a/next.png" and item["captured_at"] == "2024-07-01T10:00:00+00:00"
    assert item["regions"] >= 3 and Path(item["report"]).is_file()
    assert (setup["inbox"] / item["moved_to"]).is_file()
    assert (setup["inbox"] / item["moved_to"]).with_suffix(".toml").is_file()
    assert rows(setup["home"])["comparison"] == 1

    code, out, _err = invoke(*args(setup))
    assert code == inbox.EXIT_NOTHING and out.startswith("nothing to do")
    code, out, _err = invoke(*args(setup, "--json"))
    assert code == inbox.EXIT_NOTHING and json.loads(out)["items"] == []


def test_run_reports_failures_and_errors(setup: dict[str, Path]) -> None:
    (setup["inbox"] / "a" / "next.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    code, out, _err = invoke(*args(setup))
    assert code == inbox.EXIT_SOME_FAILED
    assert out.splitlines()[0].startswith("quarantined      a/next.png")
    assert out.splitlines()[-1].startswith("some failed: 1 quarantined")
    code, _out, err = invoke("run", "--home", str(setup["tmp"] / "nohome"),
                             "--inbox", str(setup["inbox"]))
    assert code == inbox.EXIT_ERROR and err.startswith("error: ") and err.count("\n") == 1
    code, _out, err = invoke("run", "--home", str(setup["home"]),
                             "--inbox", str(setup["tmp"] / "missing"))
    assert code == inbox.EXIT_ERROR and "no inbox folder" in err


def test_schedule_print_uses_this_environment(tmp_path: Path) -> None:
    home = tmp_path / "h"
    code, out, err = invoke("schedule", "print", "--every", "6h", "--home", str(home),
                            "--inbox", str(tmp_path / "in"), "--reports", "rel/reports")
    assert code == 0
    exe = Path(sys.executable).parent / "monitor"
    assert f"ExecStart={exe} run --home {home} --inbox {tmp_path}/in" in out
    reports = Path("rel/reports").absolute()
    assert f"--reports {reports} --no-wait" in out
    assert "OnCalendar=*-*-* 00/06:30:00" in out
    assert f"30 */6 * * * {exe} run --home {home}" in out
    assert "does not exist yet" in err
    code, out, _err = invoke("schedule", "print", "--every", "1d", "--at", "01:00", "--json",
                             "--home", str(home))
    data = json.loads(out)
    assert code == 0 and set(data) == {"service", "timer", "crontab", "name"}
    assert f"--inbox {home}/inbox --reports {home}/reports" in data["service"]
    code, _out, err = invoke("schedule", "print", "--every", "7m")
    assert code == inbox.EXIT_ERROR and "divide 60" in err


# --------------------------------------------------------------------------- processes


def test_kill_9_mid_comparison_and_mid_report_then_a_run_finishes(setup: dict[str, Path]
                                                                  ) -> None:
    home = setup["home"]
    slow = child(setup, slow="compare")
    try:
        wait_for(setup["tmp"] / "compare.flag", slow)
        # the lock is held: a second run exits at once, or after waiting, with status 75
        busy = child(setup, "--no-wait", "--json")
        out, err = busy.communicate(timeout=60)
        assert busy.returncode == inbox.EXIT_BUSY, err
        assert json.loads(out)["status"] == "busy"
        start = time.monotonic()
        waited = child(setup, "--wait", "--wait-timeout", "1")
        waited.communicate(timeout=60)
        assert waited.returncode == inbox.EXIT_BUSY and time.monotonic() - start >= 1.0
    finally:
        slow.send_signal(signal.SIGKILL)
        slow.wait(timeout=30)
    assert slow.returncode == -signal.SIGKILL
    assert rows(home) == {"scan": 2, "comparison": 0, "region": 0}
    assert (setup["inbox"] / "a" / "next.png").is_file()
    assert store_is_consistent(home)

    # killed again, this time after the comparison was stored, while the report is written
    slow = child(setup, slow="report")
    try:
        wait_for(setup["tmp"] / "report.flag", slow, timeout=120)
    finally:
        slow.send_signal(signal.SIGKILL)
        slow.wait(timeout=30)
    stored = rows(home)
    assert stored["comparison"] == 1 and stored["scan"] == 2
    assert (setup["inbox"] / "a" / "next.png").is_file()

    code, out, err = invoke(*args(setup, "--json"))
    assert code == inbox.EXIT_DONE, err
    (item,) = json.loads(out)["items"]
    assert item["outcome"] == "compared" and item["reused"] is True
    assert Path(item["report"]).read_bytes()[:5] == b"%PDF-"
    assert rows(home) == stored  # no duplicate rows
    assert store_is_consistent(home)
    assert not list((home / inbox.PENDING_DIR).glob("*.json"))
    assert invoke(*args(setup))[0] == inbox.EXIT_NOTHING


def test_two_runs_started_at_once_never_both_process(setup: dict[str, Path]) -> None:
    procs = [child(setup, "--wait", "--wait-timeout", "120", "--json") for _ in range(2)]
    results = [p.communicate(timeout=180) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [inbox.EXIT_DONE, inbox.EXIT_NOTHING], [r[1] for r in results]
    outcomes = [[i["outcome"] for i in json.loads(out)["items"]] for out, _err in results]
    assert sorted(outcomes) == [[], ["compared"]]
    assert rows(setup["home"])["comparison"] == 1
    assert store_is_consistent(setup["home"])
