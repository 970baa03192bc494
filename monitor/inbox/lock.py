"""The exclusive lock of a data home's scheduled runs."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import filelock

from monitor.errors import MonitorError

LOCK_NAME = "inbox.lock"


@contextlib.contextmanager
def inbox_lock(home: Path, wait_s: float = 0.0, poll_s: float = 0.2) -> Iterator[bool]:
    """Hold the exclusive lock of a data home's scheduled runs (``filelock``, portable).

    The lock is ``<home>/inbox.lock``; the kernel releases it when the
    process ends, however it ends (a SIGKILL included), so no stale lock is
    ever left behind.

    Parameters
    ----------
    home
        Data home (must exist).
    wait_s
        How long to wait for another holder to finish; 0 tries once.
    poll_s
        Interval between attempts while waiting.

    Yields
    ------
    bool
        True while the lock is held, False if another process held it
        throughout ``wait_s``.
    """
    if not math.isfinite(wait_s) or wait_s < 0:
        raise MonitorError(f"lock wait must be >= 0 seconds, got {wait_s}")
    path = home / LOCK_NAME
    # filelock: fcntl.flock on POSIX, msvcrt.locking on Windows; either way the
    # operating system releases the lock when the process ends
    lock = filelock.FileLock(path, mode=0o644)
    try:
        lock.acquire(timeout=wait_s, poll_interval=max(1e-3, poll_s))
        held = True
    except filelock.Timeout:
        held = False
    except OSError as exc:
        raise MonitorError(f"cannot open the lock file {path}: {exc}") from exc
    try:
        if held:
            with contextlib.suppress(OSError):  # who holds it, for a curious operator
                path.write_text(f"{os.getpid()} {datetime.now(UTC).isoformat()}\n")
        yield held
    finally:
        if held:
            lock.release()
