"""Filing a scan away (processed / quarantine) atomically, with markers of what was done."""

from __future__ import annotations

import errno
import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from monitor.errors import MonitorError
from monitor.inbox.discovery import PENDING_DIR, PROCESSED_DIR, QUARANTINE_DIR, REASON_SUFFIX
from monitor.inbox.records import InboxFile


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

    The reason file (quarantine) is written first, then the sidecar, then the
    image, so that after a crash the image is never without its reason, and
    metadata already read from the sidecar is in the store.

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
    if item.sidecar is not None and item.sidecar.exists():
        _rename(item.sidecar, folder / f"{base}{item.sidecar.suffix}")
    _rename(item.path, target)
    return target


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
