"""The pass: ingest new scans, compare, write reports, file them away (run_inbox)."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from monitor.config import Settings
from monitor.errors import MonitorError
from monitor.inbox.alerts import alert_payload, send_alert
from monitor.inbox.discovery import PROCESSED_DIR, discover, resolve_paths
from monitor.inbox.filing import _marker_path, _prune_markers, _write_marker, move_out
from monitor.inbox.lock import inbox_lock
from monitor.inbox.records import InboxFile, ItemResult, Progress, RunSummary
from monitor.inbox.sidecars import read_sidecar
from monitor.results import Comparison, Light
from monitor.runners import pipeline_runner, write_comparison
from monitor.store import db, repository
from monitor.store.db import Store
from monitor.store.repository import RunFn, ScanInfo, ScanMeta, WriteFn

STALE_TEMP_S = 3600.0


def _default_run(settings: Settings) -> RunFn:
    return pipeline_runner(settings)


_default_write: WriteFn = write_comparison


@dataclass
class _Pending:
    """A file ingested in the first phase, waiting for its comparison."""

    item: InboxFile
    sha: str
    scan: ScanInfo
    from_inbox: bool  # this inbox created the scan: take it back if rejected
    source: str
    duplicates: list[InboxFile] = field(default_factory=list)


def _file_time(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def _report_path(reports: Path, slug: str, scan: ScanInfo, comparison_id: int) -> Path:
    day = scan.captured_at.date().isoformat()
    return reports / slug / f"{slug}_{day}_comparison-{comparison_id}.pdf"


def _clean_stale_parts(folder: Path) -> None:
    """Remove report temporaries a killed pass left (``.<name>.<hex>.part``, older than 1 h)."""
    if not folder.is_dir():
        return
    cutoff = time.time() - STALE_TEMP_S
    for path in folder.glob(".*.part"):
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < cutoff:
                path.unlink()


class _Pass:
    """State of one pass; methods are the steps (kept small for reading)."""

    def __init__(
        self,
        store: Store,
        inbox: Path,
        reports: Path,
        settings: Settings,
        run: RunFn,
        write: WriteFn | None,
        progress: Progress | None,
        total: int,
    ) -> None:
        self.store, self.inbox, self.reports, self.settings = store, inbox, reports, settings
        self.run, self.write, self.progress, self.total = run, write, progress, total
        self.results: list[ItemResult] = []
        self.done = 0
        self.seen: set[tuple[str, str]] = set()  # (slug, sha256) of files hashed in this pass
        self._fingerprint: dict[str, object] | None = None

    @property
    def fingerprint(self) -> dict[str, object]:
        """Device and weights' hash for the cache key (computed once per pass)."""
        if self._fingerprint is None:
            from monitor.pipeline import result_fingerprint

            self._fingerprint = result_fingerprint(self.settings)
        return self._fingerprint

    def _tick(self, label: str) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total, label)

    def record(self, result: ItemResult) -> None:
        self.results.append(result)
        self._tick(f"{result.outcome}: {result.file}")

    def quarantine(self, item: InboxFile, reason: str, sha: str | None, **known: Any) -> None:
        try:
            where = move_out(self.inbox, item, "quarantine", sha, reason)
        except (OSError, MonitorError) as exc:
            self.record(ItemResult(item.rel, item.slug, "failed", f"{reason}; and cannot move "
                                   f"it to quarantine: {exc}", sha, **known))
            return
        self.record(ItemResult(item.rel, item.slug, "quarantined", reason, sha,
                               moved_to=self._rel(where), **known))

    def _rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.inbox).as_posix()
        except ValueError:
            return str(path)

    # ---- phase 1: ingest

    def ingest(self, item: InboxFile, known_artworks: set[str]) -> tuple[str, ScanInfo, bool,
                                                                             str] | None:
        """Store the file as a scan; None when it was quarantined or failed."""
        from monitor.io import read_scan

        try:
            sha = repository.sha256_file(item.path)
        except MonitorError as exc:
            self.record(ItemResult(item.rel, item.slug, "failed", str(exc)))
            return None
        if item.problem is not None:
            self.quarantine(item, item.problem, sha)
            return None
        assert item.slug is not None
        self.seen.add((item.slug, sha))
        if item.slug not in known_artworks:
            try:
                repository.validate_slug(item.slug)
                reason = (f"no artwork {item.slug!r} in the store; add it with 'monitor artwork "
                          f"add {item.slug} --title ...' and put the file back")
            except MonitorError as exc:
                reason = f"folder name is not an artwork slug: {exc}"
            self.quarantine(item, reason, sha)
            return None
        try:
            meta = read_sidecar(item.sidecar) if item.sidecar is not None else ScanMeta()
            data = read_scan(item.path, max_pixels=self.settings.max_pixels)
            source = "sidecar"
            if meta.captured_at is None:
                if repository._exif_time(data.exif) is not None:
                    source = "exif"
                else:
                    meta, source = replace(meta, captured_at=_file_time(item.path)), "file time"
        except MonitorError as exc:
            self.quarantine(item, str(exc), sha)
            return None
        except Exception as exc:  # a bug or the system: leave the file for the next pass
            self.record(ItemResult(item.rel, item.slug, "failed", _describe(exc), sha))
            return None
        # the marker goes down before the scan exists and stays until the scan is accepted
        marker = _marker_path(self.store.home, item.slug, sha)
        existing = next(
            (s for s in repository.list_scans(self.store, item.slug) if s.sha256 == sha), None
        )
        wrote_marker = False
        try:
            if existing is None and not marker.exists():
                _write_marker(self.store.home, self.inbox, item, sha)
                wrote_marker = True
            from_inbox = marker.exists()
            if existing is not None:
                source = "already stored"
            result = repository.ingest_scan(
                self.store, item.slug, item.path, meta, reader=lambda _p: data
            )
        except MonitorError as exc:
            if wrote_marker:
                marker.unlink(missing_ok=True)
            self.quarantine(item, str(exc), sha)
            return None
        except Exception as exc:
            self.record(ItemResult(item.rel, item.slug, "failed", _describe(exc), sha))
            return None
        return sha, result.scan, from_inbox, source

    # ---- phase 2: compare, report, alert, move

    def finish(self, pending: _Pending, scans: list[ScanInfo]) -> None:
        item, scan = pending.item, pending.scan
        assert item.slug is not None
        slug = item.slug
        known: dict[str, Any] = {
            "scan_id": scan.id,
            "captured_at": scan.captured_at.isoformat(),
            "captured_at_source": pending.source,
        }
        index = next(i for i, s in enumerate(scans) if s.id == scan.id)
        if index == 0:
            self.accept(pending, ItemResult(item.rel, slug, "baseline", sha256=pending.sha,
                                            **known))
            return
        previous = scans[index - 1]
        known["baseline_scan_id"] = previous.id
        ran: list[bool] = []

        def run(base: Path, cur: Path, light: Light | Literal["auto"],
                px_per_mm: float | None) -> Comparison:
            result = self.run(base, cur, light, px_per_mm)
            ran.append(True)  # what fails after this is not the scan's fault
            return result

        try:
            stored = repository.compare_and_store(
                self.store, slug, run, self.write, settings=self.settings,
                baseline=str(previous.id), current=str(scan.id),
                fingerprint=self.fingerprint,
            )
        except MonitorError as exc:
            if ran:
                self.fail(pending, f"storing the comparison: {exc}", known)
            else:
                self.reject(pending, str(exc), known)
            return
        except Exception as exc:
            self.fail(pending, _describe(exc), known)
            return
        known["comparison_id"], known["reused"] = stored.id, stored.reused
        try:
            detail = repository.comparison_detail(self.store, stored.id)
            known["regions"] = len(detail.regions)
            known["max_significance"] = max((r.significance for r in detail.regions),
                                            default=0.0)
            report = self.write_report(slug, scan, stored.id)
            known["report"] = str(report)
        except Exception as exc:  # the scan is fine; retry the report next pass
            self.fail(pending, f"report: {_describe(exc)}", known)
            return
        threshold = self.settings.alert_min_significance
        if detail.regions and known["max_significance"] >= threshold and (
            self.settings.alert_command.strip() or self.settings.alert_url.strip()
        ):
            known["alert"] = send_alert(alert_payload(detail, report, threshold), self.settings)
        self.accept(pending, ItemResult(item.rel, slug, "compared", sha256=pending.sha, **known))

    def write_report(self, slug: str, scan: ScanInfo, comparison_id: int) -> Path:
        from monitor.report.render import write_report

        out = _report_path(self.reports, slug, scan, comparison_id)
        out.parent.mkdir(parents=True, exist_ok=True)
        _clean_stale_parts(out.parent)
        write_report(self.store, comparison_id, out)
        return out

    def accept(self, pending: _Pending, result: ItemResult) -> None:
        try:
            where = move_out(self.inbox, pending.item, "processed", pending.sha)
        except (OSError, MonitorError) as exc:
            self.fail(pending, f"cannot move it to {PROCESSED_DIR}: {exc}", {})
            return
        assert pending.item.slug is not None
        _marker_path(self.store.home, pending.item.slug, pending.sha).unlink(missing_ok=True)
        self.record(replace(result, moved_to=self._rel(where)))
        for dup in pending.duplicates:
            try:
                moved = move_out(self.inbox, dup, "processed", pending.sha)
            except (OSError, MonitorError) as exc:
                self.record(ItemResult(dup.rel, dup.slug, "failed", f"cannot move it to "
                                       f"{PROCESSED_DIR}: {exc}", pending.sha))
                continue
            self.record(ItemResult(dup.rel, dup.slug, "duplicate",
                                   f"same image as {pending.item.rel}", pending.sha,
                                   scan_id=pending.scan.id, moved_to=self._rel(moved)))

    def reject(self, pending: _Pending, reason: str, known: dict[str, Any]) -> None:
        item = pending.item
        assert item.slug is not None
        note = ""
        if pending.from_inbox:
            try:
                repository.remove_scan(self.store, pending.scan.id)
                note = "; the scan was taken out of the store again"
            except MonitorError as exc:
                note = f"; the scan stays in the store: {exc}"
        else:
            note = (f"; scan {pending.scan.id} was stored before the inbox saw this file and "
                    "stays in the store")
        known = {k: v for k, v in known.items() if k != "scan_id"} if pending.from_inbox else known
        for dup in pending.duplicates:
            self.quarantine(dup, f"same image as {item.rel}: {reason}", pending.sha)
        self.quarantine(item, reason + note, pending.sha, **known)
        _marker_path(self.store.home, item.slug, pending.sha).unlink(missing_ok=True)

    def fail(self, pending: _Pending, reason: str, known: dict[str, Any]) -> None:
        self.record(ItemResult(pending.item.rel, pending.item.slug, "failed", reason,
                               pending.sha, **known))
        for dup in pending.duplicates:
            self.record(ItemResult(dup.rel, dup.slug, "failed", reason, pending.sha))


