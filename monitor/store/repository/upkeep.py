"""Upkeep: verify that every row still has its bytes, and collect garbage."""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from monitor.errors import MonitorError
from monitor.store.db import Store
from monitor.store.models import ComparisonRecord, Scan, ScanImage
from monitor.store.repository.blobs import _lock, _referenced_objects, sha256_file
from monitor.store.repository.records import _db_error


@dataclass(frozen=True)
class StoreProblem:
    """A row whose stored file is missing or no longer holds the bytes it was stored with."""

    kind: str  # "scan" or "comparison"
    row_id: int
    name: str  # "file" for a scan, the artifact's name for a comparison
    path: str  # relative to the home
    problem: str  # "missing" or "hash mismatch"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready fields."""
        return asdict(self)

    def line(self) -> str:
        """One line for a listing."""
        what = f"{self.kind} {self.row_id}" + ("" if self.kind == "scan" else f" {self.name}")
        return f"{what}: {self.problem}: {self.path}"


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of :func:`verify_store`."""

    scans: int  # scan rows checked
    artifacts: int  # comparison artifact files checked
    problems: tuple[StoreProblem, ...]

    @property
    def ok(self) -> bool:
        """True when no row lost its file."""
        return not self.problems

    def summary(self) -> str:
        """One summary line."""
        state = "ok" if self.ok else f"{len(self.problems)} problem(s)"
        return f"{state}: checked {self.scans} scan(s) and {self.artifacts} comparison file(s)"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready fields."""
        return {
            "ok": self.ok,
            "scans": self.scans,
            "artifacts": self.artifacts,
            "problems": [p.to_dict() for p in self.problems],
        }


def _check_object(store: Store, rel: str, sha: str | None) -> str | None:
    try:
        path = store.stored_file(rel)
    except MonitorError:
        return "outside the store's objects/ (altered row?)"
    if not path.is_file():
        return "missing"
    if sha is None:  # artifacts are named by their hash
        sha = Path(rel).name.split(".", 1)[0]
    try:
        return None if sha256_file(path) == sha else "hash mismatch"
    except MonitorError:
        return "unreadable"


def verify_store(store: Store) -> VerifyReport:
    """Check that every scan and comparison artifact row has its file, with the right bytes.

    Reports are rendered on demand (``monitor report``) and not stored, so
    there is nothing of theirs to check.

    Parameters
    ----------
    store
        The open store.

    Returns
    -------
    VerifyReport
        Counts and one :class:`StoreProblem` per missing or altered file.

    Examples
    --------
    >>> report = verify_store(store)  # doctest: +SKIP
    >>> report.ok, report.summary()  # doctest: +SKIP
    (True, 'ok: checked 2 scan(s) and 3 comparison file(s)')
    """
    try:
        with Session(store.engine) as session:
            scans = list(session.execute(select(Scan.id, Scan.stored_path, Scan.sha256)))
            # a multi-light scan's photographs (and its light file) are objects too
            images = list(session.execute(
                select(ScanImage.scan_id, ScanImage.position, ScanImage.stored_path,
                       ScanImage.sha256)
            ))
            light_files = list(session.execute(
                select(Scan.id, Scan.light_file_path).where(Scan.light_file_path.is_not(None))
            ))
            comparisons = list(
                session.execute(select(ComparisonRecord.id, ComparisonRecord.artifacts))
            )
    except SQLAlchemyError as exc:
        raise _db_error("reading the rows to verify", exc) from exc
    problems: list[StoreProblem] = []
    for scan_id, rel, sha in scans:
        if (problem := _check_object(store, rel, sha)) is not None:
            problems.append(StoreProblem("scan", scan_id, "file", rel, problem))
    for scan_id, position, rel, sha in images:
        if (problem := _check_object(store, rel, sha)) is not None:
            problems.append(StoreProblem("scan", scan_id, f"image {position}", rel, problem))
    for scan_id, light_rel in light_files:
        if light_rel is None:  # selected only where set; the row type does not know it
            continue
        if (problem := _check_object(store, light_rel, None)) is not None:
            problems.append(StoreProblem("scan", scan_id, "light file", light_rel, problem))
    n_artifacts = 0
    for comparison_id, artifacts in comparisons:
        for name, rel in sorted((artifacts or {}).items()):
            n_artifacts += 1
            if (problem := _check_object(store, rel, None)) is not None:
                problems.append(StoreProblem("comparison", comparison_id, name, rel, problem))
    return VerifyReport(scans=len(scans), artifacts=n_artifacts, problems=tuple(problems))


def collect_garbage(store: Store, *, min_age_s: float = 3600.0) -> list[str]:
    """Remove files no row refers to (left by a crash between rename and commit) and stale temps.

    Objects are checked against the rows and removed while holding the
    store's write lock, the lock writers hold from putting an object into
    place until their row is committed. Only files older than ``min_age_s``
    are touched, so that temporary files of work in progress survive.

    Parameters
    ----------
    store
        The open store.
    min_age_s
        Minimum age (modification time) of a file or staging folder to remove.

    Returns
    -------
    list of str
        Removed paths, relative to the home.
    """
    cutoff = time.time() - min_age_s
    removed: list[str] = []

    def old(path: Path) -> bool:
        try:
            return path.stat().st_mtime <= cutoff
        except OSError:
            return False

    try:
        with Session(store.engine) as session, session.begin():
            _lock(session)  # the same lock writers place objects under
            refs = _referenced_objects(session)
            if store.objects_dir.is_dir():
                for path in sorted(store.objects_dir.rglob("*")):
                    rel = path.relative_to(store.home).as_posix()
                    if path.is_file() and rel not in refs and old(path):
                        path.unlink(missing_ok=True)
                        removed.append(rel)
    except SQLAlchemyError as exc:
        raise _db_error("collecting garbage", exc) from exc
    if store.tmp_dir.is_dir():
        for path in sorted(store.tmp_dir.iterdir()):
            if not old(path):
                continue
            removed.append(path.relative_to(store.home).as_posix())
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    return removed
