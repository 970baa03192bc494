"""What the process costs: its peak memory (stage timings, the benchmark)."""

from __future__ import annotations

import os
import resource
import sys

__all__ = ["match_cv2_threads", "peak_rss_mb"]


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB.

    Linux: ``VmHWM`` from ``/proc/self/status`` (``ru_maxrss`` survives
    ``execve`` and would report a large parent's peak in a child process);
    elsewhere ``ru_maxrss``.

    Examples
    --------
    >>> peak_rss_mb() > 0
    True
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def match_cv2_threads() -> int | None:
    """Hold OpenCV to the process's thread limit ``OMP_NUM_THREADS``, when one is set.

    OpenCV's own (pthreads) pool ignores ``OMP_NUM_THREADS`` and starts one
    worker per core. On a loaded machine those workers wait for each other:
    a 7-tap blur of a 1.5 MP plane cost 10.9 ms of CPU with 2 workers and
    4.2 ms with one (2-core CPU, load 5). torch already follows the variable,
    so a process limited to one thread now is limited everywhere. Results do
    not depend on the thread count; without the variable nothing changes.

    Returns
    -------
    int or None
        The thread count given to OpenCV, or None when the variable is unset
        or not a positive integer.

    Examples
    --------
    >>> isinstance(match_cv2_threads(), (int, type(None)))
    True
    """
    try:
        n = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return None
    if n < 1:
        return None
    import cv2  # only here: resources stays importable without the image stack

    if cv2.getNumThreads() != n:
        cv2.setNumThreads(n)
    return n