def _describe(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def process_inbox(
    store: Store,
    inbox: Path,
    reports: Path,
    settings: Settings,
    *,
    run: RunFn | None = None,
    write: WriteFn | None = _default_write,
    progress: Progress | None = None,
    now: float | None = None,
) -> RunSummary:
    """One pass over the inbox; the caller holds :func:`inbox_lock`.

    Parameters
    ----------
    store
        The open store.
    inbox, reports
        Absolute folders (the reports folder is created when needed).
    settings
        Comparison settings plus ``inbox_settle_s`` and the alert hooks.
    run
        ``run(baseline, current, light, px_per_mm) -> Comparison``; default
        :func:`monitor.pipeline.compare` with ``settings``.
    write
        Writer of the comparison's files (default :func:`monitor.pipeline.write_outputs`).
    progress
        Called with (items done, items in all, label) after each file.
    now
        Current time for the settle check (``time.time()`` when None).

    Returns
    -------
    RunSummary
        What happened to every file.
    """
    start = time.perf_counter()
    exclude = [reports] if reports.is_relative_to(inbox) else []
    items, waiting, ignored = discover(
        inbox, settle_s=settings.inbox_settle_s, now=now, exclude=exclude
    )
    summary = RunSummary(
        home=str(store.home), inbox=str(inbox), reports=str(reports),
        waiting=tuple(waiting), ignored=tuple(ignored),
    )
    if not items:
        return replace(summary, seconds=time.perf_counter() - start)
    from monitor.change.methods import METHODS  # a bad setting must not quarantine every scan

    if settings.method not in METHODS:
        raise MonitorError(f"unknown method {settings.method!r}; choose one of: "
                           f"{', '.join(METHODS)}")
    with contextlib.suppress(OSError):
        repository.collect_garbage(store, min_age_s=STALE_TEMP_S)
    p = _Pass(store, inbox, reports, settings, run or _default_run(settings), write, progress,
              len(items))
    known_artworks = {a.slug for a in repository.list_artworks(store)}
    pending: dict[tuple[str, str], _Pending] = {}
    for item in items:
        got = p.ingest(item, known_artworks)
        if got is None:
            continue
        sha, scan, from_inbox, source = got
        assert item.slug is not None
        key = (item.slug, sha)
        if key in pending:
            pending[key].duplicates.append(item)
        else:
            pending[key] = _Pending(item, sha, scan, from_inbox, source)
    _prune_markers(store.home, inbox, p.seen)
    for slug in sorted({k[0] for k in pending}):
        todo = sorted((v for k, v in pending.items() if k[0] == slug),
                      key=lambda v: (v.scan.captured_at, v.scan.id))
        for entry in todo:
            scans = repository.list_scans(store, slug)  # fresh: a rejected scan is gone
            p.finish(entry, scans)
    order = {item.rel: i for i, item in enumerate(items)}
    results = tuple(sorted(p.results, key=lambda r: order.get(r.file, len(order))))
    return replace(summary, items=results, seconds=time.perf_counter() - start)


def plan_inbox(store: Store, inbox: Path, reports: Path, settings: Settings) -> RunSummary:
    """What a pass would do, without changing anything (``--dry-run``).

    Reads sidecars and hashes files but does not decode images, so a corrupt
    image shows as ``would process`` here and is quarantined by the real pass.

    Parameters
    ----------
    store
        The open store.
    inbox, reports
        Absolute folders.
    settings
        ``inbox_settle_s``.

    Returns
    -------
    RunSummary
        Items with outcome ``would process`` or ``would quarantine``.
    """
    start = time.perf_counter()
    exclude = [reports] if reports.is_relative_to(inbox) else []
    items, waiting, ignored = discover(inbox, settle_s=settings.inbox_settle_s, exclude=exclude)
    known = {a.slug for a in repository.list_artworks(store)}
    per_slug: dict[str | None, int] = {}
    for item in items:
        per_slug[item.slug] = per_slug.get(item.slug, 0) + 1
    results = []
    for item in items:
        reason = item.problem
        if reason is None and item.slug not in known:
            reason = f"no artwork {item.slug!r} in the store"
        if reason is None and item.sidecar is not None:
            try:
                read_sidecar(item.sidecar)
            except MonitorError as exc:
                reason = str(exc)
        if reason is not None:
            results.append(ItemResult(item.rel, item.slug, "would quarantine", reason))
            continue
        assert item.slug is not None
        sha = repository.sha256_file(item.path)
        scans = repository.list_scans(store, item.slug)
        stored = next((s.id for s in scans if s.sha256 == sha), None)
        if stored is not None:
            note = f"already stored as scan {stored}"
        elif scans:
            note = "compare with the previous scan"
        elif per_slug[item.slug] > 1:
            note = "new artwork: the earliest scan becomes the baseline, the others are compared"
        else:
            note = "first scan of the artwork (baseline)"
        results.append(ItemResult(item.rel, item.slug, "would process", note, sha,
                                  scan_id=stored))
    return RunSummary(
        home=str(store.home), inbox=str(inbox), reports=str(reports), dry_run=True,
        items=tuple(results), waiting=tuple(waiting), ignored=tuple(ignored),
        seconds=time.perf_counter() - start,
    )


def run_inbox(
    home: Path,
    settings: Settings,
    *,
    inbox: Path | None = None,
    reports: Path | None = None,
    dry_run: bool = False,
    wait_s: float = 0.0,
    run: RunFn | None = None,
    progress: Progress | None = None,
) -> RunSummary:
    """``monitor run``: lock the data home, open the store, make one pass.

    Parameters
    ----------
    home
        Absolute data home (initialised with ``monitor init``).
    settings
        Settings (comparison, inbox, alerts).
    inbox, reports
        Folders; default from the settings (see :func:`resolve_paths`).
    dry_run
        Only report what would be done (no lock, nothing written).
    wait_s
        How long to wait when another pass holds the lock (0: give up at once).
    run
        Comparison function (tests); default :func:`monitor.pipeline.compare`.
    progress
        Called with (items done, items in all, label) after each file.

    Returns
    -------
    RunSummary
        ``busy`` when the lock was not obtained.
    """
    inbox_path, reports_path = resolve_paths(home, settings, inbox, reports)
    if inbox_path == reports_path:
        raise MonitorError("the inbox and the reports folder must differ")
    store = db.open_store(home, settings)
    try:
        if not inbox_path.is_dir():
            raise MonitorError(f"no inbox folder at {inbox_path}")
        if dry_run:
            return plan_inbox(store, inbox_path, reports_path, settings)
        with inbox_lock(home, wait_s) as held:
            if not held:
                return RunSummary(home=str(home), inbox=str(inbox_path),
                                  reports=str(reports_path), busy=True)
            return process_inbox(store, inbox_path, reports_path, settings, run=run,
                                 progress=progress)
    finally:
        store.engine.dispose()
