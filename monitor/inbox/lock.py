"""The exclusive lock of a data home's scheduled runs."""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from monitor.errors import MonitorError

LOCK_NAME = "inbox.lock"


@contextlib.contextmanager
def inbox_lock(home: Path, wait_s: float = 0.0, poll_s: float = 0.2) -> Iterator[bool]:
    """Hold the exclusive lock of a data home's scheduled runs (``fcntl.flock``, POSIX only).

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
    try:
        import fcntl
    except ImportError as exc:  # Windows
        raise MonitorError("the inbox lock needs a POSIX system (fcntl.flock)") from exc
    if not math.isfinite(wait_s) or wait_s < 0:
        raise MonitorError(f"lock wait must be >= 0 seconds, got {wait_s}")
    path = home / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise MonitorError(f"cannot open the lock file {path}: {exc}") from exc
    try:
        deadline = time.monotonic() + wait_s
        held = False
        while not held:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                time.sleep(min(poll_s, left))
        if held:
            with contextlib.suppress(OSError):  # who holds it, for a curious operator
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()} {datetime.now(UTC).isoformat()}\n".encode(), 0)
        yield held
    finally:
        os.close(fd)  # closing the descriptor releases the lock
