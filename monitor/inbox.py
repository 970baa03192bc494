"""Scheduled re-scan comparisons: one pass over an inbox of new scans, safe to run from a timer.

A lab drops scans into ``INBOX/<artwork-slug>/<name>.<tif|png|jpg>``, each
with an optional sidecar ``<name-without-suffix>.json`` or ``.toml`` (keys of
:class:`monitor.store.repository.ScanMeta`). One pass (:func:`run_inbox`):

1. takes an exclusive ``fcntl.flock`` on ``<home>/inbox.lock`` (POSIX only),
   so two passes over the same data home never overlap;
2. finds the files that settled (unchanged for ``Settings.inbox_settle_s``);
3. ingests each into the store (:func:`monitor.store.repository.ingest_scan`;
   capture time from the sidecar, else EXIF, else the file's modification
   time);
4. per artwork, in capture order, compares each new scan against the scan
   before it (:func:`monitor.store.repository.compare_and_store`, the same
   call as ``monitor compare SLUG``), writes the PDF report
   (:func:`monitor.report.render.write_report`) and runs the alert hook;
5. moves the file (and its sidecar) to ``INBOX/_processed/<slug>/``.

A scan that cannot be used (unreadable, unknown artwork, bad sidecar, or a
different painting: the registration refuses it) goes to
``INBOX/_quarantine/<slug>/`` with a ``<name>.reason.txt``; a scan this inbox
added to the store is taken out again. Anything else that goes wrong (a bug,
a full disk) leaves the file where it is for the next pass.

Crash safety: every step is idempotent (a scan is unique per artwork and
image hash, a comparison per cache key, a report is written under a name
fixed by the comparison id and renamed into place, moves go to names fixed
by the image hash), and the store's own writes are atomic. Before a pass
adds a scan it leaves a marker in ``<home>/inbox-pending/``; the marker says
"this scan came from the inbox and is not accepted yet", so after a kill the
next pass still knows it may take that scan back. The next pass simply
repeats the steps of the files still in the inbox and finds the work done.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from monitor.config import Settings, _config_path, validate_light
from monitor.errors import MonitorError
from monitor.results import Comparison, Light
from monitor.store import db, repository
from monitor.store.db import Store
from monitor.store.repository import RunFn, ScanInfo, ScanMeta, WriteFn

PROCESSED_DIR = "_processed"
QUARANTINE_DIR = "_quarantine"
LOCK_NAME = "inbox.lock"
PENDING_DIR = "inbox-pending"
SIDECAR_SUFFIXES = (".json", ".toml")
REASON_SUFFIX = ".reason.txt"
#: Suffixes of files still being copied (never touched).
PARTIAL_SUFFIXES = frozenset({".part", ".partial", ".tmp", ".crdownload", ".filepart", ".download"})
#: File names desktop systems leave behind (never touched).
JUNK_NAMES = frozenset({"thumbs.db", "desktop.ini", ".ds_store"})

#: Exit statuses of ``monitor run``.
EXIT_DONE = 0
EXIT_ERROR = 1
EXIT_NOTHING = 3
EXIT_SOME_FAILED = 4
EXIT_BUSY = 75  # EX_TEMPFAIL: another run holds the lock

ALERT_COMMAND_TIMEOUT_S = 60.0
ALERT_URL_TIMEOUT_S = 10.0
STALE_TEMP_S = 3600.0

Progress = Callable[[int, int, str], None]


# --------------------------------------------------------------------------- records


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


# --------------------------------------------------------------------------- paths and lock


def resolve_paths(
    home: Path, settings: Settings, inbox: Path | None = None, reports: Path | None = None
) -> tuple[Path, Path]:
    """Absolute inbox and reports folders.

    Parameters
    ----------
    home
        Absolute data home.
    settings
        ``inbox`` / ``reports`` settings (empty: ``<home>/inbox``, ``<home>/reports``).
    inbox, reports
        Explicit folders (the CLI's ``--inbox`` / ``--reports``), or None.

    Returns
    -------
    tuple of Path
        (inbox, reports), absolute and user-expanded.
    """
    inbox_path = inbox or (Path(settings.inbox) if settings.inbox else home / "inbox")
    reports_path = reports or (Path(settings.reports) if settings.reports else home / "reports")
    return inbox_path.expanduser().absolute(), reports_path.expanduser().absolute()


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


# --------------------------------------------------------------------------- discovery


def _skipped_name(name: str) -> bool:
    lower = name.lower()
    return (
        name.startswith((".", "~"))
        or lower in JUNK_NAMES
        or Path(lower).suffix in PARTIAL_SUFFIXES
        or lower.endswith(REASON_SUFFIX)
    )


def discover(
    inbox: Path, *, settle_s: float = 0.0, now: float | None = None, exclude: Sequence[Path] = ()
) -> tuple[list[InboxFile], list[str], list[str]]:
    """Find the files of an inbox, in a stable order.

    Top-level folders whose name starts with ``_`` or ``.`` (``_processed``,
    ``_quarantine``) and the folders in ``exclude`` are skipped. Hidden
    files, files still being copied (``.part``, ``.tmp`` ...) and desktop
    junk are never touched; ``.json`` / ``.toml`` files are sidecars of the
    image with the same stem.

    Parameters
    ----------
    inbox
        The inbox folder.
    settle_s
        Files (or their sidecars) modified less than this many seconds ago are
        left for the next pass.
    now
        Current time (``time.time()`` when None).
    exclude
        Folders inside the inbox to skip (e.g. the reports folder).

    Returns
    -------
    tuple
        (files to handle, files still settling, ignored entries), paths as
        strings relative to the inbox.
    """
    if not inbox.is_dir():
        raise MonitorError(f"no inbox folder at {inbox}")
    now = time.time() if now is None else now
    skip = {p.resolve() for p in exclude}
    files: list[InboxFile] = []
    waiting: list[str] = []
    ignored: list[str] = []

    def settled(*paths: Path | None) -> bool:
        try:
            return all(p is None or now - p.stat().st_mtime >= settle_s for p in paths)
        except OSError:
            return False

    def rel(path: Path) -> str:
        return path.relative_to(inbox).as_posix()

    for entry in sorted(inbox.iterdir()):
        if entry.name.startswith(("_", ".")) or entry.resolve() in skip:
            continue
        if entry.is_file():
            if _skipped_name(entry.name):
                continue
            if not settled(entry):
                waiting.append(rel(entry))
                continue
            problem = "file is not in an artwork folder; put it in INBOX/<artwork-slug>/"
            files.append(InboxFile(entry, rel(entry), None, None, problem))
            continue
        if not entry.is_dir():
            continue
        children = sorted(p for p in entry.iterdir() if not _skipped_name(p.name))
        sidecars: dict[str, list[Path]] = {}
        images: list[Path] = []
        for child in children:
            if child.is_dir() or not child.is_file():
                ignored.append(rel(child))
            elif child.suffix.lower() in SIDECAR_SUFFIXES:
                sidecars.setdefault(child.stem, []).append(child)
            else:
                images.append(child)
        stems: dict[str, int] = {}
        for image in images:
            stems[image.stem] = stems.get(image.stem, 0) + 1
        for image in images:
            found = sidecars.get(image.stem, [])
            problem = None
            if len(found) > 1:
                problem = f"two sidecars for {image.name}: {', '.join(p.name for p in found)}"
            elif found and stems[image.stem] > 1:
                problem = (f"sidecar {found[0].name} is shared by several images "
                           f"named {image.stem}.*")
            sidecar = found[0] if found else None
            if not settled(image, *found):
                waiting.append(rel(image))
                continue
            files.append(InboxFile(image, rel(image), entry.name, sidecar, problem))
        for stem, found in sidecars.items():
            if stem not in stems:
                ignored.extend(rel(p) for p in found)
    return files, waiting, ignored


# --------------------------------------------------------------------------- sidecars

_TEXT_KEYS = ("camera", "operator", "notes")
_NUMBER_KEYS = ("px_per_mm", "light_azimuth", "light_elevation")


def read_sidecar(path: Path) -> ScanMeta:
    """Read a scan's sidecar (JSON or TOML) into :class:`ScanMeta`.

    Keys (all optional): ``captured_at`` (ISO 8601 text, or a TOML date /
    date-time; naive = UTC), ``px_per_mm``, ``light_azimuth``,
    ``light_elevation`` (numbers; see :class:`monitor.results.Light`),
    ``camera``, ``operator``, ``notes`` (text). Any other key is an error, so
    that a typo does not pass silently.

    Parameters
    ----------
    path
        The ``.json`` or ``.toml`` file.

    Returns
    -------
    ScanMeta
        The metadata (ranges are checked at ingest).
    """
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".toml":
            data: object = tomllib.loads(text)
        else:
            data = json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise MonitorError(f"sidecar {path.name}: cannot read it ({exc})") from exc
    if not isinstance(data, dict):
        raise MonitorError(f"sidecar {path.name}: expected a table of keys")
    allowed = {f.name for f in fields(ScanMeta)}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise MonitorError(
            f"sidecar {path.name}: unknown key(s) {', '.join(unknown)}; "
            f"use {', '.join(sorted(allowed))}"
        )
    values: dict[str, Any] = {}
    try:
        values = _sidecar_values(data)
    except MonitorError as exc:
        raise MonitorError(f"sidecar {path.name}: {exc}") from exc
    return ScanMeta(**values)


def _sidecar_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """A sidecar's values, each checked as the ingest flags are (ranges, text, time)."""
    values: dict[str, Any] = {}
    raw_time = data.get("captured_at")
    if isinstance(raw_time, datetime):
        values["captured_at"] = repository.to_utc(raw_time)
    elif isinstance(raw_time, date):
        values["captured_at"] = datetime(raw_time.year, raw_time.month, raw_time.day, tzinfo=UTC)
    elif isinstance(raw_time, str):
        values["captured_at"] = repository.parse_time(raw_time)
    elif raw_time is not None:
        raise MonitorError("captured_at must be an ISO 8601 date-time")
    for key in _NUMBER_KEYS:
        value = data.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise MonitorError(f"{key} must be a number, got {str(value)[:40]!r}")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if key == "px_per_mm" and not (math.isfinite(number) and number > 0):
            raise MonitorError(f"px_per_mm must be a positive finite number, got {str(value)[:40]}")
        values[key] = number
    validate_light(values.get("light_azimuth"), values.get("light_elevation"))
    for key in _TEXT_KEYS:
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise MonitorError(f"{key} must be text, got {str(value)[:40]!r}")
        limit = 100_000 if key == "notes" else 200
        values[key] = repository.check_text(key, value, limit)
    return values


# --------------------------------------------------------------------------- moves


def _move_target(folder: Path, item: InboxFile, sha: str | None) -> str:
    """A free base name in ``folder``, fixed by the image hash (so a retry picks the same)."""
    tag = sha[:8] if sha else "nohash"
    stem, suffix = item.path.stem, item.path.suffix
    side_suffix = item.sidecar.suffix if item.sidecar is not None else None
    for n in range(10_000):
        base = f"{stem}.{tag}" + ("" if n == 0 else f".{n}")
        if (folder / f"{base}{suffix}").exists():
            continue
        if side_suffix is not None and item.sidecar is not None and item.sidecar.exists() and (
            folder / f"{base}{side_suffix}"
        ).exists():
            continue
        return base
    raise MonitorError(f"no free name for {item.path.name} in {folder}")


def _rename(source: Path, target: Path) -> None:
    try:
        os.rename(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        shutil.move(str(source), str(target))  # another file system: copy, then delete


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def move_out(
    inbox: Path, item: InboxFile, kind: str, sha: str | None, reason: str | None = None
) -> Path:
    """Move an inbox file and its sidecar to ``_processed`` or ``_quarantine``.

    The reason file (quarantine) is written first. Into ``_processed`` the
    sidecar goes before the image (metadata already read from it is in the
    store); into ``_quarantine`` the image goes first, so that a crash between
    the two renames never leaves a refused image in the inbox without the
    sidecar it was refused for (the next pass would take it as good). A
    sidecar left behind that way has no image and is ignored.

    Parameters
    ----------
    inbox
        The inbox folder.
    item
        The file.
    kind
        ``processed`` or ``quarantine``.
    sha
        Hex sha256 of the image (its first 8 digits go into the new name).
    reason
        One line for ``<name>.reason.txt`` (quarantine only).

    Returns
    -------
    Path
        Where the image is now.
    """
    top = PROCESSED_DIR if kind == "processed" else QUARANTINE_DIR
    folder = inbox / top / item.slug if item.slug else inbox / top
    folder.mkdir(parents=True, exist_ok=True)
    base = _move_target(folder, item, sha)
    target = folder / f"{base}{item.path.suffix}"
    if reason is not None:
        _atomic_write_text(
            folder / f"{target.name}{REASON_SUFFIX}",
            f"{reason}\n\nfile: {item.rel}\nsha256: {sha or 'unknown'}\n"
            f"quarantined at: {datetime.now(UTC).isoformat(timespec='seconds')}\n",
        )
    sidecar = item.sidecar if item.sidecar is not None and item.sidecar.exists() else None
    if kind != "processed":
        _rename(item.path, target)
    if sidecar is not None:
        _rename(sidecar, folder / f"{base}{sidecar.suffix}")
    if kind == "processed":
        _rename(item.path, target)
    return target


# --------------------------------------------------------------------------- pending markers


def _marker_path(home: Path, slug: str, sha: str) -> Path:
    return home / PENDING_DIR / f"{slug}-{sha}.json"


def _write_marker(home: Path, inbox: Path, item: InboxFile, sha: str) -> None:
    assert item.slug is not None
    path = _marker_path(home, item.slug, sha)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"inbox": str(inbox), "file": item.rel, "slug": item.slug, "sha256": sha}
    tmp = path.with_name(f".{path.name}.part")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(body, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _prune_markers(home: Path, inbox: Path, live: set[tuple[str, str]]) -> None:
    """Remove markers of this inbox whose file is gone (a crash after its move)."""
    folder = home / PENDING_DIR
    if not folder.is_dir():
        return
    for path in folder.glob("*.json"):
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if body.get("inbox") == str(inbox) and (body.get("slug"), body.get("sha256")) not in live:
            path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- alerts


def alert_payload(
    detail: repository.ComparisonDetail, report: Path | None, threshold: float
) -> dict[str, Any]:
    """The JSON an alert hook receives.

    Parameters
    ----------
    detail
        The stored comparison.
    report
        The PDF written for it.
    threshold
        ``Settings.alert_min_significance``.

    Returns
    -------
    dict
        Artwork, scans, comparison id, report path, the regions at or above
        the threshold and the largest significance.
    """
    hits = [r for r in detail.regions if r.significance >= threshold]
    return {
        "event": "monitor.significant_change",
        "artwork": detail.artwork.slug,
        "title": detail.artwork.title,
        "comparison_id": detail.id,
        "baseline_scan": detail.baseline.id,
        "current_scan": detail.current.id,
        "current_captured_at": detail.current.captured_at.isoformat(),
        "report": None if report is None else str(report),
        "threshold": threshold,
        "max_significance": max((r.significance for r in detail.regions), default=0.0),
        "regions": [r.to_dict() for r in hits],
    }


def send_alert(payload: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    """Run the alert command and/or POST to the alert URL; never raises.

    The command (``Settings.alert_command``, split like a shell command line
    but run without a shell) gets the JSON on stdin and ``MONITOR_ALERT_*``
    environment variables (ARTWORK, COMPARISON_ID, REPORT, MAX_SIGNIFICANCE,
    REGIONS). The URL (``Settings.alert_url``, http or https) gets the JSON
    by POST.

    Parameters
    ----------
    payload
        From :func:`alert_payload`.
    settings
        Where to send it.

    Returns
    -------
    dict
        ``{"command": {...}, "url": {...}}`` with a return code / HTTP status
        or an ``error`` for each hook that is configured.
    """
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    out: dict[str, Any] = {}
    if settings.alert_command.strip():
        env = dict(os.environ)
        env.update(
            MONITOR_ALERT_ARTWORK=str(payload.get("artwork", "")),
            MONITOR_ALERT_COMPARISON_ID=str(payload.get("comparison_id", "")),
            MONITOR_ALERT_REPORT=str(payload.get("report") or ""),
            MONITOR_ALERT_MAX_SIGNIFICANCE=str(payload.get("max_significance", "")),
            MONITOR_ALERT_REGIONS=str(len(payload.get("regions", []))),
        )
        try:
            argv = shlex.split(settings.alert_command)
            done = subprocess.run(  # noqa: S603 - argv from the operator's own settings, no shell
                argv, input=body, env=env, capture_output=True,
                timeout=ALERT_COMMAND_TIMEOUT_S, check=False,
            )
            out["command"] = {"returncode": done.returncode}
            if done.returncode != 0:
                tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
                out["command"]["error"] = tail[0] if tail else f"exit status {done.returncode}"
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            out["command"] = {"error": " ".join(str(exc).split())}
    if settings.alert_url.strip():
        url = settings.alert_url.strip()
        try:
            if not url.lower().startswith(("http://", "https://")):
                raise ValueError(f"alert_url must be http(s), got {url!r}")
            request = urllib.request.Request(
                url, data=body, method="POST",
                headers={"Content-Type": "application/json", "User-Agent": "monitor"},
            )
            with urllib.request.urlopen(request, timeout=ALERT_URL_TIMEOUT_S) as response:  # noqa: S310
                out["url"] = {"status": int(response.status)}
        except (OSError, ValueError, urllib.error.URLError) as exc:
            out["url"] = {"error": " ".join(str(exc).split())}
    return out


# --------------------------------------------------------------------------- one pass


def _default_run(settings: Settings) -> RunFn:
    def run(base: Path, cur: Path, light: Light, px_per_mm: float | None) -> Comparison:
        from monitor.pipeline import compare  # the algorithms load only when work is due

        return compare(base, cur, settings, light=light, px_per_mm=px_per_mm)

    return run


def _default_write(comparison: Comparison, out_dir: Path) -> Mapping[str, Path]:
    from monitor.pipeline import write_outputs

    return write_outputs(comparison, out_dir)


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

        def run(base: Path, cur: Path, light: Light, px_per_mm: float | None) -> Comparison:
            result = self.run(base, cur, light, px_per_mm)
            ran.append(True)  # what fails after this is not the scan's fault
            return result

        try:
            stored = repository.compare_and_store(
                self.store, slug, run, self.write, settings=self.settings,
                baseline=str(previous.id), current=str(scan.id),
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


# --------------------------------------------------------------------------- schedule


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
