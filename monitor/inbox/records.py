"""What a pass reports: exit statuses, the outcome of each file, the run summary."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: Exit statuses of ``monitor run``.
EXIT_DONE = 0


EXIT_ERROR = 1


EXIT_NOTHING = 3


EXIT_SOME_FAILED = 4


EXIT_BUSY = 75  # EX_TEMPFAIL: another run holds the lock


Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class InboxFile:
    """One candidate file found in the inbox.

    ``slug`` is the name of the folder it was found in (None for a file
    directly in the inbox); ``problem`` is a reason to quarantine it that is
    known before reading it.
    """

    path: Path
    rel: str
    slug: str | None
    sidecar: Path | None = None
    problem: str | None = None


@dataclass(frozen=True)
class ItemResult:
    """What a pass did with one inbox file.

    ``outcome`` is one of ``compared`` (stored, compared with the scan
    before it, report written), ``baseline`` (stored; the artwork has no
    earlier scan), ``duplicate`` (same image as another file of this pass),
    ``quarantined``, ``failed`` (left in the inbox for the next pass),
    ``would process`` / ``would quarantine`` (dry run).
    """

    file: str
    slug: str | None
    outcome: str
    reason: str | None = None
    sha256: str | None = None
    scan_id: int | None = None
    captured_at: str | None = None
    captured_at_source: str | None = None
    baseline_scan_id: int | None = None
    comparison_id: int | None = None
    reused: bool | None = None
    regions: int | None = None
    max_significance: float | None = None
    report: str | None = None
    moved_to: str | None = None
    alert: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return asdict(self)


OK_OUTCOMES = frozenset({"compared", "baseline", "duplicate"})


BAD_OUTCOMES = frozenset({"quarantined", "failed"})


@dataclass(frozen=True)
class RunSummary:
    """Outcome of one pass (:func:`run_inbox`)."""

    home: str
    inbox: str
    reports: str
    dry_run: bool = False
    busy: bool = False
    items: tuple[ItemResult, ...] = ()
    waiting: tuple[str, ...] = ()  # files modified too recently, left for the next pass
    ignored: tuple[str, ...] = ()  # sub-folders and sidecars without an image
    seconds: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        """Number of items per outcome."""
        out: dict[str, int] = {}
        for item in self.items:
            out[item.outcome] = out.get(item.outcome, 0) + 1
        return out

    @property
    def status(self) -> str:
        """``busy``, ``nothing to do``, ``some failed`` or ``done``."""
        if self.busy:
            return "busy"
        if not self.items:
            return "nothing to do"
        if any(i.outcome in BAD_OUTCOMES for i in self.items):
            return "some failed"
        return "done"

    @property
    def exit_code(self) -> int:
        """Exit status of ``monitor run`` (a dry run with work to do exits 0)."""
        if self.busy:
            return EXIT_BUSY
        if not self.items:
            return EXIT_NOTHING
        if not self.dry_run and any(i.outcome in BAD_OUTCOMES for i in self.items):
            return EXIT_SOME_FAILED
        return EXIT_DONE

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict (the ``--json`` summary)."""
        return {
            "status": self.status,
            "exit_code": self.exit_code,
            "dry_run": self.dry_run,
            "home": self.home,
            "inbox": self.inbox,
            "reports": self.reports,
            "counts": self.counts,
            "items": [i.to_dict() for i in self.items],
            "waiting": list(self.waiting),
            "ignored": list(self.ignored),
            "seconds": round(self.seconds, 3),
        }
