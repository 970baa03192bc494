"""The content-addressed blob store: staging, placing under the write lock, undo, removal."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from monitor.errors import MonitorError
from monitor.store.db import Store, write_lock
from monitor.store.models import ComparisonRecord, Scan
from monitor.store.repository.records import _db_error

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes.

    Parameters
    ----------
    path
        File to hash.

    Returns
    -------
    str
        64 hex digits.
    """
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise MonitorError(f"cannot read {path}: {exc}") from exc
    return digest.hexdigest()


def _object_relpath(sha: str, suffix: str) -> str:
    suffix = suffix.lower()
    if not re.fullmatch(r"(\.[a-z0-9]{1,8}){0,2}", suffix):
        suffix = ""
    return f"objects/{sha[:2]}/{sha}{suffix}"


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not supported everywhere (e.g. Windows)
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


#: Test hook: ``MONITOR_TEST_PAUSE_AT=<point>:<folder>`` makes a process write
#: ``<folder>/<point>.reached`` at that point and wait for ``<folder>/<point>.go``.
PAUSE_ENV = "MONITOR_TEST_PAUSE_AT"


PAUSE_POINTS = ("staged", "placed", "committed")


_PAUSE_LIMIT_S = 60.0


def _pause_point(point: str) -> None:
    """Test hook (see :data:`PAUSE_ENV`): stop here until the test lets the process go on."""
    spec = os.environ.get(PAUSE_ENV)
    if not spec:
        return
    name, _, folder = spec.partition(":")
    if name != point or not folder:
        return
    barrier = Path(folder)
    (barrier / f"{point}.reached").write_text(str(os.getpid()))
    deadline = time.monotonic() + _PAUSE_LIMIT_S
    while not (barrier / f"{point}.go").exists() and time.monotonic() < deadline:
        time.sleep(0.01)


@dataclass
class _Staged:
    """An object on its way into the store: its bytes in a temporary file of ours.

    ``temp`` is None when the object was already in place at staging time
    (then ``source`` is copied again only if it vanished before placing).
    """

    sha: str
    rel: str
    source: Path
    temp: Path | None
    created: bool = False  # set by _place: this transaction put the object into objects/


def _copy_to_temp(store: Store, source: Path, sha: str) -> Path:
    store.tmp_dir.mkdir(parents=True, exist_ok=True)
    temp = store.tmp_dir / f"{sha}.{uuid.uuid4().hex}.part"
    try:
        with source.open("rb") as src, temp.open("wb") as dst:
            shutil.copyfileobj(src, dst, _CHUNK)
            dst.flush()
            os.fsync(dst.fileno())
        if sha256_file(temp) != sha:
            raise MonitorError(f"{source} changed while it was being stored")
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def _stage(store: Store, source: Path, *, move: bool = False) -> _Staged:
    """Hash ``source`` and copy it to a temporary file of this process (no lock needed).

    With ``move`` the source (a file of ours in ``<home>/tmp``) is the temporary file.
    """
    if not source.is_file():
        raise MonitorError(f"no such file: {source}")
    sha = sha256_file(source)
    rel = _object_relpath(sha, "".join(source.suffixes[-1:]))
    try:
        if move:
            return _Staged(sha, rel, source, source)
        if (store.home / rel).is_file():
            return _Staged(sha, rel, source, None)
        return _Staged(sha, rel, source, _copy_to_temp(store, source, sha))
    except OSError as exc:
        raise MonitorError(f"cannot store {source}: {exc}") from exc


def _place(store: Store, obj: _Staged) -> None:
    """Rename the staged bytes into ``objects/``; call only while holding the write lock.

    An object already in place is kept (same name, same bytes) and our
    temporary file dropped; ``obj.created`` tells whether this call put it there.
    """
    target = store.home / obj.rel
    try:
        if target.is_file():
            _discard(obj)
            return
        if obj.temp is None or not obj.temp.is_file():  # vanished since staging (gc)
            obj.temp = _copy_to_temp(store, obj.source, obj.sha)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(obj.temp, target)
        obj.temp = None
        obj.created = True
        _fsync_dir(target.parent)
    except OSError as exc:
        raise MonitorError(f"cannot store {obj.source}: {exc}") from exc


def _discard(obj: _Staged) -> None:
    """Remove this process's temporary file of ``obj`` (never an object in place)."""
    if obj.temp is not None:
        with contextlib.suppress(OSError):
            obj.temp.unlink(missing_ok=True)
        obj.temp = None


def _lock(session: Session) -> None:
    write_lock(session.connection())


def _undo_created(store: Store, objs: Sequence[_Staged]) -> None:
    """After a failed transaction: drop our temps, and objects we placed that no row refers to.

    The check and the removal happen under the write lock, so an object that
    another writer's committed row (or its transaction in progress) uses is kept.
    """
    for obj in objs:
        _discard(obj)
    _remove_unreferenced(store, [obj.rel for obj in objs if obj.created])


def _remove_unreferenced(store: Store, relpaths: Sequence[str]) -> list[str]:
    """Remove those of ``relpaths`` that no row refers to, checked and done under the write lock.

    Best effort: when the lock cannot be had, nothing is removed (the files
    stay for :func:`collect_garbage`).
    """
    if not relpaths:
        return []
    removed: list[str] = []
    with contextlib.suppress(SQLAlchemyError), Session(store.engine) as session, session.begin():
        _lock(session)
        refs = _referenced_objects(session)
        removed = [rel for rel in relpaths if rel not in refs]
        _remove_objects(store, removed)
    return removed


def put_object(store: Store, source: Path, *, move: bool = False) -> tuple[str, str, bool]:
    """Put a file into the content-addressed store.

    The bytes go to a temporary name in ``<home>/tmp`` first (copied, or
    moved when ``move`` and ``source`` is already in ``tmp``) and are renamed
    to ``objects/<sha[:2]>/<sha><suffix>`` while holding the store's write
    lock. No row refers to the object yet: :func:`collect_garbage` may
    remove it once it is older than its ``min_age_s``.

    Parameters
    ----------
    store
        The open store.
    source
        File to store (its suffix is kept, lower-cased).
    move
        Move instead of copy (for files staged in ``<home>/tmp``).

    Returns
    -------
    tuple
        (sha256, path relative to the home, True if the file was new).

    Examples
    --------
    >>> sha, rel, new = put_object(store, Path("scan.png"))  # doctest: +SKIP
    >>> rel.startswith("objects/" + sha[:2])  # doctest: +SKIP
    True
    """
    obj = _stage(store, source, move=move)
    try:
        with Session(store.engine) as session, session.begin():
            _lock(session)
            _place(store, obj)
    except SQLAlchemyError as exc:
        raise _db_error("storing the file", exc) from exc
    finally:
        _discard(obj)
    return obj.sha, obj.rel, obj.created


def _remove_objects(store: Store, relpaths: Sequence[str]) -> None:
    for rel in relpaths:
        with contextlib.suppress(OSError):
            (store.home / rel).unlink(missing_ok=True)


def _referenced_objects(session: Session) -> set[str]:
    refs = set(session.scalars(select(Scan.stored_path)))
    for artifacts in session.scalars(select(ComparisonRecord.artifacts)):
        refs.update(artifacts.values())
    return refs
