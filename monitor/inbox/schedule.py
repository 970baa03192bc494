"""Running 'monitor run' on a timer: systemd units and a crontab line."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from monitor.config import _config_path
from monitor.errors import MonitorError
from monitor.inbox.records import EXIT_BUSY, EXIT_NOTHING


@dataclass(frozen=True)
class Schedule:
    """Ready-to-use scheduler files for ``monitor run``."""

    service: str
    timer: str
    crontab: str
    name: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready dict."""
        return asdict(self)


def parse_every(every: str, at: str = "02:30") -> tuple[str, str]:
    """Turn an interval into a systemd ``OnCalendar`` value and a crontab time field.

    Parameters
    ----------
    every
        ``Nm`` (N divides 60), ``Nh`` (N divides 24), ``1d`` or ``1w``
        (Mondays).
    at
        ``HH:MM`` of the day for ``1d`` and ``1w``.

    Returns
    -------
    tuple of str
        (OnCalendar expression, five crontab time fields).
    """
    text = every.strip().lower()
    unit, number = text[-1:], text[:-1]
    if unit not in {"m", "h", "d", "w"} or not number.isdigit() or int(number) < 1:
        raise MonitorError(f"--every {every!r}: use Nm, Nh, 1d or 1w (e.g. 15m, 6h, 1d)")
    n = int(number)
    try:
        hour_s, minute_s = at.strip().split(":")
        hour, minute = int(hour_s), int(minute_s)
        if not (0 <= hour < 24 and 0 <= minute < 60):
            raise ValueError(at)
    except ValueError as exc:
        raise MonitorError(f"--at {at!r}: use HH:MM (24-hour clock)") from exc
    if unit == "m":
        if 60 % n or n == 60:
            raise MonitorError(f"--every {every!r}: minutes must divide 60 (1-30)")
        return f"*-*-* *:00/{n:02d}:00", f"*/{n} * * * *" if n > 1 else "* * * * *"
    if unit == "h":
        if 24 % n or n == 24:
            raise MonitorError(f"--every {every!r}: hours must divide 24 (1-12); else use 1d")
        return (f"*-*-* 00/{n:02d}:{minute:02d}:00",
                f"{minute} */{n} * * *" if n > 1 else f"{minute} * * * *")
    if n != 1:
        raise MonitorError(f"--every {every!r}: only 1d or 1w; for other periods use hours")
    if unit == "d":
        return f"*-*-* {hour:02d}:{minute:02d}:00", f"{minute} {hour} * * *"
    return f"Mon *-*-* {hour:02d}:{minute:02d}:00", f"{minute} {hour} * * 1"


def monitor_executable() -> Path:
    """Absolute path of this environment's ``monitor`` command.

    Returns
    -------
    Path
        ``monitor`` beside the running Python (a virtual environment's
        ``bin``), else the one on ``PATH``.
    """
    beside = Path(sys.executable).parent / "monitor"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside.absolute()
    found = shutil.which("monitor")
    if found is None:
        raise MonitorError("cannot find the 'monitor' command; install the package first")
    return Path(found).absolute()


def _systemd_quote(arg: str) -> str:
    escaped = arg.replace("%", "%%")
    if escaped and all(c.isalnum() or c in "/._-+:=@," for c in escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def schedule_files(
    every: str,
    *,
    home: Path,
    inbox: Path,
    reports: Path,
    at: str = "02:30",
    executable: Path | None = None,
    config: Path | None = None,
    name: str = "monitor-inbox",
) -> Schedule:
    """A systemd service + timer pair and a crontab line that run ``monitor run``.

    Parameters
    ----------
    every
        Interval (see :func:`parse_every`).
    home, inbox, reports
        Absolute data home, inbox and reports folders.
    at
        Time of day for ``1d`` / ``1w``.
    executable
        The ``monitor`` command (default :func:`monitor_executable`).
    config
        A TOML settings file to pass on as ``MONITOR_CONFIG`` (schedulers
        start in another directory, where ``monitor.toml`` is not found).
    name
        Unit name (``<name>.service`` / ``<name>.timer``).

    Returns
    -------
    Schedule
        The three texts.
    """
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise MonitorError(f"unit name {name!r}: use letters, digits, '-', '_' and '.'")
    calendar, cron_time = parse_every(every, at)
    exe = (executable or monitor_executable()).absolute()
    paths = {"home": home, "inbox": inbox, "reports": reports}
    for label, path in paths.items():
        if not path.is_absolute():
            raise MonitorError(f"{label} must be an absolute path, got {path}")
    argv = [str(exe), "run", "--home", str(home), "--inbox", str(inbox),
            "--reports", str(reports), "--no-wait"]
    env_lines = ""
    cron_env = ""
    if config is not None:
        config = config.expanduser().absolute()
        env_lines = f"Environment={_systemd_quote('MONITOR_CONFIG=' + str(config))}\n"
        cron_env = f"MONITOR_CONFIG={shlex.quote(str(config))} "
    service = (
        "# ~/.config/systemd/user/{name}.service (or /etc/systemd/system/ with User=)\n"
        "[Unit]\n"
        "Description=monitor: compare new scans in the inbox\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"{env_lines}"
        f"ExecStart={' '.join(_systemd_quote(a) for a in argv)}\n"
        "# 3 = nothing to do, 75 = another run holds the lock; 4 (some scans failed) fails\n"
        f"SuccessExitStatus={EXIT_NOTHING} {EXIT_BUSY}\n"
        "Nice=10\n"
    ).replace("{name}", name)
    timer = (
        f"# ~/.config/systemd/user/{name}.timer, then:\n"
        f"#   systemctl --user daemon-reload && systemctl --user enable --now {name}.timer\n"
        "#   loginctl enable-linger $USER   # keep user timers running after logout\n"
        "[Unit]\n"
        f"Description=Run {name}.service ({every})\n"
        "\n"
        "[Timer]\n"
        f"OnCalendar={calendar}\n"
        "Persistent=true\n"
        "\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )
    log = home / "inbox-run.log"
    command = " ".join(shlex.quote(a) for a in argv) + f" >> {shlex.quote(str(log))} 2>&1"
    crontab = f"{cron_time} {cron_env}{command}".replace("%", "\\%") + "\n"
    return Schedule(service=service, timer=timer, crontab=crontab, name=name)


def config_in_use() -> Path | None:
    """The TOML settings file this process would read (see :mod:`monitor.config`), if any.

    Returns
    -------
    Path or None
        Absolute path of the file.
    """
    path = _config_path(os.environ)
    return None if path is None else path.expanduser().absolute()
